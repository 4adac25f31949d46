"""One time step per sequence, in plain differentiable torch ops: what ``auto`` runs when a call
holds a single step of each recurrence (incremental decoding feeds one token at a time), where
the sequence implementations' set-up (an autograd function, output buffers, a kernel launch or a
cuDNN call) costs more than the step itself.

* :func:`indrnn_step`: ``h_t = relu(a_t + u ⊙ h_{t-d})`` for ``T ≤ d``, so every ``h_{t-d}`` is a
  row of the state ``h0 (d, B, N)`` (its last ``d`` states in time order).
* :func:`short_rnn_step`: ``s_0 = φ(W x_0 + b + s_{-1} Uᵀ)`` for ``T = 1``.

The references are the sequence references (``tests/ops/test_single_step.py`` compares values and
gradients through the dispatch).
"""
from typing import Optional

import torch
from torch import Tensor, nn


def indrnn_step(a: Tensor, u: Tensor, h0: Optional[Tensor]) -> Tensor:
    """a ``(T, B, N)`` with ``T ≤ d``, u ``(N,)``, h0 ``(d, B, N)`` or ``None`` (zeros) -> h
    ``(T, B, N)``."""
    previous = h0[:a.shape[0]] if h0 is not None else torch.zeros_like(a)  # u stays in the graph
    return torch.relu(torch.addcmul(a, u, previous))


def short_rnn_step(x: Tensor, W: Tensor, b: Tensor, U: Tensor, s0: Tensor,
                   activation: str) -> Tensor:
    """x ``(1, B, D)``, W ``(N, D)``, b ``(N,)``, U ``(N, N)``, s0 ``(B, N)`` -> s ``(1, B, N)``;
    ``activation`` is ``relu`` or ``tanh``."""
    p = nn.functional.linear(x[0], W, b)
    z = torch.addmm(p, s0.to(p.dtype), U.to(p.dtype).t())
    return (torch.relu(z) if activation == "relu" else torch.tanh(z)).unsqueeze(0)
