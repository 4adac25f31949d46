"""The sequential IndRNN recurrence (docs/model.md section 1) as Triton kernels whose time loops let the
compiler prefetch several steps, for the bandwidth limit rather than the latency of one step::

    h_t = relu(a_t + u ⊙ h_{t-d})
    ∂a_t = m_t ⊙ (g_t + u ⊙ ∂a_{t+1})   ∂h_{-1} = u ⊙ ∂a_0   ∂u = Σ_t ∂a_t ⊙ h_{t-1}

with ``m_t = 1[h_t > 0]``, on the dilated view ``(T', C)``, ``C = d·B·N`` (:mod:`.time_dilation`),
one program per block of ``BLOCK`` columns looping over all of time, as :mod:`.indrnn_triton`.
The difference is the loop: ``tl.range(..., num_stages=STAGES)``. The loads of ``a_{t+1..}`` (and,
backward, of ``g`` and ``h``) do not depend on the state, so Triton's software pipeliner issues
them ``STAGES - 1`` steps ahead as asynchronous copies into shared memory (``cp.async``, 16 bytes
per copy on sm_80+ where the column count is a multiple of 16, as triton specialises it), where
the sequential kernel keeps one step in flight. Blocks are wider by default (up to 1024 columns).
The backward carries ``h_t`` from one step to the next, so it reads ``g`` and ``h`` once each:
5 elements per ``(t, column)`` fwd+bwd, as the sequential kernel.

State, ``∂a`` recursion and ``∂u`` in fp32 (fp64 for fp64); inputs and outputs fp32, bf16, fp16
or fp64, outputs in the input's dtype; ``∂u`` per column summed in torch (no atomics); ``T`` a
runtime argument (``do_not_specialize``). Under ``TRITON_INTERPRET=1`` the loop is a plain loop.
``BLOCK`` and ``STAGES`` defaults are not tuned on a GPU yet: neither ``auto`` nor
``DURNN_BACKEND`` reaches this kernel (:mod:`.dispatch`); call :func:`indrnn_triton_pipelined`
(``examples/benchmarks/gpu_speed.py`` times it against the kernel ``auto`` picks).
"""
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from . import triton_support
from .indrnn_scan import acc_dtype
from .time_dilation import on_dilated_view
from .triton_support import (
    acc_type, cannot_run_reason, cdiv, empty_buffer, interpreter_enabled, kernels_for_mode,
    launch_config,
)

_KERNELS: Dict[bool, Tuple[object, ...]] = {}
DEFAULT_STAGES = 8


def _build_kernels():
    import triton
    import triton.language as tl

    @triton.jit(do_not_specialize=["T"])
    def pipelined_fwd_kernel(a_ptr, u_ptr, h0_ptr, h_ptr, T, C, N, BLOCK: tl.constexpr,
                             ACC: tl.constexpr, STAGES: tl.constexpr):
        cols, valid, u = triton_support.column_block(u_ptr, tl.program_id(0), C, N, BLOCK, ACC)
        h = tl.load(h0_ptr + cols, mask=valid, other=0.0).to(ACC)
        a_ptrs = a_ptr + cols
        h_ptrs = h_ptr + cols
        for t in tl.range(0, T, num_stages=STAGES):
            a = tl.load(a_ptrs, mask=valid, other=0.0)
            h = tl.maximum(a.to(ACC) + u * h, 0.0)
            tl.store(h_ptrs, h.to(h_ptr.dtype.element_ty), mask=valid)
            a_ptrs += C
            h_ptrs += C

    @triton.jit(do_not_specialize=["T"])
    def pipelined_bwd_kernel(g_ptr, h_ptr, u_ptr, h0_ptr, da_ptr, dh0_ptr, du_ptr, T, C, N,
                             BLOCK: tl.constexpr, ACC: tl.constexpr, STAGES: tl.constexpr):
        cols, valid, u = triton_support.column_block(u_ptr, tl.program_id(0), C, N, BLOCK, ACC)
        da = tl.full([BLOCK], 0.0, ACC)
        du = tl.full([BLOCK], 0.0, ACC)
        last = (T - 1).to(tl.int64) * C + cols
        g_ptrs = g_ptr + last
        before_ptrs = h_ptr + last - C  # h_{t-1} of step t
        da_ptrs = da_ptr + last
        h_cur = tl.load(h_ptr + last, mask=valid, other=0.0)
        for i in tl.range(0, T - 1, num_stages=STAGES):  # steps t = T-1 .. 1
            g = tl.load(g_ptrs, mask=valid, other=0.0)
            h_before = tl.load(before_ptrs, mask=valid, other=0.0)
            da = tl.where(h_cur > 0, g.to(ACC) + u * da, 0.0)
            tl.store(da_ptrs, da.to(da_ptr.dtype.element_ty), mask=valid)
            du += da * h_before.to(ACC)
            h_cur = h_before
            g_ptrs -= C
            before_ptrs -= C
            da_ptrs -= C
        # step 0: h_{-1} is the state in
        g = tl.load(g_ptrs, mask=valid, other=0.0)
        da = tl.where(h_cur > 0, g.to(ACC) + u * da, 0.0)
        tl.store(da_ptrs, da.to(da_ptr.dtype.element_ty), mask=valid)
        du += da * tl.load(h0_ptr + cols, mask=valid, other=0.0).to(ACC)
        tl.store(dh0_ptr + cols, (u * da).to(dh0_ptr.dtype.element_ty), mask=valid)
        tl.store(du_ptr + cols, du, mask=valid)

    return pipelined_fwd_kernel, pipelined_bwd_kernel


