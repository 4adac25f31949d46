"""The DuRNN short-term recurrence as a compiled CPU loop (``csrc/cpu_recurrences.cpp``, built on
first use by :mod:`.cpu_extension`), one autograd function for the whole sequence::

    s_t = φ(p_t + s_{t-1} Uᵀ)                 p (T, B, N), U (N, N), s_{-1} = s0 (B, N)
    ∂z_t = φ'(z_t) ⊙ (g_t + ∂z_{t+1} U)       ∂p = ∂z, ∂U and ∂s0 as in :mod:`.short_rnn_cpu`

Each thread owns a range of the batch rows for the whole time loop (rows never mix), with one
small GEMM per step on its rows; the loop around it runs in compiled code. fp32 and fp64 CPU
tensors; the reference is torch's ``rnn_relu`` / ``rnn_tanh``, as for :mod:`.short_rnn_cpu`.
"""
import torch
from torch import Tensor

from .cpu_extension import compiled_module
from .short_rnn_cpu import ACTIVATIONS, weight_and_state_grads


class _ShortRNNCompiled(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p: Tensor, U: Tensor, s0: Tensor, activation: str) -> Tensor:
        s = compiled_module().short_rnn_forward(p, U, s0, activation)
        ctx.activation = activation
        ctx.save_for_backward(s, U, s0)
        return s

    @staticmethod
    def backward(ctx, grad_s: Tensor):
        s, U, s0 = ctx.saved_tensors
        if s.shape[0] == 0:
            return torch.empty_like(s), torch.zeros_like(U), torch.zeros_like(s0), None
        grad_p = compiled_module().short_rnn_backward(grad_s, s, U, ctx.activation)
        return (grad_p, *weight_and_state_grads(grad_p, s, s0, U), None)


def short_rnn_compiled(p: Tensor, U: Tensor, s0: Tensor, activation: str = "relu") -> Tensor:
    """``s_t = φ(p_t + s_{t-1} Uᵀ)``: p ``(T, B, N)``, U ``(N, N)``, s0 ``(B, N)`` → s
    ``(T, B, N)``; ``activation`` is ``relu`` or ``tanh``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r}: allowed {', '.join(ACTIVATIONS)}")
    return _ShortRNNCompiled.apply(p, U, s0, activation)
