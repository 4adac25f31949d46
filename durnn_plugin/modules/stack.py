"""The one recurrent stack behind every model (LM, encoder, decoder, classifier).

Input x ``(T, B, D)``, right-padded with ``lengths (B,)`` (``None``: no padding); output
``(T, B, N)`` (``2N`` if bidirectional) and the final states. Layer ``l`` computes
(``--block post-norm``, the default)::

    y_l = cell_l(x_l)                  recurs over t - d_l (dilation)
    y_l = y_l + skip_l(x_l)            residual: identity, or a projection where sizes differ
    y_l = norm_l(y_l)                  layer / batch (over valid positions) / none
    x_{l+1} = dropout(y_l)             one mask per sequence, shared over time; not after the last

or, with ``--block residual`` (docs/model.md section 4), a pre-activation block of two cells
(:class:`ResidualBlock`): ``y_l = skip_l(x_l) + cell_l2(norm_l2(cell_l1(norm_l1(x_l))))``.

Bidirectional: a second stack runs over each sequence's valid part reversed; its output is
reversed back and concatenated to the forward output.

State: a list with one tuple per layer (forward layers, then backward layers; a residual
block's tuple holds its two cells' states), each tensor ``(d_l, B, C)``: the last ``d_l`` states in time order (see :mod:`..ops.time_dilation`).
Positions past a sequence's length change neither its valid outputs nor its final state.
"""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Tuple

import torch
from torch import Tensor, nn

from .cell_base import RecurrentCell, State
from .dilated import Dilated
from .durnn_cell import DuRNNCell
from .indrnn_cell import IndRNNCell
from .layer_step import compiled_step
from .norms import build_norm
from .projection_hook import track
from ..errors import OneLineError
from .shared_dropout import SharedDropout
from .stack_options import BLOCKS, StackOptions
from .torch_rnn_cell import TorchRNNCell


def build_cell(opts: StackOptions, input_size: int, last: bool) -> RecurrentCell:
    bound = opts.u_bound()
    low = opts.u_last_eps ** (1.0 / opts.time_steps()) if last and opts.u_last_eps > 0 else 0.0
    floor = low if opts.u_last_clamp else 0.0
    if opts.cell == "durnn":
        short, long = opts.short_and_long_sizes()
        return DuRNNCell(input_size, short, long, u_bound=bound, u_init_low=low,
                         short_rho=opts.short_rho, short_activation=opts.short_activation,
                         selection=opts.selection, long_input=opts.long_input,
                         module_output=opts.module_output, u_floor=floor,
                         long_input_std=opts.long_input_init_std)
    if opts.cell == "indrnn":
        return IndRNNCell(input_size, opts.hidden_size, bound, low, floor, opts.long_input_init_std)
    return TorchRNNCell(opts.cell, input_size, opts.hidden_size)


def build_recurrence(opts: StackOptions, input_size: int, dilation: int,
                     last: bool) -> RecurrentCell:
    """A cell of ``opts.cell``, wrapped in :class:`.dilated.Dilated` when ``dilation > 1``."""
    cell = build_cell(opts, input_size, last)
    return Dilated(cell, dilation) if dilation > 1 else cell


def build_skip(input_size: int, size: int) -> nn.Module:
    """Identity, or a linear projection (no bias) where the sizes differ."""
    return nn.Identity() if size == input_size else nn.Linear(input_size, size, bias=False)


class StackLayer(nn.Module):
    """``--block post-norm``: ``y = norm(cell(x) + skip(x))`` (no skip with ``no_residual``)."""

    def __init__(self, opts: StackOptions, input_size: int, dilation: int, last: bool):
        super().__init__()
        self.cell = build_recurrence(opts, input_size, dilation, last)
        size = self.cell.output_size
        self.skip = None if opts.no_residual else build_skip(input_size, size)
        self.norm = build_norm(opts.norm, size)
        self.output_size = size

    def cells(self) -> Dict[str, RecurrentCell]:
        return {"": self.cell}

    def forward(self, x: Tensor, state: Optional[State], lengths: Optional[Tensor],
                mask: Optional[Tensor]) -> Tuple[Tensor, State]:
        stepped = compiled_step(self, x, state, lengths)  # one decoding step: .layer_step
        if stepped is not None:
            return stepped
        y, state = self.cell(x, state, lengths)
        if self.skip is not None:
            y = y + self.skip(x)
        return self.norm(y, mask), state


