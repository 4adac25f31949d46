"""Normalisations between stack layers, all taking ``x (T, B, C)`` and a padding-aware
``mask (T, B)`` (True at valid positions, ``None`` when nothing is padded).

* ``layer``: :class:`torch.nn.LayerNorm` over C (per position; the mask is not needed).
* ``batch``: batch norm with statistics shared over time (frame-wise, as IndRNN uses),
  computed over valid positions only so padding never changes valid outputs.
* ``none``: identity.
"""
from typing import Optional

from torch import Tensor, nn
from torch.nn import functional as F

NORMS = ("layer", "batch", "none")


class MaskedLayerNorm(nn.LayerNorm):
    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        return super().forward(x)


class MaskedBatchNorm(nn.BatchNorm1d):
    """``y = (x - μ) / sqrt(σ² + ε) · w + b`` with μ, σ² per channel over all valid (t, b) in
    training (running averages, updated from valid positions only, in eval). Runs
    :class:`torch.nn.BatchNorm1d`'s fused kernel on the ``(N, C)`` valid rows; padded positions
    come out as 0. A training batch with fewer than two valid positions (no batch variance) is
    normalised with the running statistics and leaves them unchanged."""

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        C = x.shape[-1]
        valid = x.reshape(-1, C) if mask is None else x[mask]
        if self.training and valid.shape[0] < 2:
            y = F.batch_norm(valid, self.running_mean, self.running_var, self.weight, self.bias,
                             False, 0.0, self.eps)
        else:
            y = super().forward(valid)
        if mask is None:
            return y.view_as(x)
        return x.new_zeros(x.shape).index_put((mask,), y)


class NoNorm(nn.Module):
    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        return x


def build_norm(kind: str, size: int) -> nn.Module:
    if kind == "layer":
        return MaskedLayerNorm(size)
    if kind == "batch":
        return MaskedBatchNorm(size)
    return NoNorm()
