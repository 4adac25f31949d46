"""IndRNN recurrence as a compiled CPU loop (``csrc/cpu_recurrences.cpp``, built on first use by
:mod:`.cpu_extension`), one autograd function for the whole sequence.

Same equations as :mod:`.indrnn_cpu` (``h_t = relu(a_t + u ⊙ h_{t-1})`` on the undilated view,
``∂a_t = 1[h_t > 0] ⊙ (g_t + u ⊙ ∂a_{t+1})``, ``∂u = Σ_t ∂a_t ⊙ h_{t-1}``,
``∂h_{-1} = u ⊙ ∂a_0``), computed per column in compiled code: each thread owns a range of the
``d·B·N`` columns for the whole time loop, so a step costs what it reads and writes. Only ``h``
is saved. fp32 and fp64 CPU tensors.
"""
from typing import Optional

import torch
from torch import Tensor

from .cpu_extension import compiled_module
from .time_dilation import on_dilated_view


class _IndRNNCompiled(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, u: Tensor, h0: Tensor) -> Tensor:
        T, C, N = a.shape
        h = compiled_module().indrnn_forward(a.reshape(T, C * N), u, h0.reshape(C * N))
        ctx.save_for_backward(h, u, h0)
        return h.view(T, C, N)

    @staticmethod
    def backward(ctx, grad_h: Tensor):
        h, u, h0 = ctx.saved_tensors
        T, M = h.shape
        C, N = h0.shape
        grad_a, grad_u_columns, grad_h0 = compiled_module().indrnn_backward(
            grad_h.reshape(T, M), h, u, h0.reshape(M))
        return grad_a.view(T, C, N), grad_u_columns.view(C, N).sum(0), grad_h0.view(C, N)


def indrnn_compiled(a: Tensor, u: Tensor, h0: Optional[Tensor] = None,
                    dilation: int = 1) -> Tensor:
    """Same contract as :func:`.indrnn_reference.indrnn_reference`: a ``(T, B, N)``, u ``(N,)``,
    h0 ``(d, B, N)`` or ``None``; returns h ``(T, B, N)``."""
    return on_dilated_view(_IndRNNCompiled.apply, a, u, h0, dilation)