class ResidualBlock(nn.Module):
    """``--block residual`` (docs/model.md section 4, the residual IndRNN block, for any cell): two
    pre-activation units and an identity skip, ``y = skip(x) + cell_2(norm_2(cell_1(norm_1(x))))``
    (``skip`` projects where sizes differ, i.e. only in the first block). The last block also
    normalises its output (``final_norm``), as pre-activation networks do before their head.
    Its state is the two cells' states, concatenated (``cell_1``'s first)."""

    def __init__(self, opts: StackOptions, input_size: int, dilation: int, last: bool):
        super().__init__()
        self.norm_1 = build_norm(opts.norm, input_size)
        self.cell_1 = build_recurrence(opts, input_size, dilation, False)
        self.norm_2 = build_norm(opts.norm, self.cell_1.output_size)
        self.cell_2 = build_recurrence(opts, self.cell_1.output_size, dilation, last)
        self.output_size = self.cell_2.output_size
        self.skip = build_skip(input_size, self.output_size)
        self.final_norm = build_norm(opts.norm, self.output_size) if last else None

    def cells(self) -> Dict[str, RecurrentCell]:
        return {"_1": self.cell_1, "_2": self.cell_2}

    def forward(self, x: Tensor, state: Optional[State], lengths: Optional[Tensor],
                mask: Optional[Tensor]) -> Tuple[Tensor, State]:
        n_1 = len(self.cell_1.state_sizes)
        state_1, state_2 = (None, None) if state is None else (state[:n_1], state[n_1:])
        z, state_1 = self.cell_1(self.norm_1(x, mask), state_1, lengths)
        z, state_2 = self.cell_2(self.norm_2(z, mask), state_2, lengths)
        y = self.skip(x) + z
        if self.final_norm is not None:
            y = self.final_norm(y, mask)
        return y, tuple(state_1) + tuple(state_2)


class DenseLayer(nn.Module):
    """``--block dense`` (docs/model.md section 4, densely connected): ``y = [x ; norm(cell(x))]``
    ``(T, B, C + N)``, so layer ``l`` reads the stack input and every earlier layer's output
    (DenseNet's connectivity, without transition or bottleneck layers). The width grows by the
    cell's output size ``N`` per layer: a stack of ``L`` layers outputs ``C + L·N`` features."""

    def __init__(self, opts: StackOptions, input_size: int, dilation: int, last: bool):
        super().__init__()
        self.cell = build_recurrence(opts, input_size, dilation, last)
        self.norm = build_norm(opts.norm, self.cell.output_size)
        self.output_size = input_size + self.cell.output_size

    def cells(self) -> Dict[str, RecurrentCell]:
        return {"": self.cell}

    def forward(self, x: Tensor, state: Optional[State], lengths: Optional[Tensor],
                mask: Optional[Tensor]) -> Tuple[Tensor, State]:
        y, state = self.cell(x, state, lengths)
        return torch.cat([x, self.norm(y, mask)], -1), state


BLOCK_CLASSES = dict(zip(BLOCKS, (StackLayer, ResidualBlock, DenseLayer)))


def reverse_padded(x: Tensor, lengths: Optional[Tensor]) -> Tensor:
    """Reverse each sequence's valid part in time; padding stays where it is. x ``(T, B, ...)``."""
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T, device=x.device).unsqueeze(1)
    idx = torch.where(t < lengths.unsqueeze(0), lengths.unsqueeze(0) - 1 - t, t)  # (T, B)
    idx = idx.reshape(idx.shape + (1,) * (x.dim() - 2)).expand_as(x)
    return x.gather(0, idx)


