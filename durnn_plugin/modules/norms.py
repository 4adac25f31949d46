"""Normalisations between stack layers, all taking ``x (T, B, C)`` and a padding-aware
``mask (T, B)`` (True at valid positions, ``None`` when nothing is padded).

* ``layer``: :class:`torch.nn.LayerNorm` over C (per position; the mask is not needed).
* ``batch``: batch norm with statistics shared over time (frame-wise, as IndRNN uses),
  computed over valid positions only so padding never changes valid outputs.
* ``none``: identity.
"""
from typing import Optional

import torch
from torch import Tensor, nn

NORMS = ("layer", "batch", "none")


class MaskedLayerNorm(nn.LayerNorm):
    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        return super().forward(x)


class MaskedBatchNorm(nn.BatchNorm1d):
    """``y = (x - μ) / sqrt(σ² + ε) · w + b`` with μ, σ² per channel over all valid (t, b) in
    training (running averages in eval). A batch with no valid position uses the running
    statistics."""

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        C = x.shape[-1]
        flat = x.reshape(-1, C) if mask is None else x[mask]
        n = flat.shape[0]
        if self.training and n > 0:
            mean = flat.mean(0)
            var = flat.var(0, unbiased=False)
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                unbiased = var.detach() * (n / max(n - 1, 1))
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
                self.num_batches_tracked += 1
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class NoNorm(nn.Module):
    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        return x


def build_norm(kind: str, size: int) -> nn.Module:
    if kind == "layer":
        return MaskedLayerNorm(size)
    if kind == "batch":
        return MaskedBatchNorm(size)
    return NoNorm()
