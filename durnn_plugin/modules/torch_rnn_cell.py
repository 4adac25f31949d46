"""LSTM and GRU baselines (docs/model.md section 3) through torch's cuDNN-backed modules, behind the
same cell interface: x ``(T, B, D)`` -> y ``(T, B, N)``; state ``(h, c)`` for LSTM, ``(h,)``
for GRU, each ``(1, B, N)``. Right-padded batches go through a packed sequence so the returned
state is the one at each sequence's length.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .cell_base import RecurrentCell, State


class TorchRNNCell(RecurrentCell):
    def __init__(self, kind: str, input_size: int, hidden_size: int):
        super().__init__()
        self.kind = kind
        self.rnn = (nn.LSTM if kind == "lstm" else nn.GRU)(input_size, hidden_size)
        self.output_size = hidden_size
        self.state_sizes = (hidden_size, hidden_size) if kind == "lstm" else (hidden_size,)

    def forward(self, x: Tensor, state: Optional[State] = None,
                lengths: Optional[Tensor] = None) -> Tuple[Tensor, State]:
        state = state if state is not None else self.initial_state(x.shape[1], x)
        hx = tuple(s.contiguous() for s in state) if self.kind == "lstm" else state[0].contiguous()
        if lengths is None:
            y, new = self.rnn(x, hx)
        else:
            packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), enforce_sorted=False)
            y, new = self.rnn(packed, hx)
            y, _ = pad_packed_sequence(y, total_length=x.shape[0])
        new = new if self.kind == "lstm" else (new,)
        if lengths is not None:  # an empty sequence keeps its input state
            empty = (lengths == 0).view(1, -1, 1)
            new = tuple(torch.where(empty, s0, s1) for s0, s1 in zip(state, new))
        return y, tuple(new)
