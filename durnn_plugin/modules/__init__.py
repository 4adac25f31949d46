"""Recurrent layers and stacks (torch only; never imports fairseq).

The cells (:class:`RecurrentCell` and its subclasses :class:`DuRNNCell`, :class:`IndRNNCell`,
:class:`TorchRNNCell`, and :class:`Dilated` around any of them) run a whole sequence per call:
``forward(x, state, lengths)`` takes x ``(T, B, C)`` and returns the outputs ``(T, B, N)`` and
the final state, unlike a torch ``nn.RNNCell``, which computes one time step.
:class:`RecurrentStack` builds layers of them (blocks, residual connections, norms) from
:class:`StackOptions`.
"""
from ..errors import InvalidOptionError
from .cell_base import RecurrentCell
from .dilated import Dilated
from .durnn_cell import DuRNNCell
from .indrnn_cell import IndRNNCell
from .stack import RecurrentStack, record_internals, reverse_padded
from .stack_options import StackOptions
from .torch_rnn_cell import TorchRNNCell

__all__ = ["RecurrentCell", "Dilated", "DuRNNCell", "IndRNNCell", "InvalidOptionError",
           "RecurrentStack", "record_internals", "reverse_padded", "StackOptions", "TorchRNNCell"]
