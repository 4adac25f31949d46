"""Fast IndRNN recurrence for any device without a fused kernel: a custom autograd function.

Forward and backward each loop over time with in-place vector ops on whole ``(B, N)`` slices,
so autograd records one node for the whole sequence instead of one per step. Dilation uses the
view of :mod:`.time_dilation`, so the loop itself always recurs over ``t - 1``.

Backward (docs/model.md section 1), with ``m_t = 1[h_t > 0]`` (the same as ``a_t + u ⊙ h_{t-1} > 0``
because ``h_t = relu(·)``) and ``g_t`` the incoming gradient at ``h_t``::

    ∂a_t = m_t ⊙ (g_t + u ⊙ ∂a_{t+1})
    ∂u   = Σ_t ∂a_t ⊙ h_{t-1}
    ∂h_{-1} = u ⊙ ∂a_0

Only ``h`` is saved: the mask is read from it (``h_t > 0``) by relu's own backward op.
"""
from typing import Optional

import torch
from torch import Tensor

from .time_dilation import on_dilated_view


class _IndRNNLoop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, u: Tensor, h0: Tensor) -> Tensor:
        a = a.contiguous()
        h = torch.empty_like(a)
        prev = h0
        for t in range(a.shape[0]):
            torch.addcmul(a[t], u, prev, out=h[t])
            h[t].relu_()
            prev = h[t]
        ctx.save_for_backward(h, u, h0)
        return h

    @staticmethod
    def backward(ctx, grad_h: Tensor):
        h, u, h0 = ctx.saved_tensors
        grad_h = grad_h.contiguous()
        grad_a = torch.empty_like(h)
        T = h.shape[0]
        if T == 0:
            return grad_a, torch.zeros_like(u), torch.zeros_like(h0)
        # relu's backward, in place: keep the gradient where h_t > 0 (one fused op per step)
        relu_backward_ = torch.ops.aten.threshold_backward.grad_input
        relu_backward_(grad_h[T - 1], h[T - 1], 0, grad_input=grad_a[T - 1])
        for t in range(T - 2, -1, -1):
            torch.addcmul(grad_h[t], u, grad_a[t + 1], out=grad_a[t])
            relu_backward_(grad_a[t], h[t], 0, grad_input=grad_a[t])
        grad_u = (grad_a[0] * h0).sum(0)
        if T > 1:
            grad_u += (grad_a[1:] * h[:-1]).sum((0, 1))
        grad_h0 = u * grad_a[0]
        return grad_a, grad_u, grad_h0


def indrnn_loop(a: Tensor, u: Tensor, h0: Optional[Tensor] = None, dilation: int = 1) -> Tensor:
    """Same contract as :func:`.indrnn_reference.indrnn_reference`: a ``(T, B, N)``, u ``(N,)``,
    h0 ``(d, B, N)`` or ``None``; returns h ``(T, B, N)``."""
    return on_dilated_view(_IndRNNLoop.apply, a, u, h0, dilation)
