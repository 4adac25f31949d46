"""Recurrence primitives (torch only): references, fast paths and their dispatch."""
from .dispatch import indrnn_recurrence, selected_backend
from .indrnn_cpu import indrnn_loop
from .indrnn_reference import indrnn_reference
from .time_dilation import columns_to_state, column_lengths, dilate, last_states, undilate

__all__ = [
    "indrnn_recurrence",
    "selected_backend",
    "indrnn_loop",
    "indrnn_reference",
    "columns_to_state",
    "column_lengths",
    "dilate",
    "last_states",
    "undilate",
]
