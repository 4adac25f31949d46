"""Dilation as a view, and final states at per-sequence lengths.

A recurrence over ``t - d`` on a time-major tensor ``(T, B, C)`` is the same recurrence over
``t - 1`` on the view ``(T'/d, d*B, C)``, where ``T'`` is ``T`` rounded up to a multiple of ``d``
(Dilated RNN, Chang et al. 2017). Element ``(t, b)`` with ``t = i*d + j`` sits at
``(i, j*B + b)``: column ``(j, b)`` holds the times ``j, j+d, j+2d, ...`` of sequence ``b``.

A dilated state is the last ``d`` outputs in time order, shape ``(d, B, C)``: ``state[k]`` is
``h_{T-d+k}``. Column ``j`` of the view starts from ``state[j] = h_{j-d}``, which is exactly
what time ``j`` needs, so the state maps onto the view's batch axis by a reshape.
"""
from typing import Callable, Optional

import torch
from torch import Tensor


def dilate(x: Tensor, d: int) -> Tensor:
    """``(T, B, *C)`` -> ``(ceil(T/d), d*B, *C)``, zero-padding time at the end (a view when
    ``T % d == 0``)."""
    if d == 1:
        return x
    T = x.shape[0]
    pad = (-T) % d
    if pad:
        x = torch.cat([x, x.new_zeros((pad,) + tuple(x.shape[1:]))], 0)
    return x.reshape((x.shape[0] // d, d * x.shape[1]) + tuple(x.shape[2:]))


def undilate(y: Tensor, d: int, T: int) -> Tensor:
    """Inverse of :func:`dilate`: ``(T'/d, d*B, *C)`` -> ``(T, B, *C)``."""
    if d == 1:
        return y
    B = y.shape[1] // d
    return y.reshape((y.shape[0] * d, B) + tuple(y.shape[2:]))[:T]


def column_lengths(lengths: Tensor, d: int) -> Tensor:
    """Valid steps of each view column: column ``(j, b)`` holds the times ``t < L_b`` with
    ``t % d == j``, i.e. ``ceil((L_b - j) / d)`` of them (0 when ``L_b <= j``). ``(B,) -> (d*B,)``."""
    j = torch.arange(d, device=lengths.device).unsqueeze(1)
    return ((lengths.unsqueeze(0) - j + d - 1).clamp(min=0) // d).reshape(-1)


def columns_to_state(col_state: Tensor, lengths: Tensor, d: int) -> Tensor:
    """Per-column final states ``(1, d*B, C)`` -> the last ``d`` states in time order
    ``(d, B, C)``. The state at time ``L_b - d + k`` lives in column ``(L_b + k) % d``."""
    B = lengths.shape[0]
    cols = col_state.reshape((d, B) + tuple(col_state.shape[2:]))
    k = torch.arange(d, device=lengths.device).unsqueeze(1)
    idx = (lengths.unsqueeze(0) + k) % d  # (d, B)
    idx = idx.reshape((d, B) + (1,) * (cols.dim() - 2)).expand_as(cols)
    return cols.gather(0, idx)


def last_states(h0: Tensor, h: Tensor, lengths: Optional[Tensor]) -> Tensor:
    """The last ``d`` states of ``[h0; h[:L_b]]`` per sequence.

    h0: ``(d, B, C)`` state before the segment; h: ``(T, B, C)`` states of the segment;
    lengths: ``(B,)`` valid steps per sequence (``None``: all ``T``). Returns ``(d, B, C)``.
    """
    d, T = h0.shape[0], h.shape[0]
    if lengths is None:
        return h[T - d:] if T >= d else torch.cat([h0[T:], h], 0)
    # position i of [h0; h] (i = L_b + k) is h0[i] for i < d, else h[i - d]: two gathers of
    # (d, B, C), never a copy of the whole sequence
    idx = lengths.unsqueeze(0) + torch.arange(d, device=h.device).unsqueeze(1)  # (d, B)
    idx = idx.reshape(idx.shape + (1,) * (h.dim() - 2)).expand((d,) + tuple(h.shape[1:]))
    from_h0 = idx < d
    if T == 0:
        return h0.gather(0, idx)
    from_state = h0.gather(0, idx.clamp(max=d - 1))
    from_h = h.gather(0, (idx - d).clamp(min=0))
    return torch.where(from_h0, from_state, from_h)


def on_dilated_view(recur: Callable[..., Tensor], a: Tensor, u: Tensor, h0: Optional[Tensor],
                    dilation: int, *extra) -> Tensor:
    """Run an undilated recurrence ``recur(a', u, h0', *extra)`` (a' ``(T', C... )``, h0' the
    per-column states ``(d·B, N)``) on the dilated view of a ``(T, B, N)`` with h0 ``(d, B, N)``
    (zeros if ``None``), and return h ``(T, B, N)``."""
    d = dilation
    T, B, N = a.shape
    if h0 is None:
        h0 = a.new_zeros(d, B, N)
    return undilate(recur(dilate(a, d), u, h0.reshape(d * B, N), *extra), d, T)
