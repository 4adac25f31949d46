"""Triton kernels for the IndRNN recurrence (SPEC section 1), wrapped in an autograd function.

    h_t = relu(a_t + u ⊙ h_{t-d})

Layout: dilation uses the view of :mod:`.time_dilation`, so a kernel always recurs over
``t - 1`` on a contiguous ``(T', C)`` array with ``C = d·B·N`` columns. One program owns a block
of ``BLOCK`` columns and loops over time; the state lives in registers in fp32 (fp64 for fp64
inputs), inputs and outputs are fp32, bf16, fp16 or fp64 and the output has the input's dtype.
``T`` is a runtime argument marked ``do_not_specialize``: sequences of any length share one
compiled kernel per (dtype, BLOCK). Each step prefetches the next step's inputs so that the
global-load latency overlaps the dependent arithmetic.

Backward (the same equations as :mod:`.indrnn_cpu`, with ``m_t = 1[h_t > 0]``)::

    ∂a_t = m_t ⊙ (g_t + u ⊙ ∂a_{t+1})      ∂h_{-1} = u ⊙ ∂a_0
    ∂u   = Σ_t ∂a_t ⊙ h_{t-1}

∂u has no atomics: each program writes the per-column sums of its columns into a ``(d·B, N)``
fp32 buffer, reduced by ``.sum(0)`` in torch, so the result is deterministic.

Triton is imported lazily (on the first call), never at import of ``durnn_plugin.ops``, and the
kernels are built per mode: with ``TRITON_INTERPRET=1`` (read by triton when a function is
decorated) they run on CPU tensors through Triton's interpreter, which is how CPU-only CI tests
them; otherwise they need CUDA tensors. The kernels call only core builtins of
``triton.language`` (no ``@triton.jit`` helpers such as ``tl.zeros``): those helpers are decorated
when ``triton.language`` is first imported, so with the interpreter switched on later they would
refuse to run.
"""
import os
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from .time_dilation import on_dilated_view

#: Tests set this to ``float('nan')`` so that any output or gradient element a kernel fails to
#: write shows up; ``None`` (default) leaves the buffers uninitialised (``torch.empty``).
DEBUG_FILL: Optional[float] = None

SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
_KERNELS: Dict[bool, Tuple[object, object]] = {}


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
    """``None`` if :func:`indrnn_triton` can run on ``a``; otherwise why not, in a few words."""
    if not triton_importable():
        return "triton is not installed (or fails to import)"
    if a.dtype not in SUPPORTED_DTYPES:
        return f"dtype {a.dtype} is not supported (float32, bfloat16, float16, float64)"
    if a.device.type != "cuda" and not interpreter_enabled():
        return f"tensors are on {a.device.type} and TRITON_INTERPRET is not set"
    return None


def _build_kernels():
    import triton
    import triton.language as tl

    @triton.jit(do_not_specialize=["T"])
    def indrnn_fwd_kernel(a_ptr, u_ptr, h0_ptr, h_ptr, T, C, N,
                          BLOCK: tl.constexpr, ACC: tl.constexpr):
        cols = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        valid = cols < C
        u = tl.load(u_ptr + cols % N, mask=valid, other=0.0).to(ACC)
        h = tl.load(h0_ptr + cols, mask=valid, other=0.0).to(ACC)
        a_ptrs = a_ptr + cols
        h_ptrs = h_ptr + cols
        a_next = tl.load(a_ptrs, mask=valid, other=0.0)
        for t in range(0, T):
            a_cur = a_next
            a_ptrs += C
            a_next = tl.load(a_ptrs, mask=valid & (t + 1 < T), other=0.0)
            h = tl.maximum(a_cur.to(ACC) + u * h, 0.0)
            tl.store(h_ptrs, h.to(h_ptr.dtype.element_ty), mask=valid)
            h_ptrs += C

    @triton.jit(do_not_specialize=["T"])
    def indrnn_bwd_kernel(g_ptr, h_ptr, u_ptr, h0_ptr, da_ptr, dh0_ptr, du_ptr, T, C, N,
                          BLOCK: tl.constexpr, ACC: tl.constexpr):
        # requires T >= 1 (the wrapper returns early for T == 0)
        cols = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        valid = cols < C
        u = tl.load(u_ptr + cols % N, mask=valid, other=0.0).to(ACC)
        last = (T - 1).to(tl.int64) * C
        g_ptrs = g_ptr + last + cols
        h_ptrs = h_ptr + last + cols
        da_ptrs = da_ptr + last + cols
        da = tl.full([BLOCK], 0.0, ACC)
        du = tl.full([BLOCK], 0.0, ACC)
        h_cur = tl.load(h_ptrs, mask=valid, other=0.0)
        g_cur = tl.load(g_ptrs, mask=valid, other=0.0)
        # steps t = T-1 .. 1: h_{t-1} is read from h
        for i in range(0, T - 1):
            h_ptrs -= C
            g_ptrs -= C
            h_prev = tl.load(h_ptrs, mask=valid, other=0.0)
            g_prev = tl.load(g_ptrs, mask=valid, other=0.0)
            da = tl.where(h_cur > 0, g_cur.to(ACC) + u * da, 0.0)
            tl.store(da_ptrs, da.to(da_ptr.dtype.element_ty), mask=valid)
            du += da * h_prev.to(ACC)
            da_ptrs -= C
            h_cur = h_prev
            g_cur = g_prev
        # step t = 0: h_{-1} is the state in
        h_in = tl.load(h0_ptr + cols, mask=valid, other=0.0).to(ACC)
        da = tl.where(h_cur > 0, g_cur.to(ACC) + u * da, 0.0)
        tl.store(da_ptrs, da.to(da_ptr.dtype.element_ty), mask=valid)
        du += da * h_in
        tl.store(dh0_ptr + cols, (u * da).to(dh0_ptr.dtype.element_ty), mask=valid)
        tl.store(du_ptr + cols, du.to(du_ptr.dtype.element_ty), mask=valid)

    return indrnn_fwd_kernel, indrnn_bwd_kernel


