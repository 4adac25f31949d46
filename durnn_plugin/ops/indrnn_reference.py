"""Reference IndRNN recurrence (docs/model.md section 1): a plain loop under autograd.

    h_t = relu(a_t + u ⊙ h_{t-d})

It indexes ``t - d`` directly (no dilation view), so it also checks the view trick that the
fast paths use. Slow; it is the ground truth for tests and for ``DURNN_BACKEND=reference``.
"""
from typing import Optional

import torch
from torch import Tensor


def indrnn_reference(a: Tensor, u: Tensor, h0: Optional[Tensor] = None, dilation: int = 1) -> Tensor:
    """a: ``(T, B, N)`` input pre-activations; u: ``(N,)``; h0: ``(d, B, N)`` the ``d`` states
    before ``t = 0`` in time order (zeros if ``None``). Returns h: ``(T, B, N)``."""
    d = dilation
    if h0 is None:
        h0 = a.new_zeros((d,) + tuple(a.shape[1:]))
    history = list(h0.unbind(0))
    for t in range(a.shape[0]):
        history.append(torch.relu(a[t] + u * history[t]))
    if a.shape[0] == 0:
        return a.new_zeros(a.shape)
    return torch.stack(history[d:], 0)
