"""Exact parallel-in-time IndRNN recurrence (docs/model.md section 1): a chunked scan in vectorised torch.

    h_t = relu(a_t + u ⊙ h_{t-d})

Each step is the map ``x ↦ clip(α x + β, lo, hi)`` with ``α = u``, ``β = a_t``, ``lo = 0``,
``hi = ∞``, where ``clip(y, lo, hi) = min(max(y, lo), hi)`` and ``lo ≤ hi``.

Composition rule. For ``f = (α1, β1, lo1, hi1)`` applied first and ``g = (α2, β2, lo2, hi2)``
after it, ``g∘f = (α, β, lo, hi)`` with::

    α  = α2 α1          β = α2 β1 + β2
    (L, H) = (α2 lo1 + β2, α2 hi1 + β2)   if α2 ≥ 0
           = (α2 hi1 + β2, α2 lo1 + β2)   if α2 < 0     (a negative slope swaps the bounds)
    lo = clip(L, lo2, hi2)      hi = clip(H, lo2, hi2)

Proof sketch: ``y ↦ α2 y + β2`` is monotone, so it maps ``clip(z, lo1, hi1)`` to
``clip(α2 z + β2, ·, ·)`` with the image bounds (ordered as above; for ``α2 = 0`` the map is the
constant ``β2`` and ``L = H = β2``). Then ``clip(clip(w, L, H), lo2, hi2) = clip(w, clip(L, lo2,
hi2), clip(H, lo2, hi2))`` for ``L ≤ H``, which also covers disjoint intervals (the result is then
the constant ``lo2`` or ``hi2``, and so is the formula). Hence ``lo ≤ hi`` and the family is closed
under composition, for either sign of α. For an IndRNN step (``lo2 = 0``, ``hi2 = ∞``) the bound
update is ``(lo, hi) = relu(min(P, Q)), relu(max(P, Q))`` with ``P = u lo1 + a_t``,
``Q = u hi1 + a_t``: ``min``/``max`` do the sign-dependent swap. ``∞`` is stored as the dtype's
largest finite number, so ``u = 0`` never forms ``0·∞``.

Forward with chunks of ``K`` steps (``n = ceil(T/K)`` chunks, the last zero-padded):

1. chunk maps, all chunks at once: ``K`` vectorised compositions over ``(n, C)`` tensors
   (``α = u^K`` is the same for every full chunk);
2. chunk start states: ``s_0 = h0``, ``s_{k+1} = clip(α s_k + β_k, lo_k, hi_k)`` (``n`` steps);
3. within chunks from the start states: ``K`` vectorised steps ``relu(a + u h)``, the same
   arithmetic as the sequential loop, so only the chunk start states carry the scan's rounding.

Backward: ``∂a_t = c_t ∂a_{t+1} + b_t`` with ``c_t = m_t u``, ``b_t = m_t g_t`` and
``m_t = 1[h_t > 0]`` is a linear recurrence (a scan of affine maps), chunked the same way:
per chunk ``(Π c = u^K·Π m, ∂a at the chunk start for zero incoming gradient)``, then ``n`` sequential
steps for the incoming gradients, then ``K`` vectorised steps. ``∂u = Σ ∂a_t ⊙ h_{t-1}`` and
``∂h_{-1} = u ⊙ ∂a_0`` as in :mod:`.indrnn_cpu`.

Torch ops per sequence: about ``11K + 3n`` (fwd+bwd) instead of ``4T`` for the loop (K: see
:func:`chunk_length`); elementwise work is about 3x the loop's. It pays off for few columns and long T
(``examples/benchmarks/scan_speed.py``; :mod:`.dispatch` has the measured rule). Inputs in
bf16/fp16 are computed in fp32, fp64 in fp64.

Accuracy: equal to the sequential loop up to the rounding of the chunk start states. Observed
(max error relative to the largest magnitude): fp64 ≤ 1e-15; fp32 ≤ 1e-6 on short sequences
(tests use 2e-6), and at T = 100k, B·N = 4 with u = 0.9999 about 1e-6 for h and ∂a and 2e-6
for ∂u, the same size as the loop's own error against fp64 (tests use 1e-5). When ``|u| > 1``
the chunk is capped so that ``max|u|^K`` stays far below the dtype's overflow (values that
overflow the sequential loop overflow here too).
"""
import math
from typing import Optional

