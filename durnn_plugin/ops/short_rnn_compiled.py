"""The DuRNN short-term recurrence as a compiled CPU loop (``csrc/cpu_recurrences.cpp``, built on
first use by :mod:`.cpu_extension`), in the one autograd function of the torch loop
(:class:`.short_rnn_cpu.ShortRNNFunction`)::

    s_t = φ(p_t + s_{t-1} Uᵀ)                 p (T, B, N), U (N, N), s_{-1} = s0 (B, N)
    ∂z_t = φ'(z_t) ⊙ (g_t + ∂z_{t+1} U)       ∂p = ∂z, ∂U and ∂s0 as in :mod:`.short_rnn_cpu`

Each thread owns a range of the batch rows for the whole time loop (rows never mix), with one
small GEMM per step on its rows; the loop around it runs in compiled code. fp32 and fp64 CPU
tensors; the reference is torch's ``rnn_relu`` / ``rnn_tanh``, as for :mod:`.short_rnn_cpu`.
"""
from torch import Tensor

from .cpu_extension import compiled_module
from .short_rnn_cpu import run_short_rnn


class CompiledLoops:
    """The two time loops of :class:`.short_rnn_cpu.ShortRNNFunction`, in compiled code."""

    @staticmethod
    def forward(p: Tensor, U: Tensor, s0: Tensor, activation: str) -> Tensor:
        return compiled_module().short_rnn_forward(p, U, s0, activation)

    @staticmethod
    def backward(grad_s: Tensor, s: Tensor, U: Tensor, activation: str) -> Tensor:
        return compiled_module().short_rnn_backward(grad_s, s, U, activation)


def short_rnn_compiled(p: Tensor, U: Tensor, s0: Tensor, activation: str = "relu") -> Tensor:
    """``s_t = φ(p_t + s_{t-1} Uᵀ)``: p ``(T, B, N)``, U ``(N, N)``, s0 ``(B, N)`` → s
    ``(T, B, N)``; ``activation`` is ``relu`` or ``tanh``."""
    return run_short_rnn(p, U, s0, activation, CompiledLoops)
