"""What the Triton recurrence kernels (:mod:`.indrnn_triton_scan`) share: whether they can run, the
per-mode kernel cache, launch configuration and output buffers.

Triton is imported lazily (on the first call), never at import of ``durnn_plugin.ops``, and the
kernels are built per mode: with ``TRITON_INTERPRET=1`` (read by triton when a function is
decorated) they run on CPU tensors through Triton's interpreter, which is how CPU-only CI tests
them; otherwise they need CUDA tensors.
"""
import os
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from .indrnn_scan import acc_dtype

#: Tests set this to ``float('nan')`` so that any output or gradient element a kernel fails to
#: write shows up; ``None`` (default) leaves the buffers uninitialised (``torch.empty``).
DEBUG_FILL: Optional[float] = None

SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)


def triton_importable() -> bool:
    """Whether ``import triton`` succeeds (imports it; call only when about to use it)."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception:  # ImportError, or a broken install
        return False
    return True


def interpreter_enabled() -> bool:
    """Whether Triton's interpreter is on (``TRITON_INTERPRET``, as triton itself reads it)."""
    try:
        from triton import knobs

        return bool(knobs.runtime.interpret)
    except Exception:
        return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


def cannot_run_reason(a: Tensor) -> Optional[str]:
    """``None`` if the Triton kernels can run on ``a``; otherwise why not, in a few words."""
    if not triton_importable():
        return "triton is not installed (or fails to import)"
    if a.dtype not in SUPPORTED_DTYPES:
        return f"dtype {a.dtype} is not supported (float32, bfloat16, float16, float64)"
    if a.device.type != "cuda" and not interpreter_enabled():
        return f"tensors are on {a.device.type} and TRITON_INTERPRET is not set"
    return None


def kernels_for_mode(cache: Dict[bool, Tuple[object, ...]],
                     build: Callable[[], Tuple[object, ...]]) -> Tuple[object, ...]:
    """``build()`` once per mode (interpreted or compiled): triton decides which when decorating."""
    mode = interpreter_enabled()
    if mode not in cache:
        cache[mode] = build()
    return cache[mode]


def acc_type(dtype: torch.dtype):
    """:func:`.indrnn_scan.acc_dtype` as a ``triton.language`` dtype (the kernels' ``ACC``
    constexpr)."""
    import triton.language as tl

    return {torch.float64: tl.float64, torch.float32: tl.float32}[acc_dtype(dtype)]


def launch_config(columns: int, block: Optional[int] = None) -> Tuple[int, int]:
    """``(BLOCK, num_warps)``: the largest power of two in [32, 512] that still gives at least
    264 programs (2 per SM of an H100), so small column counts still fill the GPU. Under the
    interpreter fewer, larger programs are faster, so the block covers up to 256 columns."""
    if block is None:
        if interpreter_enabled():
            block = 32
            while block < 256 and block < columns:
                block *= 2
        else:
            block = 512
            while block > 32 and cdiv(columns, block) < 264:
                block //= 2
    return block, max(1, min(4, block // 64))


def cdiv(x: int, y: int) -> int:
    """``ceil(x / y)`` for positive ints."""
    return -(-x // y)


def empty_buffer(shape, dtype, device) -> Tensor:
    """``torch.empty``, or filled with :data:`DEBUG_FILL` when tests set it."""
    out = torch.empty(shape, dtype=dtype, device=device)
    if DEBUG_FILL is not None:
        out.fill_(DEBUG_FILL)
    return out
