"""Exact parallel-in-time IndRNN recurrence (docs/model.md section 1) as Triton kernels: the chunked scan
of :mod:`.indrnn_scan` for few columns and long sequences.

    h_t = relu(a_t + u ⊙ h_{t-d})

Layout: dilation uses the view of :mod:`.time_dilation`, so the kernels recur over ``t - 1`` on a
contiguous ``(T', C)`` array, ``C = d·B·N``. Time is cut into ``n = ceil(T/K)`` chunks of ``K``
steps (the last one may be shorter); columns into blocks of ``BLOCK``. Each step is the map
``x ↦ clip(α x + β, lo, hi)`` (``α = u``, ``β = a_t``, ``lo = 0``, ``hi = ∞``); the composition
rule is in :mod:`.indrnn_scan`.

Forward, three kernels:

1. chunk maps, grid ``(n-1, column blocks)``: one program composes the ``K`` step maps of one
   chunk (chunks ``0..n-2``, all full) sequentially in registers, giving ``(β, lo, hi)``
   (``α = u^K``, computed once in torch);
2. chunk start states, grid ``(column blocks,)``: ``s_0 = h0``,
   ``s_{k+1} = clip(u^K s_k + β_k, lo_k, hi_k)``, ``n - 1`` sequential steps;
3. chunks, grid ``(n, column blocks)``: each program re-runs its chunk from its start state with
   the sequential kernel's arithmetic ``h = relu(a + u h)`` and writes h, so only the start
   states carry the scan's rounding.

Backward (``m_t = 1[h_t > 0]``): ``∂a_t = c_t ∂a_{t+1} + b_t`` with ``c_t = m_t u``,
``b_t = m_t g_t`` is a linear recurrence, chunked the same way:

1. grid ``(n-1, column blocks)``, chunks ``1..n-1``: ``val_k`` (∂a at the chunk's first step for
   zero incoming gradient) and ``prod_k = Π c = u^K`` if every mask of the chunk is 1, else 0;
2. grid ``(column blocks,)``: incoming gradients ``inc_{n-1} = 0``,
   ``inc_{k-1} = val_k + prod_k inc_k`` (``inc_k`` is ∂a at the first step of chunk ``k+1``);
3. grid ``(n, column blocks)``: each chunk from its incoming gradient, writing ∂a, its partial
   ``∂u = Σ ∂a_t ⊙ h_{t-1}`` into row ``k`` of an ``(n, C)`` buffer (summed in torch: no atomics,
   deterministic), and chunk 0 writes ``∂h_{-1} = u ⊙ ∂a_0``.

Chunk length: ``K`` is picked per call in Python, by default :func:`default_chunk` (a power of
two near ``sqrt(T)``), capped by :func:`.indrnn_scan.chunk_length` when ``|u| > 1``; ``T``, ``K``
and ``n`` are runtime arguments marked ``do_not_specialize``, so any length and chunk share one
compiled kernel per (dtype, BLOCK). The default ``K`` was timed on one H100 only; the auto rule that picks
this backend on CUDA comes from that measurement: see :mod:`.dispatch`.

With one chunk (``K = T``, :data:`ONE_CHUNK`) the summaries vanish and what runs is the plain
sequential recurrence: that is :func:`.indrnn_triton.indrnn_triton`.

Kernels: the state, summaries and ∂u are held in fp32 (fp64 for fp64 inputs); inputs and outputs
are fp32, bf16, fp16 or fp64 and outputs have the input's dtype. Each loop prefetches the next
step's inputs so that the global-load latency overlaps the dependent arithmetic. Of
``triton.language`` they call only core builtins (not its ``@triton.jit`` helpers such as
``tl.zeros``: those are decorated when ``triton.language`` is first imported, so with the
interpreter switched on later they would refuse to run). Lazy import, per-mode kernels, the jit
helpers they share (column block set-up, the backward loops' prefetch), ``DEBUG_FILL`` and the
launch block are in :mod:`.triton_support`. The chunk summaries are stored in the accumulation dtype;
``hi = ∞`` is stored as the dtype's largest finite number (``BIG``), so ``u = 0`` never forms
``0·∞``; with ``|u| > 1`` ``u·BIG`` overflows to ``∞``, which is harmless (``lo`` stays finite
and ``u ≠ 0``).
"""
import math
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from .indrnn_scan import acc_dtype, chunk_length
from . import triton_support
from .time_dilation import on_dilated_view
from .triton_support import (
    acc_type, cannot_run_reason, cdiv, empty_buffer, kernels_for_mode, launch_config,
)

