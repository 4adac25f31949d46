"""Dropout with one mask per sequence shared over time ("variational" / locked dropout):
x ``(T, B, C)``, mask ``(1, B, C)``."""
from torch import Tensor, nn


class SharedDropout(nn.Module):
    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        keep = x.new_empty((1,) + tuple(x.shape[1:])).bernoulli_(1 - self.p) / (1 - self.p)
        return x * keep
