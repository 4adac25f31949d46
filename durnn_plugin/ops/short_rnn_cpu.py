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


def forward_loop(p: Tensor, U: Tensor, s0: Tensor, activation: str) -> Tensor:
    """s ``(T, B, N)`` from a contiguous p: one ``addmm`` and one activation op per step."""
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
    return s


def backward_loop(grad_s: Tensor, s: Tensor, U: Tensor, activation: str) -> Tensor:
    """∂p ``(T, B, N)`` (T ≥ 1) from a contiguous ∂s: one ``addmm`` and one op per step."""
    T = s.shape[0]
    grad_p = torch.empty_like(s)
    if activation == "relu":
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
    return grad_p


class ShortRNNFunction(torch.autograd.Function):
    """One autograd node for the whole sequence; ``loops`` gives the two time loops:
    ``loops.forward(p, U, s0, activation) -> s`` and ``loops.backward(∂s, s, U, activation) ->
    ∂p`` (these torch loops, or the compiled ones of :mod:`.short_rnn_compiled`)."""

    @staticmethod
    def forward(ctx, p: Tensor, U: Tensor, s0: Tensor, activation: str, loops) -> Tensor:
        s = loops.forward(p.contiguous(), U, s0, activation)
        ctx.activation, ctx.loops = activation, loops
        ctx.save_for_backward(s, U, s0)
        return s

    @staticmethod
    def backward(ctx, grad_s: Tensor):
        s, U, s0 = ctx.saved_tensors
        if s.shape[0] == 0:
            return torch.empty_like(s), torch.zeros_like(U), torch.zeros_like(s0), None, None
        grad_p = ctx.loops.backward(grad_s.contiguous(), s, U, ctx.activation)
        return (grad_p, *weight_and_state_grads(grad_p, s, s0, U), None, None)


class TorchLoops:
    forward = staticmethod(forward_loop)
    backward = staticmethod(backward_loop)


def weight_and_state_grads(grad_p: Tensor, s: Tensor, s0: Tensor, U: Tensor):
    """``(∂U, ∂s0)`` from ``∂p`` ``(T, B, N)`` (T ≥ 1): ``∂U = Σ_t ∂p_tᵀ s_{t-1}`` as one GEMM
    over the ``(T-1)·B`` positions after the first plus one over ``s0`` (no copy of ``s``),
    ``∂s0 = ∂p_0 U``."""
    N = s.shape[-1]
    grad_U = grad_p[0].t().mm(s0)
    if s.shape[0] > 1:
        grad_U.addmm_(grad_p[1:].reshape(-1, N).t(), s[:-1].reshape(-1, N))
    return grad_U, grad_p[0].mm(U)


def run_short_rnn(p: Tensor, U: Tensor, s0: Tensor, activation: str, loops) -> Tensor:
    """:class:`ShortRNNFunction` with ``loops``, after checking ``activation``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r}: allowed {', '.join(ACTIVATIONS)}")
    return ShortRNNFunction.apply(p, U, s0, activation, loops)


def short_rnn_loop(p: Tensor, U: Tensor, s0: Tensor, activation: str = "relu") -> Tensor:
    """``s_t = φ(p_t + s_{t-1} Uᵀ)``: p ``(T, B, N)``, U ``(N, N)``, s0 ``(B, N)`` → s
    ``(T, B, N)``; ``activation`` is ``relu`` or ``tanh``."""
    return run_short_rnn(p, U, s0, activation, TorchLoops)
