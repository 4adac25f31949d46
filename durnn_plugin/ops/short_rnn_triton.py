"""The DuRNN short-term recurrence (docs/model.md section 2) as Triton kernels, forward and backward, with
the contract of :func:`.short_rnn_cpu.short_rnn_loop`::

    s_t = φ(p_t + s_{t-1} Uᵀ)        p ``(T, B, N)`` = ``W_s x_t + b_s`` (one GEMM, outside),
                                     U ``(N, N)``, s_{-1} = s0 ``(B, N)``, φ = relu or tanh

Forward, grid ``(ceil(B / BLOCK_B),)``: one persistent program per tile of ``BLOCK_B`` batch rows
loads ``Uᵀ`` once (zero-padded to ``NP × NP``, ``NP`` the power of two ≥ max(N, 16): ``tl.dot``
needs dims ≥ 16), keeps the state in registers and loops over t with one ``tl.dot`` per step,
``z_t = p_t + s_{t-1} Uᵀ``, storing ``s_t = φ(z_t)``. The next step's ``p`` is loaded before the
current step's dot (it does not depend on the state). Padded rows and columns stay 0
(``φ(0) = 0``).

Backward, same grid, the transposed loop (``g_t`` the incoming gradient at ``s_t``)::

    δ_t = φ'(s_t) ⊙ (g_t + δ_{t+1} U)      φ' = 1[s_t > 0] (relu), 1 - s_t² (tanh)

stores ``∂p_t = δ_t`` (the masked gradient ``m ⊙ δ``) for all t; then, in torch, ``∂U = Σ_t
δ_tᵀ s_{t-1}`` is one GEMM over all ``T·B`` positions and ``∂s0 = δ_0 U`` (no atomics,
deterministic), as in :mod:`.short_rnn_cpu`.

Dtypes: inputs fp32, bf16, fp16 or fp64 (p, U and s0 of one dtype); outputs and gradients in
that dtype. The state and the dot's accumulation are fp32 (fp64 for fp64). The dot's operands are
``U`` and the state in the input dtype: bf16/fp16 run on tensor cores with the state rounded to
the input dtype as operand (as cuDNN does); fp32 operands use ``input_precision="tf32"`` on CUDA
(10-bit mantissa, like cuDNN's default for fp32 RNNs; the CUDA tests allow 2e-3 relative for
fp32); fp64 uses ``ieee``. Under ``TRITON_INTERPRET=1`` the dot is numpy's, in full precision
(the interpreter does not handle bf16 dots).

``T`` is a runtime argument (``do_not_specialize``): any length shares one compiled kernel per
(dtype, NP, BLOCK_B, activation). ``U`` stays resident in the program's shared memory (loaded
once, before the loop), so ``NP² ×`` element size must fit one SM: compiled for sm_90 with
``BLOCK_B = 16`` the kernels take 136 KiB at ``NP = 256`` in bf16/fp16 (fits the 227 KiB of an
H100) but 272 KiB in fp32, so fp32 runs up to ``N = 128`` (72 KiB) there. Where it does not fit,
Triton's out-of-resources error is raised as one line. ``BLOCK_B`` (default 16 on CUDA) and the warp count
are not tuned on a GPU yet. Lazy import, per-mode kernels, the jit helpers (tile set-up, the
backward loop's prefetch) and ``DEBUG_FILL`` are in :mod:`.triton_support`; like the IndRNN
kernels these call only core builtins of ``triton.language``.
"""
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from . import triton_support
from .short_rnn_cpu import ACTIVATIONS, weight_and_state_grads
from .triton_support import (
    acc_type, cannot_run_reason, cdiv, empty_buffer, interpreter_enabled, kernels_for_mode,
)

_KERNELS: Dict[bool, Tuple[object, ...]] = {}
NUM_WARPS = 4


def _build_kernels():
    import triton
    import triton.language as tl

    @triton.jit(do_not_specialize=["T"])
    def short_fwd_kernel(p_ptr, u_ptr, s0_ptr, s_ptr, T, B, N, BLOCK_B: tl.constexpr,
                         NP: tl.constexpr, ACC: tl.constexpr, PREC: tl.constexpr,
                         TANH: tl.constexpr):
        rows, cols, valid, ut = triton_support.batch_tile(u_ptr, B, N, BLOCK_B, NP, True)  # Uᵀ
        offs = rows[:, None] * N + cols[None, :]
        s = tl.load(s0_ptr + offs, mask=valid, other=0.0).to(ACC)
        step = B * N
        p_ptrs = p_ptr + offs
        s_ptrs = s_ptr + offs
        p_next = tl.load(p_ptrs, mask=valid, other=0.0)
        for t in range(0, T):
            p_cur = p_next
            p_ptrs += step
            p_next = tl.load(p_ptrs, mask=valid & (t + 1 < T), other=0.0)
            z = tl.dot(s.to(ut.dtype), ut, acc=p_cur.to(ACC), out_dtype=ACC, input_precision=PREC)
            if TANH:
                s = 1.0 - 2.0 / (tl.exp(2.0 * z) + 1.0)
            else:
                s = tl.maximum(z, 0.0)
            tl.store(s_ptrs, s.to(s_ptr.dtype.element_ty), mask=valid)
            s_ptrs += step

    @triton.jit(do_not_specialize=["T"])
    def short_bwd_kernel(g_ptr, s_ptr, u_ptr, dp_ptr, T, B, N, BLOCK_B: tl.constexpr,
                         NP: tl.constexpr, ACC: tl.constexpr, PREC: tl.constexpr,
                         TANH: tl.constexpr):
        rows, cols, valid, u = triton_support.batch_tile(u_ptr, B, N, BLOCK_B, NP, False)
        step = B * N
        last = (T - 1).to(tl.int64) * step + rows[:, None] * N + cols[None, :]
        g_ptrs = g_ptr + last
        s_ptrs = s_ptr + last
        dp_ptrs = dp_ptr + last
        g_next = tl.load(g_ptrs, mask=valid, other=0.0)
        s_next = tl.load(s_ptrs, mask=valid, other=0.0)
        d = tl.full([BLOCK_B, NP], 0.0, ACC)
        for i in range(0, T):
            g_cur = g_next
            s_cur = s_next.to(ACC)
            g_ptrs, s_ptrs, g_next, s_next = triton_support.load_back(g_ptrs, s_ptrs, step,
                                                                      valid & (i + 1 < T))
            z = tl.dot(d.to(u.dtype), u, acc=g_cur.to(ACC), out_dtype=ACC, input_precision=PREC)
            if TANH:
                d = z * (1.0 - s_cur * s_cur)
            else:
                d = tl.where(s_cur > 0, z, 0.0)
            tl.store(dp_ptrs, d.to(dp_ptr.dtype.element_ty), mask=valid)
            dp_ptrs -= step

    return short_fwd_kernel, short_bwd_kernel