def _kernels():
    mode = interpreter_enabled()  # triton decides interpret-or-compile when decorating
    if mode not in _KERNELS:
        _KERNELS[mode] = _build_kernels()
    return _KERNELS[mode]


def _acc_type(dtype: torch.dtype):
    import triton.language as tl

    return tl.float64 if dtype == torch.float64 else tl.float32


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
            while block > 32 and -(-columns // block) < 264:
                block //= 2
    return block, max(1, min(4, block // 64))


def _empty(shape, dtype, device) -> Tensor:
    out = torch.empty(shape, dtype=dtype, device=device)
    if DEBUG_FILL is not None:
        out.fill_(DEBUG_FILL)
    return out


class _IndRNNTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, u: Tensor, h0: Tensor, block: Optional[int]) -> Tensor:
        a = a.contiguous()
        u = u.contiguous()
        h0 = h0.contiguous()
        T, R, N = a.shape
        C = R * N
        h = _empty(a.shape, a.dtype, a.device)
        if T > 0 and C > 0:
            fwd, _ = _kernels()
            BLOCK, warps = launch_config(C, block)
            fwd[(triton_cdiv(C, BLOCK),)](a, u, h0, h, T, C, N, BLOCK=BLOCK,
                                          ACC=_acc_type(a.dtype), num_warps=warps)
        ctx.save_for_backward(h, u, h0)
        ctx.block = block
        return h

    @staticmethod
    def backward(ctx, grad_h: Tensor):
        h, u, h0 = ctx.saved_tensors
        T, R, N = h.shape
        C = R * N
        grad_h = grad_h.to(h.dtype).contiguous()
        grad_a = _empty(h.shape, h.dtype, h.device)
        grad_h0 = _empty(h0.shape, h0.dtype, h0.device)
        if T == 0 or C == 0:
            return grad_a, torch.zeros_like(u), torch.zeros_like(h0), None
        acc_dtype = torch.float64 if h.dtype == torch.float64 else torch.float32
        du_part = _empty((R, N), acc_dtype, h.device)
        _, bwd = _kernels()
        BLOCK, warps = launch_config(C, ctx.block)
        bwd[(triton_cdiv(C, BLOCK),)](grad_h, h, u, h0, grad_a, grad_h0, du_part, T, C, N,
                                      BLOCK=BLOCK, ACC=_acc_type(h.dtype), num_warps=warps)
        grad_u = du_part.sum(0).to(u.dtype)
        return grad_a, grad_u, grad_h0, None


def triton_cdiv(x: int, y: int) -> int:
    return -(-x // y)


def indrnn_triton(a: Tensor, u: Tensor, h0: Optional[Tensor] = None, dilation: int = 1,
                  block: Optional[int] = None) -> Tensor:
    """Same contract as :func:`.indrnn_cpu.indrnn_loop`: a ``(T, B, N)``, u ``(N,)``, h0
    ``(d, B, N)`` or ``None`` (zeros); returns h ``(T, B, N)`` in ``a``'s dtype. ``block``
    overrides the columns per program (a power of two; tests use it to get several programs and
    a ragged last block). Raises ``RuntimeError`` (one line) where it cannot run."""
    reason = cannot_run_reason(a)
    if reason is not None:
        raise RuntimeError(f"indrnn_triton cannot run here: {reason}")
    return on_dilated_view(_IndRNNTriton.apply, a, u, h0, dilation, block)
