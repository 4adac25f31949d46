"""Recurrence primitives: references, fast paths and their dispatch (triton is imported lazily)."""
from .dispatch import (
    BACKEND_NAMES, choose_backend, choose_short_backend, indrnn_recurrence, selected_backend,
    short_rnn_recurrence,
)
from .indrnn_cpu import indrnn_loop
from .indrnn_reference import indrnn_reference
from .indrnn_scan import indrnn_scan
from .indrnn_triton import indrnn_triton
from .indrnn_triton_pipelined import indrnn_triton_pipelined
from .indrnn_triton_scan import indrnn_triton_scan
from .short_rnn_cpu import short_rnn_loop
from .short_rnn_cudnn import short_rnn_cudnn
from .short_rnn_triton import short_rnn_triton
from .time_dilation import columns_to_state, column_lengths, dilate, last_states, undilate

__all__ = [
    "BACKEND_NAMES",
    "choose_backend",
    "choose_short_backend",
    "indrnn_recurrence",
    "selected_backend",
    "short_rnn_recurrence",
    "indrnn_loop",
    "indrnn_reference",
    "indrnn_scan",
    "indrnn_triton",
    "indrnn_triton_pipelined",
    "indrnn_triton_scan",
    "short_rnn_loop",
    "short_rnn_cudnn",
    "short_rnn_triton",
    "columns_to_state",
    "column_lengths",
    "dilate",
    "last_states",
    "undilate",
]