import torch
from torch import Tensor

from .time_dilation import on_dilated_view


#: elements of one vectorised step (``n·C``) the default chunk length aims to stay under:
#: torch's intra-op grain size, so a step is one single-threaded op whose operands stay in cache
STEP_ELEMENTS = 32768


def chunk_length(T: int, u: Tensor, dtype: torch.dtype, chunk: Optional[int] = None,
                 columns: int = 1) -> int:
    """``chunk``, or by default ``K = max(sqrt(T/2), T·C/STEP_ELEMENTS)``: ``sqrt(T/2)`` balances
    the ~11K in-chunk ops against the ~3n chunk ops (roughly); the second term keeps each
    vectorised step (``n·C`` elements) single-threaded and in cache (multi-threaded steps were up
    to 50x slower when another process shared the cores). Either way capped so that
    ``max|u|^K`` stays below ~1e30 (fp32) / 1e300 (fp64), and at most ``T``."""
    if chunk is None:
        K = max(1, int(math.sqrt(T / 2.0)), -(-T * columns // STEP_ELEMENTS))
    else:
        K = max(1, int(chunk))
    umax = float(u.detach().abs().max()) if u.numel() else 0.0
    if umax > 1.0:
        limit = math.log(1e300 if dtype == torch.float64 else 1e30)
        K = min(K, max(1, int(limit / math.log(umax))))
    return min(K, max(T, 1))


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype of the scans' summaries and ∂u: fp64 for fp64 inputs, else fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _chunked(x: Tensor, K: int) -> Tensor:
    """``(T, C)`` -> ``(K, n, C)`` contiguous, zero-padding time to ``n·K``: row ``j`` of chunk
    ``k`` is time ``k·K + j``. One copy."""
    T, C = x.shape
    n = -(-T // K)
    full = T // K
    out = x.new_empty(K, n, C)
    out.transpose(0, 1)[:full].copy_(x[: full * K].view(full, K, C))
    rest = T - full * K
    if rest:
        out[:rest, full] = x[full * K:]
        out[rest:, full] = 0
    return out


def _unchunked(y: Tensor, T: int) -> Tensor:
    K, n, C = y.shape
    return y.transpose(0, 1).reshape(n * K, C)[:T]


def scan_forward(a: Tensor, u: Tensor, h0: Tensor, K: int) -> Tensor:
    """a ``(T, C)``, u ``(C,)``, h0 ``(C,)``, all in the working dtype; returns h ``(T, C)``."""
    T, C = a.shape
    A = _chunked(a, K)  # (K, n, C)
    n = A.shape[1]
    big = torch.finfo(a.dtype).max
    start = torch.empty(n, C, dtype=a.dtype, device=a.device)
    start[0] = h0
    if n > 1:
        # 1. maps of chunks 0..n-2, starting from each chunk's first step (lo=0, hi=inf)
        Af = A[:, : n - 1]
        beta = Af[0].clone()
        lo = torch.zeros(n - 1, C, dtype=a.dtype, device=a.device)
        hi = torch.full_like(lo, big)
        p, q = torch.empty_like(lo), torch.empty_like(lo)
        for j in range(1, K):
            at = Af[j]
            torch.addcmul(at, u, lo, out=p)  # P = u lo + a_t
            torch.addcmul(at, u, hi, out=q)  # Q = u hi + a_t
            torch.minimum(p, q, out=lo).relu_()
            torch.maximum(p, q, out=hi).relu_()
            torch.addcmul(at, u, beta, out=beta)
        alpha = u.pow(K)
        # 2. chunk start states
        for k in range(n - 1):
            torch.addcmul(beta[k], alpha, start[k], out=start[k + 1])
            torch.clamp(start[k + 1], lo[k], hi[k], out=start[k + 1])
    # 3. within chunks
    H = torch.empty_like(A)
    prev = start
    for j in range(K):
        torch.addcmul(A[j], u, prev, out=H[j])
        H[j].relu_()
        prev = H[j]
    return _unchunked(H, T)


def scan_backward(grad_h: Tensor, h: Tensor, h0: Tensor, u: Tensor, K: int):
    """From grad_h and h ``(T, C)``, h0 and u ``(C,)`` (working dtype): ∂a ``(T, C)`` and the
    per-column ∂u ``(C,)``."""
    T, C = h.shape
    Hc = _chunked(h, K)  # (K, n, C)
    Mc = Hc > 0
    Cc = torch.where(Mc, u, 0.0)  # c_t = m_t u
    Bc = _chunked(grad_h, K).mul_(Mc)  # b_t = m_t g_t
    n = Cc.shape[1]
    incoming = torch.zeros(n, C, dtype=h.dtype, device=h.device)  # ∂a at the next chunk's start
    if n > 1:
        # 1. chunks 1..n-1 (zero padding at the end has c = b = 0): Π c and the zero-in value.
        # Π c = u^K if every mask in the chunk is 1, else 0: one rounding, not K.
        Cl, Bl = Cc[:, 1:], Bc[:, 1:]
        prod = Mc[:, 1:].all(0) * u.pow(K)
        val = Bl[K - 1].clone()
        for j in range(K - 2, -1, -1):
            torch.addcmul(Bl[j], Cl[j], val, out=val)
        # 2. incoming gradient of each chunk, from the last chunk back
        for k in range(n - 2, -1, -1):
            torch.addcmul(val[k], prod[k], incoming[k + 1], out=incoming[k])
    # 3. within chunks
    G = Bc  # overwritten in place: step j reads only b_j
    nxt = incoming
    for j in range(K - 1, -1, -1):
        torch.addcmul(Bc[j], Cc[j], nxt, out=G[j])
        nxt = G[j]
    # ∂u = Σ_t ∂a_t h_{t-1}: h_{t-1} of a chunk's first row is the previous chunk's last row
    grad_u = (G[1:] * Hc[:-1]).sum((0, 1))
    prev_last = torch.cat([h0.unsqueeze(0), Hc[K - 1, :-1]], 0)
    grad_u += (G[0] * prev_last).sum(0)
    return _unchunked(G, T), grad_u


class _IndRNNScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, u: Tensor, h0: Tensor, chunk: Optional[int]) -> Tensor:
        T, R, N = a.shape
        wd = acc_dtype(a.dtype)
        uw = u.to(wd).expand(R, N).reshape(-1)
        K = chunk_length(T, u, wd, chunk, R * N)
        if T == 0:
            h = a.new_zeros(a.shape)
        else:
            hw = scan_forward(a.reshape(T, R * N).to(wd), uw, h0.reshape(-1).to(wd), K)
            h = hw.view(T, R, N).to(a.dtype)
        ctx.save_for_backward(h, u, h0)
        ctx.K = K
        return h

    @staticmethod
    def backward(ctx, grad_h: Tensor):
        h, u, h0 = ctx.saved_tensors
        T, R, N = h.shape
        if T == 0:
            return torch.zeros_like(h), torch.zeros_like(u), torch.zeros_like(h0), None
        wd = acc_dtype(h.dtype)
        uw = u.to(wd)
        ga, du = scan_backward(grad_h.reshape(T, R * N).to(wd), h.reshape(T, R * N).to(wd),
                               h0.reshape(-1).to(wd), uw.expand(R, N).reshape(-1), ctx.K)
        ga = ga.view(T, R, N)
        grad_u = du.view(R, N).sum(0)
        grad_h0 = uw * ga[0]
        return ga.to(h.dtype), grad_u.to(u.dtype), grad_h0.to(h0.dtype), None


def indrnn_scan(a: Tensor, u: Tensor, h0: Optional[Tensor] = None, dilation: int = 1,
                chunk: Optional[int] = None) -> Tensor:
    """Same contract as :func:`.indrnn_cpu.indrnn_loop`: a ``(T, B, N)``, u ``(N,)``, h0
    ``(d, B, N)`` or ``None`` (zeros); returns h ``(T, B, N)``. ``chunk`` overrides the chunk
    length K (tests use small K to get many chunks on short sequences)."""
    return on_dilated_view(_IndRNNScan.apply, a, u, h0, dilation, chunk)
