"""One decoding step of a post-norm stack layer as one compiled call
(``ops/csrc/cpu_recurrences.cpp``), for incremental decoding on the CPU.

With x ``(B, D)`` and the layer's state, the DuRNN layer (docs/model.md section 2) is::

    s = φ(W_s x + b_s + U_s s0)                (B, N_s)
    [x_g ; x_l] = W_x x                        one GEMM for both x terms (where they exist)
    g = σ(x_g + V_g s + b_g)                   as the cell's ``selection`` says (none: g = 1)
    h = relu(W_l (g ⊙ s) + b_l + x_l + u ⊙ h0) (B, N_l); x_l only with ``selected+input``
    y = norm([s ; h] + skip(x))                (B, C); h alone with ``module_output=long``

and the IndRNN layer ``h = relu(W x + b + u ⊙ h0)``, ``y = norm(h + skip(x))``. The same sums as
the layer's own forward, in another order (equal within fp32 rounding).

:func:`compiled_step` runs it where the layer's own forward would run one step of a sequence
decoded token by token: one time step, no padding, no gradient recorded (fairseq's generator runs
under ``torch.no_grad``), CPU fp32/fp64 tensors, an undilated DuRNN or IndRNN cell in a
``post-norm`` layer with layer norm or none, no trace, and ``DURNN_BACKEND`` leaving both
recurrences at ``auto`` or ``compiled`` (so ``cpu`` / ``short=cpu`` force the Python ops).
Everywhere else it returns ``None`` and the layer runs its forward.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from ..ops.cpu_extension import compiled_module, unavailable_reason
from ..ops.dispatch import forced_backends
from .cell_base import State
from .constraints import clamp_recurrent
from .durnn_cell import DuRNNCell
from .indrnn_cell import IndRNNCell
from .norms import MaskedLayerNorm, NoNorm

COMPILED_NAMES = ("auto", "compiled")


def step_applies(layer, x: Tensor, lengths: Optional[Tensor]) -> bool:
    backends = forced_backends()
    return (x.shape[0] == 1 and lengths is None and not torch.is_grad_enabled()
            and isinstance(layer.cell, (DuRNNCell, IndRNNCell)) and layer.cell.trace is None
            and isinstance(layer.norm, (MaskedLayerNorm, NoNorm))
            and backends["indrnn"] in COMPILED_NAMES and backends["short"] in COMPILED_NAMES
            and unavailable_reason(x, layer.cell.u) is None)


def residual_arguments(layer):
    """``(skip kind, skip weight, norm weight, norm bias, eps)`` for the compiled step."""
    if layer.skip is None:
        skip, skip_weight = "none", None
    elif isinstance(layer.skip, torch.nn.Identity):
        skip, skip_weight = "identity", None
    else:
        skip, skip_weight = "linear", layer.skip.weight
    norm = layer.norm
    if isinstance(norm, MaskedLayerNorm):
        return skip, skip_weight, norm.weight, norm.bias, norm.eps
    return skip, skip_weight, None, None, 0.0


def compiled_step(layer, x: Tensor, state: Optional[State],
                  lengths: Optional[Tensor]) -> Optional[Tuple[Tensor, State]]:
    """``(y (1, B, C), state)`` of one step of ``layer`` (a ``StackLayer``) on x ``(1, B, D)``,
    or ``None`` where the compiled step does not apply (see the module docstring)."""
    if not step_applies(layer, x, lengths):
        return None
    cell = layer.cell
    if state is None:
        state = cell.initial_state(x.shape[1], x)
    u = clamp_recurrent(cell.u, cell.u_bound, cell.u_floor)
    ext = compiled_module()
    if isinstance(cell, IndRNNCell):
        y, h = ext.indrnn_layer_step(x[0], state[0][0], cell.weight, cell.bias, u,
                                     *residual_arguments(layer))
        return y.unsqueeze(0), (h.unsqueeze(0),)
    s0, h0 = state
    y, s, h = ext.durnn_layer_step(
        x[0], s0[0], h0[0], cell.W_s, cell.W_x, cell.b_s, cell.U_s, cell.V_g,
        cell.b_g, cell.W_l, cell.b_l, u, cell.x_sizes[0], cell.x_sizes[1],
        cell.short_activation == "relu", cell.module_output == "concat",
        *residual_arguments(layer))
    return y.unsqueeze(0), (s.unsqueeze(0), h.unsqueeze(0))