_KERNELS: Dict[bool, Tuple[object, ...]] = {}
ONE_CHUNK = "one chunk"  #: the ``chunk`` of :class:`IndRNNTritonChunks` that makes it sequential


def default_chunk(T: int) -> int:
    """The default chunk length: the power of two nearest ``sqrt(T)`` (the forward's critical
    path is about ``2K + n`` dependent steps); :func:`.indrnn_scan.chunk_length` then caps it."""
    return 2 ** round(math.log2(math.sqrt(T))) if T > 1 else 1


def _build_kernels():
    import triton
    import triton.language as tl

    @triton.jit(do_not_specialize=["K"])
    def scan_fwd_maps_kernel(a_ptr, u_ptr, beta_ptr, lo_ptr, hi_ptr, K, C, N,
                             BLOCK: tl.constexpr, ACC: tl.constexpr, BIG: tl.constexpr):
        # chunk k = program_id(0) is full (k < n - 1): steps k*K .. k*K + K - 1
        k = tl.program_id(0)
        cols, valid, u = triton_support.column_block(u_ptr, tl.program_id(1), C, N, BLOCK, ACC)
        a_ptrs = a_ptr + (k * K).to(tl.int64) * C + cols
        beta = tl.load(a_ptrs, mask=valid, other=0.0).to(ACC)  # the first step's map
        lo = tl.full([BLOCK], 0.0, ACC)
        hi = tl.full([BLOCK], BIG, ACC)
        a_ptrs += C
        a_next = tl.load(a_ptrs, mask=valid & (1 < K), other=0.0)
        for j in range(1, K):
            a_cur = a_next.to(ACC)
            a_ptrs += C
            a_next = tl.load(a_ptrs, mask=valid & (j + 1 < K), other=0.0)
            p = u * lo + a_cur
            q = u * hi + a_cur
            lo = tl.maximum(tl.minimum(p, q), 0.0)
            hi = tl.maximum(tl.maximum(p, q), 0.0)
            beta = u * beta + a_cur
        out = k.to(tl.int64) * C + cols
        tl.store(beta_ptr + out, beta, mask=valid)
        tl.store(lo_ptr + out, lo, mask=valid)
        tl.store(hi_ptr + out, hi, mask=valid)

    @triton.jit(do_not_specialize=["n"])
    def scan_fwd_starts_kernel(uk_ptr, h0_ptr, beta_ptr, lo_ptr, hi_ptr, start_ptr, n, C, N,
                               BLOCK: tl.constexpr, ACC: tl.constexpr):
        cols, valid, alpha = triton_support.column_block(uk_ptr, tl.program_id(0), C, N, BLOCK, ACC)
        s = tl.load(h0_ptr + cols, mask=valid, other=0.0).to(ACC)
        s_ptrs = start_ptr + cols
        tl.store(s_ptrs, s, mask=valid)
        b_ptrs = beta_ptr + cols
        l_ptrs = lo_ptr + cols
        u_ptrs = hi_ptr + cols
        more = valid & (n > 1)
        b_next = tl.load(b_ptrs, mask=more, other=0.0)
        l_next = tl.load(l_ptrs, mask=more, other=0.0)
        u_next = tl.load(u_ptrs, mask=more, other=0.0)
        for k in range(0, n - 1):
            beta = b_next
            lo = l_next
            hi = u_next
            b_ptrs += C
            l_ptrs += C
            u_ptrs += C
            more = valid & (k + 2 < n)
            b_next = tl.load(b_ptrs, mask=more, other=0.0)
            l_next = tl.load(l_ptrs, mask=more, other=0.0)
            u_next = tl.load(u_ptrs, mask=more, other=0.0)
            s = tl.minimum(tl.maximum(alpha * s + beta, lo), hi)
            s_ptrs += C
            tl.store(s_ptrs, s, mask=valid)

    @triton.jit(do_not_specialize=["T", "K"])
    def scan_fwd_chunks_kernel(a_ptr, u_ptr, start_ptr, h_ptr, T, K, C, N,
                               BLOCK: tl.constexpr, ACC: tl.constexpr):
        k = tl.program_id(0)
        cols, valid, u = triton_support.column_block(u_ptr, tl.program_id(1), C, N, BLOCK, ACC)
        h = tl.load(start_ptr + k.to(tl.int64) * C + cols, mask=valid, other=0.0).to(ACC)
        t0 = k * K
        steps = tl.minimum(T - t0, K)
        base = t0.to(tl.int64) * C
        a_ptrs = a_ptr + base + cols
        h_ptrs = h_ptr + base + cols
        a_next = tl.load(a_ptrs, mask=valid, other=0.0)
        for j in range(0, steps):
            a_cur = a_next
            a_ptrs += C
            a_next = tl.load(a_ptrs, mask=valid & (j + 1 < steps), other=0.0)
            h = tl.maximum(a_cur.to(ACC) + u * h, 0.0)
            tl.store(h_ptrs, h.to(h_ptr.dtype.element_ty), mask=valid)
            h_ptrs += C

    @triton.jit(do_not_specialize=["T", "K"])
    def scan_bwd_maps_kernel(g_ptr, h_ptr, u_ptr, uk_ptr, val_ptr, prod_ptr, T, K, C, N,
                             BLOCK: tl.constexpr, ACC: tl.constexpr):
        # chunk k = program_id(0) + 1, stored in row k - 1
        k = tl.program_id(0) + 1
        cols, valid, u = triton_support.column_block(u_ptr, tl.program_id(1), C, N, BLOCK, ACC)
        prod = tl.load(uk_ptr + cols % N, mask=valid, other=0.0).to(ACC)
        val = tl.full([BLOCK], 0.0, ACC)
        _, steps, last = triton_support.chunk_rows(k, T, K, C)
        g_ptrs = g_ptr + last + cols
        h_ptrs = h_ptr + last + cols
        g_next = tl.load(g_ptrs, mask=valid, other=0.0)
        h_next = tl.load(h_ptrs, mask=valid, other=0.0)
        for j in range(0, steps):
            g_cur = g_next
            h_cur = h_next
            g_ptrs, h_ptrs, g_next, h_next = triton_support.load_back(g_ptrs, h_ptrs, C,
                                                                      valid & (j + 1 < steps))
            val = tl.where(h_cur > 0, g_cur.to(ACC) + u * val, 0.0)
            prod = tl.where(h_cur > 0, prod, 0.0)
        out = (k - 1).to(tl.int64) * C + cols
        tl.store(val_ptr + out, val, mask=valid)
        tl.store(prod_ptr + out, prod, mask=valid)

    @triton.jit(do_not_specialize=["n"])
    def scan_bwd_incoming_kernel(val_ptr, prod_ptr, inc_ptr, n, C,
                                 BLOCK: tl.constexpr, ACC: tl.constexpr):
        cols = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        valid = cols < C
        inc = tl.full([BLOCK], 0.0, ACC)
        i_ptrs = inc_ptr + (n - 1).to(tl.int64) * C + cols
        tl.store(i_ptrs, inc, mask=valid)
        # chunk k = n-1 .. 1 lives in row k - 1 of val and prod
        v_ptrs = val_ptr + (n - 2).to(tl.int64) * C + cols
        p_ptrs = prod_ptr + (n - 2).to(tl.int64) * C + cols
        more = valid & (n > 1)
        v_next = tl.load(v_ptrs, mask=more, other=0.0)
        p_next = tl.load(p_ptrs, mask=more, other=0.0)
        for i in range(0, n - 1):
            v = v_next
            p = p_next
            v_ptrs, p_ptrs, v_next, p_next = triton_support.load_back(v_ptrs, p_ptrs, C,
                                                                      valid & (i + 2 < n))
            inc = v + p * inc
            i_ptrs -= C
            tl.store(i_ptrs, inc, mask=valid)

    @triton.jit(do_not_specialize=["T", "K"])
    def scan_bwd_chunks_kernel(g_ptr, h_ptr, u_ptr, h0_ptr, inc_ptr, da_ptr, dh0_ptr, du_ptr,
                               T, K, C, N, BLOCK: tl.constexpr, ACC: tl.constexpr):
        k = tl.program_id(0)
        cols, valid, u = triton_support.column_block(u_ptr, tl.program_id(1), C, N, BLOCK, ACC)
        da = tl.load(inc_ptr + k.to(tl.int64) * C + cols, mask=valid, other=0.0).to(ACC)
        du = tl.full([BLOCK], 0.0, ACC)
        t0, steps, last = triton_support.chunk_rows(k, T, K, C)
        g_ptrs = g_ptr + last + cols
        h_ptrs = h_ptr + last + cols
        da_ptrs = da_ptr + last + cols
        h_cur = tl.load(h_ptrs, mask=valid, other=0.0)
        g_cur = tl.load(g_ptrs, mask=valid, other=0.0)
        # steps t = last .. t0 + 1: h_{t-1} is read from h
        for i in range(0, steps - 1):
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
        # step t0: h_{t0-1} is the previous chunk's last state, or the state in for chunk 0
        before = tl.maximum(t0 - 1, 0).to(tl.int64) * C
        h_in = (tl.load(h_ptr + before + cols, mask=valid & (k > 0), other=0.0).to(ACC)
                + tl.load(h0_ptr + cols, mask=valid & (k == 0), other=0.0).to(ACC))
        da = tl.where(h_cur > 0, g_cur.to(ACC) + u * da, 0.0)
        tl.store(da_ptrs, da.to(da_ptr.dtype.element_ty), mask=valid)
        du += da * h_in
        tl.store(dh0_ptr + cols, (u * da).to(dh0_ptr.dtype.element_ty), mask=valid & (k == 0))
        tl.store(du_ptr + k.to(tl.int64) * C + cols, du, mask=valid)

    return (scan_fwd_maps_kernel, scan_fwd_starts_kernel, scan_fwd_chunks_kernel,
            scan_bwd_maps_kernel, scan_bwd_incoming_kernel, scan_bwd_chunks_kernel)


