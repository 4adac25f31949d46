"""IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed (name ends in .gz).

Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), the number of dimensions n, n big-endian int32 sizes, then the
values big-endian in C order.
"""
import gzip
from pathlib import Path

import numpy as np

from .value_sequences import InvalidDataRow

TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
CODES = {np.dtype(v).newbyteorder("="): k for k, v in TYPES.items()}


def _open(path: Path, mode: str):
    return gzip.open(path, mode) if path.suffix == ".gz" else open(path, mode)


def read_idx(path) -> np.ndarray:
    """The array stored in ``path`` (native byte order)."""
    path = Path(path)
    with _open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in TYPES:
        raise InvalidDataRow(str(path), 0, "not an IDX file (bad magic number)")
    dtype, ndim = np.dtype(TYPES[raw[2]]), raw[3]
    shape = tuple(np.frombuffer(raw, ">i4", ndim, 4).tolist()) if len(raw) >= 4 + 4 * ndim else None
    offset = 4 + 4 * ndim
    if shape is None or len(raw) - offset != int(np.prod(shape)) * dtype.itemsize:
        raise InvalidDataRow(str(path), 0, f"IDX header sizes {shape} do not match "
                                             f"the {len(raw) - offset} data bytes")
    return np.frombuffer(raw, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array: np.ndarray) -> None:
    """Store ``array`` (a dtype listed in :data:`TYPES`) at ``path``."""
    path = Path(path)
    array = np.ascontiguousarray(array)
    code = CODES[array.dtype.newbyteorder("=")]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    with _open(path, "wb") as f:
        f.write(header + array.astype(TYPES[code]).tobytes())
