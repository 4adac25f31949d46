"""What the Triton recurrence kernels (:mod:`.indrnn_triton_scan`, :mod:`.indrnn_triton_pipelined`,
:mod:`.short_rnn_triton`) share: whether they can run, the per-mode kernel cache, the
``@triton.jit`` helpers their kernels call, launch configuration and output buffers.

Triton is imported lazily (on the first call), never at import of ``durnn_plugin.ops``, and the
kernels are built per mode: with ``TRITON_INTERPRET=1`` (read by triton when a function is
decorated) they run on CPU tensors through Triton's interpreter, which is how CPU-only CI tests
them; otherwise they need CUDA tensors.

The jit helpers (:func:`_build_helpers`) are built per mode too and reached as attributes of this
module (``triton_support.column_block(...)`` inside a kernel): the attribute is looked up when the
kernel is compiled or interpreted, so it is the helper of the mode that runs. They are not
closure variables of the kernels because Triton's interpreter resolves a kernel's names in its
module's globals only.
"""
import os
from typing import Any, Callable, Dict, Optional, Tuple

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


def kernels_for_mode(cache: Dict[bool, Any], build: Callable[[], Any]) -> Any:
    """``build()`` once per mode (interpreted or compiled): triton decides which when decorating."""
    mode = interpreter_enabled()
    if mode not in cache:
        cache[mode] = build()
    return cache[mode]


_HELPERS: Dict[bool, Dict[str, object]] = {}


def _build_helpers() -> Dict[str, object]:
    # ``tl`` becomes a global of this module: the interpreter looks for ``triton.language`` in
    # the globals of a jit function it calls
    global tl
    import triton
    import triton.language as tl

    @triton.jit
    def column_block(vec_ptr, block, C, N, BLOCK: tl.constexpr, ACC: tl.constexpr):
        """Columns ``block·BLOCK + [0, BLOCK)`` of a ``(T', C)`` layout, their mask ``cols < C``
        and the ``(N,)`` vector at ``vec_ptr`` per column (``vec[cols % N]``, 0 where masked) in
        ``ACC``."""
        cols = block * BLOCK + tl.arange(0, BLOCK)
        valid = cols < C
        return cols, valid, tl.load(vec_ptr + cols % N, mask=valid, other=0.0).to(ACC)

    @triton.jit
    def load_back(x_ptrs, y_ptrs, step, mask):
        """Moves two blocks of pointers one time step (``step`` elements) back and loads both
        there (0 where masked): a backward loop's prefetch of the next step's inputs. Returns
        ``(x_ptrs, y_ptrs, x, y)``."""
        x_ptrs -= step
        y_ptrs -= step
        x = tl.load(x_ptrs, mask=mask, other=0.0)
        return x_ptrs, y_ptrs, x, tl.load(y_ptrs, mask=mask, other=0.0)

    @triton.jit
    def chunk_rows(k, T, K, C):
        """Chunk ``k`` of a time axis ``T`` cut into chunks of ``K`` steps (the last one may be
        shorter): its first step ``t0``, its length and the offset (int64) of its last step's
        row in a ``(T, C)`` layout. Returns ``(t0, steps, last)``."""
        t0 = k * K
        steps = tl.minimum(T - t0, K)
        return t0, steps, (t0 + steps - 1).to(tl.int64) * C

    @triton.jit
    def batch_tile(w_ptr, B, N, BLOCK_B: tl.constexpr, NP: tl.constexpr,
                   TRANSPOSE: tl.constexpr):
        """The tile of the short-term kernels: ``rows`` (this program's ``BLOCK_B`` batch rows),
        ``cols`` (``NP`` padded state columns), ``valid`` (the mask of the ``(rows, cols)`` tile
        inside ``(B, N)``) and the ``(N, N)`` matrix at ``w_ptr`` zero-padded to ``NP × NP``, or
        its transpose with ``TRANSPOSE``."""
        rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
        cols = tl.arange(0, NP)
        square = (cols[:, None] < N) & (cols[None, :] < N)
        if TRANSPOSE:
            w = tl.load(w_ptr + cols[None, :] * N + cols[:, None], mask=square, other=0.0)
        else:
            w = tl.load(w_ptr + cols[:, None] * N + cols[None, :], mask=square, other=0.0)
        valid = (rows[:, None] < B) & (cols[None, :] < N)
        return rows, cols, valid, w

    return {"column_block": column_block, "load_back": load_back, "chunk_rows": chunk_rows,
            "batch_tile": batch_tile}


def __getattr__(name: str):
    """The jit helper ``name`` of the current mode (module ``__getattr__``, PEP 562)."""
    helpers = {} if name.startswith("_") else kernels_for_mode(_HELPERS, _build_helpers)
    if name not in helpers:  # dunder probes (``__all__``, ...) answer without importing triton
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return helpers[name]


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
