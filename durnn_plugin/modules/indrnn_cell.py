"""IndRNN cell (docs/model.md sections 1 and 3): ``h_t = relu(W x_t + b + u ⊙ h_{t-1})``.

x ``(T, B, D)`` -> h ``(T, B, N)``; state ``(h,)`` with h ``(1, B, N)``. The bound
``|u_n| <= u_bound`` (``γ^{1/T}``), or ``u_floor <= u_n <= u_bound`` with a floor
``u_floor > 0`` (:func:`.constraints.clamp_recurrent`), is applied to the weight the optimiser
updates after each of its steps (:mod:`.projection_hook`); the forward keeps the clamp as a cheap
guard (the identity, with gradient 1, on projected weights). Init:
``u ~ U(u_init_low, u_bound)``, ``W ~ U(±1/sqrt(D))`` (``N(0, input_std²)`` when
``input_std > 0``, see :func:`input_weight`), ``b = 0``.
"""
from typing import Callable, Dict, Optional, Tuple

import math

import torch
from torch import Tensor, nn

from ..ops import indrnn_recurrence, last_states
from .cell_base import RecurrentCell, State
from .constraints import clamp_recurrent, clamp_recurrent_


def uniform_weight(rows: int, cols: int) -> nn.Parameter:
    """``U(±1/sqrt(cols))``, torch's default for linear and recurrent layers."""
    bound = 1.0 / math.sqrt(cols)
    return nn.Parameter(torch.empty(rows, cols).uniform_(-bound, bound))


def input_weight(rows: int, cols: int, std: float) -> nn.Parameter:
    """The input matrix of an independent recurrence: :func:`uniform_weight`, or ``N(0, std²)``
    when ``std > 0``. With ``u ≈ 1`` the state sums its inputs, ``h_T ≈ Σ_t relu(a_t)``, so
    the default scale makes ``h_T`` grow like ``T`` at the start; a small ``std`` (the IndRNN
    paper's adding-problem code uses 0.001) keeps it small until training shapes ``a_t``."""
    if std <= 0:
        return uniform_weight(rows, cols)
    return nn.Parameter(torch.empty(rows, cols).normal_(0.0, std))


def recurrent_weight_statistics(u: Tensor) -> Dict[str, Tensor]:
    """``u_mean`` and ``u_max``: mean and largest ``|u_n|`` of a recurrent weight ``(N,)``."""
    magnitude = u.detach().abs()
    return {"u_mean": magnitude.mean(), "u_max": magnitude.max()}


class IndRNNCell(RecurrentCell):
    def __init__(self, input_size: int, hidden_size: int, u_bound: float, u_init_low: float = 0.0,
                 u_floor: float = 0.0, input_std: float = 0.0):
        super().__init__()
        self.output_size = hidden_size
        self.state_sizes = (hidden_size,)
        self.u_bound, self.u_floor = u_bound, u_floor
        self.weight = input_weight(hidden_size, input_size, input_std)
        self.bias = nn.Parameter(torch.zeros(hidden_size))
        self.u = nn.Parameter(torch.empty(hidden_size).uniform_(u_init_low, u_bound))

    def forward(self, x: Tensor, state: Optional[State] = None,
                lengths: Optional[Tensor] = None) -> Tuple[Tensor, State]:
        (h0,) = state if state is not None else self.initial_state(x.shape[1], x)
        a = nn.functional.linear(x, self.weight, self.bias)
        h = indrnn_recurrence(a, clamp_recurrent(self.u, self.u_bound, self.u_floor), h0)
        self._record(long_input=a, long=h)
        return h, (last_states(h0, h, lengths),)

    def statistics(self) -> Dict[str, Tensor]:
        return recurrent_weight_statistics(clamp_recurrent(self.u, self.u_bound, self.u_floor))

    def constraint_projections(self) -> Dict[str, Callable[[Tensor], None]]:
        return {"u": self._project_u}

    def _project_u(self, u: Tensor) -> None:
        clamp_recurrent_(u, self.u_bound, self.u_floor)