def padded_width(N: int) -> int:
    """``NP``: the power of two ≥ max(N, 16) that the kernels tile ``U`` with."""
    return max(16, 1 << max(0, N - 1).bit_length())


def default_block_b(B: int) -> int:
    """Batch rows per program: 16 on CUDA (most programs for a given B; not tuned); under the
    interpreter, where fewer and larger programs are faster, up to 64."""
    if not interpreter_enabled():
        return 16
    return min(64, padded_width(B))


def _launch(kernel, grid_rows: int, args, dtype: torch.dtype, N: int, block_b: int,
            activation: str) -> None:
    from triton.runtime.errors import OutOfResources

    prec = "ieee" if dtype == torch.float64 else "tf32"
    try:
        kernel[(cdiv(grid_rows, block_b),)](*args, BLOCK_B=block_b, NP=padded_width(N),
                                            ACC=acc_type(dtype), PREC=prec,
                                            TANH=activation == "tanh", num_warps=NUM_WARPS)
    except OutOfResources as e:
        raise RuntimeError(f"short_rnn_triton cannot run here: U ({N}x{N}, {dtype}) does not fit "
                           f"one program: {' '.join(str(e).split())}") from None


class _ShortRNNTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p: Tensor, U: Tensor, s0: Tensor, activation: str,
                block_b: Optional[int]) -> Tensor:
        p, U, s0 = p.contiguous(), U.contiguous(), s0.contiguous()
        T, B, N = p.shape
        block_b = block_b or default_block_b(B)
        s = empty_buffer(p.shape, p.dtype, p.device)
        if T > 0 and B > 0 and N > 0:
            fwd = kernels_for_mode(_KERNELS, _build_kernels)[0]
            _launch(fwd, B, (p, U, s0, s, T, B, N), p.dtype, N, block_b, activation)
        ctx.activation, ctx.block_b = activation, block_b
        ctx.save_for_backward(s, U, s0)
        return s

    @staticmethod
    def backward(ctx, grad_s: Tensor):
        s, U, s0 = ctx.saved_tensors
        T, B, N = s.shape
        if T == 0 or B == 0 or N == 0:
            return torch.zeros_like(s), torch.zeros_like(U), torch.zeros_like(s0), None, None
        grad_s = grad_s.to(s.dtype).contiguous()
        grad_p = empty_buffer(s.shape, s.dtype, s.device)
        bwd = kernels_for_mode(_KERNELS, _build_kernels)[1]
        _launch(bwd, B, (grad_s, s, U, grad_p, T, B, N), s.dtype, N, ctx.block_b, ctx.activation)
        grad_U, grad_s0 = weight_and_state_grads(grad_p, s, s0, U)
        return grad_p, grad_U, grad_s0, None, None


def short_rnn_triton(p: Tensor, U: Tensor, s0: Tensor, activation: str = "relu",
                     block_b: Optional[int] = None) -> Tensor:
    """``s_t = φ(p_t + s_{t-1} Uᵀ)``: p ``(T, B, N)``, U ``(N, N)``, s0 ``(B, N)`` → s
    ``(T, B, N)`` in p's dtype (U and s0 are cast to it); ``activation`` is ``relu`` or
    ``tanh``. ``block_b`` overrides the batch rows per program (a power of two ≥ 16; tests use it
    to get several programs and a ragged last tile). Raises ``RuntimeError`` (one line) where it
    cannot run."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r}: allowed {', '.join(ACTIVATIONS)}")
    if block_b is not None and (block_b < 16 or block_b & (block_b - 1)):
        raise ValueError(f"block_b={block_b}: allowed powers of two >= 16")
    reason = cannot_run_reason(p)
    if reason is not None:
        raise RuntimeError(f"short_rnn_triton cannot run here: {reason}")
    return _ShortRNNTriton.apply(p, U.to(p.dtype), s0.to(p.dtype), activation, block_b)