def pipelined_launch(columns: int, block: Optional[int]) -> Tuple[int, int]:
    """``(BLOCK, num_warps)``: by default the largest power of two in [128, 1024] that still gives
    at least 128 programs (one per SM of an H100, roughly); under the interpreter
    :func:`.triton_support.launch_config`'s choice. 256 columns per warp."""
    if block is None:
        if interpreter_enabled():
            block = launch_config(columns)[0]
        else:
            block = 1024
            while block > 128 and cdiv(columns, block) < 128:
                block //= 2
    return block, max(1, min(8, block // 256))


class IndRNNTritonPipelined(torch.autograd.Function):
    """``apply(a, u, h0, block, stages)`` on the dilated view ``(T', R, N)``."""

    @staticmethod
    def forward(ctx, a: Tensor, u: Tensor, h0: Tensor, block: Optional[int], stages: int) -> Tensor:
        a, u, h0 = a.contiguous(), u.contiguous(), h0.contiguous()
        T, R, N = a.shape
        C = R * N
        h = empty_buffer(a.shape, a.dtype, a.device)
        if T > 0 and C > 0:
            fwd = kernels_for_mode(_KERNELS, _build_kernels)[0]
            BLOCK, warps = pipelined_launch(C, block)
            fwd[(cdiv(C, BLOCK),)](a, u, h0, h, T, C, N, BLOCK=BLOCK, ACC=acc_type(a.dtype),
                                   STAGES=stages, num_warps=warps)
        ctx.save_for_backward(h, u, h0)
        ctx.block, ctx.stages = block, stages
        return h

    @staticmethod
    def backward(ctx, grad_h: Tensor):
        h, u, h0 = ctx.saved_tensors
        T, R, N = h.shape
        C = R * N
        if T == 0 or C == 0:
            return torch.zeros_like(h), torch.zeros_like(u), torch.zeros_like(h0), None, None
        grad_h = grad_h.to(h.dtype).contiguous()
        grad_a = empty_buffer(h.shape, h.dtype, h.device)
        grad_h0 = empty_buffer(h0.shape, h0.dtype, h0.device)
        du = empty_buffer((R, N), acc_dtype(h.dtype), h.device)
        bwd = kernels_for_mode(_KERNELS, _build_kernels)[1]
        BLOCK, warps = pipelined_launch(C, ctx.block)
        bwd[(cdiv(C, BLOCK),)](grad_h, h, u, h0, grad_a, grad_h0, du, T, C, N, BLOCK=BLOCK,
                               ACC=acc_type(h.dtype), STAGES=ctx.stages, num_warps=warps)
        return grad_a, du.sum(0).to(u.dtype), grad_h0, None, None


def indrnn_triton_pipelined(a: Tensor, u: Tensor, h0: Optional[Tensor] = None, dilation: int = 1,
                            block: Optional[int] = None, stages: int = DEFAULT_STAGES) -> Tensor:
    """Same contract as :func:`.indrnn_cpu.indrnn_loop`: a ``(T, B, N)``, u ``(N,)``, h0
    ``(d, B, N)`` or ``None`` (zeros); returns h ``(T, B, N)`` in ``a``'s dtype. ``block`` (a power
    of two) overrides the columns per program, ``stages`` the pipeline depth (steps in flight
    + 1). Raises ``RuntimeError`` (one line) where it cannot run."""
    reason = cannot_run_reason(a)
    if reason is not None:
        raise RuntimeError(f"indrnn_triton_pipelined cannot run here: {reason}")
    return on_dilated_view(IndRNNTritonPipelined.apply, a, u, h0, dilation, block, stages)
