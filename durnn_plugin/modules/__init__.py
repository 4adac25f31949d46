"""Cells and stacks (torch only)."""
from .cell_base import RecurrentCell
from .dilated import Dilated
from .durnn_cell import DuRNNCell
from .indrnn_cell import IndRNNCell
from ..errors import InvalidOptionError
from .stack import RecurrentStack, record_internals, reverse_padded
from .stack_options import StackOptions
from .torch_rnn_cell import TorchRNNCell

__all__ = ["RecurrentCell", "Dilated", "DuRNNCell", "IndRNNCell", "InvalidOptionError",
           "RecurrentStack", "record_internals", "reverse_padded", "StackOptions", "TorchRNNCell"]