class IndRNNTritonChunks(torch.autograd.Function):
    """``apply(a, u, h0, chunk, block)`` on the dilated view ``(T', R, N)``: ``chunk`` is K, or
    ``None`` for :func:`default_chunk`, or :data:`ONE_CHUNK` for ``K = T'`` (no
    summaries: the plain sequential recurrence, uncapped for ``|u| > 1``)."""

    @staticmethod
    def forward(ctx, a: Tensor, u: Tensor, h0: Tensor, chunk, block: Optional[int]) -> Tensor:
        a = a.contiguous()
        u = u.contiguous()
        h0 = h0.contiguous()
        T, R, N = a.shape
        C = R * N
        acc = acc_dtype(a.dtype)
        if chunk is ONE_CHUNK:
            K = max(T, 1)
        else:
            K = chunk_length(T, u, acc, default_chunk(T) if chunk is None else chunk)
        h = empty_buffer(a.shape, a.dtype, a.device)
        uk = u.to(acc).pow(K)  # α of a full chunk
        if T > 0 and C > 0:
            maps, starts, chunks = kernels_for_mode(_KERNELS, _build_kernels)[:3]
            n = -(-T // K)
            BLOCK, warps = launch_config(C, block)
            cb = cdiv(C, BLOCK)
            ACC = acc_type(a.dtype)
            beta, lo, hi = (empty_buffer((max(n - 1, 1), C), acc, a.device) for _ in range(3))
            start = empty_buffer((n, C), acc, a.device)
            if n > 1:
                maps[(n - 1, cb)](a, u, beta, lo, hi, K, C, N, BLOCK=BLOCK, ACC=ACC,
                                  BIG=torch.finfo(acc).max, num_warps=warps)
            starts[(cb,)](uk, h0, beta, lo, hi, start, n, C, N, BLOCK=BLOCK, ACC=ACC,
                          num_warps=warps)
            chunks[(n, cb)](a, u, start, h, T, K, C, N, BLOCK=BLOCK, ACC=ACC, num_warps=warps)
        ctx.save_for_backward(h, u, h0, uk)
        ctx.K, ctx.block = K, block
        return h

    @staticmethod
    def backward(ctx, grad_h: Tensor):
        h, u, h0, uk = ctx.saved_tensors
        T, R, N = h.shape
        C = R * N
        K = ctx.K
        grad_h = grad_h.to(h.dtype).contiguous()
        grad_a = empty_buffer(h.shape, h.dtype, h.device)
        grad_h0 = empty_buffer(h0.shape, h0.dtype, h0.device)
        if T == 0 or C == 0:
            return grad_a, torch.zeros_like(u), torch.zeros_like(h0), None, None
        maps, incoming, chunks = kernels_for_mode(_KERNELS, _build_kernels)[3:]
        acc = acc_dtype(h.dtype)
        n = -(-T // K)
        BLOCK, warps = launch_config(C, ctx.block)
        cb = cdiv(C, BLOCK)
        ACC = acc_type(h.dtype)
        val, prod = (empty_buffer((max(n - 1, 1), C), acc, h.device) for _ in range(2))
        inc = empty_buffer((n, C), acc, h.device)
        du_part = empty_buffer((n, C), acc, h.device)
        if n > 1:
            maps[(n - 1, cb)](grad_h, h, u, uk, val, prod, T, K, C, N, BLOCK=BLOCK, ACC=ACC,
                              num_warps=warps)
        incoming[(cb,)](val, prod, inc, n, C, BLOCK=BLOCK, ACC=ACC, num_warps=warps)
        chunks[(n, cb)](grad_h, h, u, h0, inc, grad_a, grad_h0, du_part, T, K, C, N,
                        BLOCK=BLOCK, ACC=ACC, num_warps=warps)
        grad_u = du_part.view(n * R, N).sum(0).to(u.dtype)
        return grad_a, grad_u, grad_h0, None, None


def indrnn_triton_scan(a: Tensor, u: Tensor, h0: Optional[Tensor] = None, dilation: int = 1,
                       chunk: Optional[int] = None, block: Optional[int] = None) -> Tensor:
    """Same contract as :func:`.indrnn_cpu.indrnn_loop`: a ``(T, B, N)``, u ``(N,)``, h0
    ``(d, B, N)`` or ``None`` (zeros); returns h ``(T, B, N)`` in ``a``'s dtype. ``chunk``
    overrides the chunk length K and ``block`` the columns per program (tests use small values
    to get many chunks and column blocks on small inputs). Raises ``RuntimeError`` (one line)
    where it cannot run."""
    reason = cannot_run_reason(a)
    if reason is not None:
        raise RuntimeError(f"indrnn_triton_scan cannot run here: {reason}")
    return on_dilated_view(IndRNNTritonChunks.apply, a, u, h0, dilation, chunk, block)
