"""Any cell, dilated (Dilated RNN; docs/model.md section 3): the cell recurs over ``t - d``.

Runs the wrapped cell on the view ``(T'/d, d·B, D)`` of :func:`..ops.dilate` and maps states
between the cell's per-column form ``(1, d·B, C)`` and the time-ordered form ``(d, B, C)`` (the
last ``d`` states; see :mod:`..ops.time_dilation`).
"""
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from ..ops import column_lengths, columns_to_state, dilate, undilate
from .cell_base import RecurrentCell, State


class Dilated(RecurrentCell):
    def __init__(self, cell: RecurrentCell, dilation: int):
        super().__init__()
        self.cell, self.dilation = cell, dilation
        self.output_size, self.state_sizes = cell.output_size, cell.state_sizes

    def initial_state(self, batch: int, like: Tensor) -> State:
        return tuple(like.new_zeros(self.dilation, batch, n) for n in self.state_sizes)

    def forward(self, x: Tensor, state: Optional[State] = None,
                lengths: Optional[Tensor] = None) -> Tuple[Tensor, State]:
        d = self.dilation
        T, B = x.shape[:2]
        state = state if state is not None else self.initial_state(B, x)
        full = lengths if lengths is not None else torch.full((B,), T, dtype=torch.long, device=x.device)
        columns = tuple(s.reshape((1, d * B) + tuple(s.shape[2:])) for s in state)
        self.cell.trace = None if self.trace is None else {}
        y, columns = self.cell(dilate(x, d), columns, column_lengths(full, d))
        if self.trace is not None:
            self.trace.update({k: undilate(v, d, T) for k, v in self.cell.trace.items()})
        return undilate(y, d, T), tuple(columns_to_state(c, full, d) for c in columns)

    def statistics(self) -> Dict[str, Tensor]:
        return self.cell.statistics()
