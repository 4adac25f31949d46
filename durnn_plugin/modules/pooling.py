"""Pooling of a recurrent stack's outputs over each sequence's valid positions.

Input y ``(T, B, C)`` right-padded, ``lengths (B,)`` (``None``: every sequence has T steps);
output ``(B, C)``. Padding never enters the result.

* ``mean``: ``p_b = (1 / len_b) * sum_{t < len_b} y_{t,b}``.
* ``last``: the state that has read the whole sequence. Left to right that is position
  ``len_b - 1``; for a bidirectional stack (``backward_size`` > 0: the last ``backward_size``
  channels come from the reversed pass) the backward half is taken at position 0, where the
  reversed pass ends: ``p_b = [y_{len_b - 1, b, :C-K} ; y_{0, b, C-K:}]`` with ``K = backward_size``.
"""
from typing import Optional

import torch
from torch import Tensor

from ..errors import check_choice

POOLINGS = ("mean", "last")


def pool(y: Tensor, lengths: Optional[Tensor], mode: str, backward_size: int = 0) -> Tensor:
    """``(T, B, C)`` -> ``(B, C)`` over the valid positions (see the module docstring)."""
    check_choice("pooling", mode, POOLINGS)
    T, B, C = y.shape
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.long, device=y.device)
    lengths = lengths.to(y.device).clamp(1, T)
    if mode == "mean":
        valid = torch.arange(T, device=y.device).unsqueeze(1) < lengths.unsqueeze(0)  # (T, B)
        total = (y * valid.unsqueeze(-1).to(y.dtype)).sum(0)
        return total / lengths.unsqueeze(1).to(y.dtype)
    last = y[lengths - 1, torch.arange(B, device=y.device)]  # (B, C)
    if backward_size == 0:
        return last
    return torch.cat([last[:, :C - backward_size], y[0, :, C - backward_size:]], -1)