class RecurrentStack(nn.Module):
    def __init__(self, opts: StackOptions, input_size: int):
        super().__init__()
        opts.validate()
        self.opts = opts
        self.directions = nn.ModuleList(
            [self._layers(opts, input_size) for _ in range(2 if opts.bidirectional else 1)])
        self.dropout = SharedDropout(opts.layer_dropout)
        self.output_size = self.directions[0][-1].output_size * len(self.directions)
        track(self)  # constraints projected after every optimiser step (.projection_hook)

    @staticmethod
    def _layers(opts: StackOptions, input_size: int) -> nn.ModuleList:
        layers = []
        for index, dilation in enumerate(opts.layer_dilations()):
            layers.append(BLOCK_CLASSES[opts.block](opts, input_size, dilation,
                                             index == opts.num_layers - 1))
            input_size = layers[-1].output_size
        return nn.ModuleList(layers)

    def _run(self, layers: nn.ModuleList, x: Tensor, states: List[Optional[State]],
             lengths: Optional[Tensor], mask: Optional[Tensor]) -> Tuple[Tensor, List[State]]:
        finals = []
        for index, (layer, state) in enumerate(zip(layers, states)):
            if index > 0:
                x = self.dropout(x)
            x, state = layer(x, state, lengths, mask)
            finals.append(state)
        return x, finals

    def forward(self, x: Tensor, lengths: Optional[Tensor] = None,
                state: Optional[List[State]] = None) -> Tuple[Tensor, List[State]]:
        T = x.shape[0]
        if T == 0:
            raise OneLineError(f"the input has no time steps: x is {tuple(x.shape)} (T, B, C); "
                               "every batch needs at least one step")
        if lengths is not None and bool((lengths >= T).all()):
            lengths = None
        mask = None
        if lengths is not None:
            mask = torch.arange(T, device=x.device).unsqueeze(1) < lengths.unsqueeze(0)
        L = self.opts.num_layers
        states = list(state) if state is not None else [None] * (L * len(self.directions))
        y, finals = self._run(self.directions[0], x, states[:L], lengths, mask)
        if len(self.directions) == 2:
            y_back, back = self._run(self.directions[1], reverse_padded(x, lengths), states[L:],
                                     lengths, mask)
            y = torch.cat([y, reverse_padded(y_back, lengths)], -1)
            finals = finals + back
        return y, finals

    def project_constraints_(self) -> None:
        """Project every constrained parameter onto its bound (optimiser steps do this by
        themselves, :mod:`.projection_hook`; this is for weights loaded or set by hand)."""
        for module in self.modules():
            if isinstance(module, RecurrentCell) and module is not self:
                module.project_constraints_()

    def layer_cells(self) -> Dict[str, RecurrentCell]:
        """Each layer's cell by name: ``l0``, ``l1``, ... (forward), ``l0b``, ... (backward);
        a residual block's two cells are ``l0_1`` and ``l0_2``."""
        return {f"l{index}{'b' if direction else ''}{suffix}": cell
                for direction, layers in enumerate(self.directions)
                for index, layer in enumerate(layers)
                for suffix, cell in layer.cells().items()}

    def statistics(self) -> Dict[str, Tensor]:
        """``<layer>_<name>`` -> 0-dim tensor, from each cell's ``statistics()``."""
        return {f"{layer}_{key}": value for layer, cell in self.layer_cells().items()
                for key, value in cell.statistics().items()}


@contextmanager
def record_internals(stack: RecurrentStack) -> Iterator[Dict[str, Dict[str, Tensor]]]:
    """Within the block, each forward of ``stack`` stores (replacing the previous one) each layer's internal sequences
    ``(T, B, C)`` (DuRNN: ``short``, ``gate``, ``long_input``, ``long``; IndRNN:
    ``long_input``, ``long``) in the yielded dict, keyed by layer name as in ``layer_cells``.
    Backward layers record in their own processing order (each valid part reversed)."""
    cells = stack.layer_cells()
    for cell in cells.values():
        cell.trace = {}
    try:
        yield {name: cell.trace for name, cell in cells.items()}
    finally:
        for cell in cells.values():
            cell.trace = None
