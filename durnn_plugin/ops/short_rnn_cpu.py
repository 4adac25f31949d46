"""The DuRNN short-term recurrence on the CPU as one autograd function (docs/model.md section 2)::

    s_t = φ(p_t + s_{t-1} U^T)        p ``(T, B, N)`` = ``W_s x_t + b_s`` (computed outside),
                                      U ``(N, N)``, s_{-1} = s0 ``(B, N)``, φ = relu or tanh

torch's ``rnn_relu`` / ``rnn_tanh`` on the CPU record one autograd node per step (and their
backward costs O(T) per step); here the forward and backward each loop over time with one
``addmm`` and one in-place activation op per step, so autograd sees one node for the sequence.

Backward, with ``g_t`` the incoming gradient at ``s_t`` and ``z_t`` the pre-activation::

    ∂z_t = φ'(z_t) ⊙ (g_t + ∂z_{t+1} U)     φ'(z_t) = 1[s_t > 0] (relu), 1 - s_t² (tanh)
    ∂p_t = ∂z_t      ∂U = Σ_t ∂z_tᵀ s_{t-1}  (one GEMM)      ∂s0 = ∂z_0 U

The reference is torch's own ``rnn_relu`` / ``rnn_tanh`` (``tests/ops/test_short_rnn_cpu.py``
compares values and gradients and runs fp64 gradcheck on this function).
"""
import torch
from torch import Tensor

ACTIVATIONS = ("relu", "tanh")


class _ShortRNNLoop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p: Tensor, U: Tensor, s0: Tensor, activation: str) -> Tensor:
        p = p.contiguous()
        s = torch.empty_like(p)
        Ut = U.t()
        prev = s0
        for t in range(p.shape[0]):
            torch.addmm(p[t], prev, Ut, out=s[t])
            if activation == "relu":
                s[t].relu_()
            else:
                s[t].tanh_()
            prev = s[t]
        ctx.activation = activation
        ctx.save_for_backward(s, U, s0)
        return s

    @staticmethod
    def backward(ctx, grad_s: Tensor):
        s, U, s0 = ctx.saved_tensors
        T = s.shape[0]
        grad_p = torch.empty_like(s)
        if T == 0:
            return grad_p, torch.zeros_like(U), torch.zeros_like(s0), None
        grad_s = grad_s.contiguous()
        if ctx.activation == "relu":
            def through_activation_(t):  # keep the gradient where s_t > 0
                torch.ops.aten.threshold_backward.grad_input(grad_p[t], s[t], 0,
                                                             grad_input=grad_p[t])
        else:
            slope = 1 - s * s

            def through_activation_(t):
                grad_p[t].mul_(slope[t])
        grad_p[T - 1].copy_(grad_s[T - 1])
        through_activation_(T - 1)
        for t in range(T - 2, -1, -1):
            torch.addmm(grad_s[t], grad_p[t + 1], U, out=grad_p[t])
            through_activation_(t)
        return (grad_p, *weight_and_state_grads(grad_p, s, s0, U), None)


def weight_and_state_grads(grad_p: Tensor, s: Tensor, s0: Tensor, U: Tensor):
    """``(∂U, ∂s0)`` from ``∂p`` ``(T, B, N)`` (T ≥ 1): ``∂U = Σ_t ∂p_tᵀ s_{t-1}`` as one GEMM
    over the ``(T-1)·B`` positions after the first plus one over ``s0`` (no copy of ``s``),
    ``∂s0 = ∂p_0 U``."""
    N = s.shape[-1]
    grad_U = grad_p[0].t().mm(s0)
    if s.shape[0] > 1:
        grad_U.addmm_(grad_p[1:].reshape(-1, N).t(), s[:-1].reshape(-1, N))
    return grad_U, grad_p[0].mm(U)


def short_rnn_loop(p: Tensor, U: Tensor, s0: Tensor, activation: str = "relu") -> Tensor:
    """``s_t = φ(p_t + s_{t-1} Uᵀ)``: p ``(T, B, N)``, U ``(N, N)``, s0 ``(B, N)`` → s
    ``(T, B, N)``; ``activation`` is ``relu`` or ``tanh``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r}: allowed {', '.join(ACTIVATIONS)}")
    return _ShortRNNLoop.apply(p, U, s0, activation)
