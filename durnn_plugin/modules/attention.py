"""Global (Luong) attention of decoder states over encoder states, all target steps at once.

Inputs: decoder states ``q (T, B, N)``, encoder states ``h (S, B, M)``, ``padding_mask (B, S)``
(True at padding, or ``None``). For every target step t::

    e_ts = (W_q q_t) . h_s / sqrt(M)         padding positions: e_ts = -inf
    a_t  = softmax_s(e_t)                     attention weights (B, T, S)
    c_t  = sum_s a_ts h_s                     context (M)
    o_t  = tanh(W_o [c_t ; q_t])             output (T, B, O)

Step t uses only ``q_t``, so running the decoder one step at a time gives the same outputs.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor, nn


class GlobalAttention(nn.Module):
    def __init__(self, query_size: int, source_size: int, output_size: int):
        super().__init__()
        self.query_proj = nn.Linear(query_size, source_size, bias=False)
        self.output_proj = nn.Linear(source_size + query_size, output_size, bias=False)
        self.scale = source_size ** -0.5
        self.output_size = output_size

    def forward(self, query: Tensor, source: Tensor,
                padding_mask: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """query ``(T, B, N)``, source ``(S, B, M)``, padding_mask ``(B, S)`` -> output
        ``(T, B, O)``, weights ``(B, T, S)``."""
        q = self.query_proj(query).transpose(0, 1) * self.scale  # (B, T, M)
        h = source.transpose(0, 1)  # (B, S, M)
        scores = q.bmm(h.transpose(1, 2))  # (B, T, S)
        if padding_mask is not None:
            scores = scores.masked_fill(padding_mask.unsqueeze(1), float("-inf"))
        weights = scores.float().softmax(-1).type_as(scores)
        context = weights.bmm(h).transpose(0, 1)  # (T, B, M)
        out = self.output_proj(torch.cat([context, query], -1)).tanh()
        return out, weights

