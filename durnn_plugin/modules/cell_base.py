"""Common interface of the recurrent cells that a stack layer holds.

A cell maps ``x: (T, B, D)`` and an optional state to ``y: (T, B, output_size)`` and its final
state. A state is a tuple of tensors, each ``(1, B, C)`` for an undilated cell (``(d, B, C)``
once wrapped by :class:`.dilated.Dilated`). ``lengths: (B,)`` marks right-padded batches: the
returned state is the one after step ``L_b - 1`` of each sequence (the input state when
``L_b = 0``), so padding never reaches it.

Cells with hard weight constraints list, in ``constraint_projections``, a function per
constrained parameter that projects a tensor of its shape in place onto the constraint set.
:mod:`.projection_hook` applies them right after every optimiser step to the tensors the
optimiser updates (the parameters, or their fp32 master copies under mixed precision), so the
forward uses the parameters as they are and every checkpoint satisfies the bounds.

Observation: ``statistics()`` gives scalar summaries for training logs (``u``, the gate, ...);
setting ``trace = {}`` makes every later forward store its internal sequences there, detached,
each ``(T, B, C)`` (see :func:`.stack.record_internals`).
"""
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor, nn

State = Tuple[Tensor, ...]


class RecurrentCell(nn.Module):
    output_size: int
    state_sizes: Tuple[int, ...]
    trace: Optional[Dict[str, Tensor]] = None

    def initial_state(self, batch: int, like: Tensor) -> State:
        return tuple(like.new_zeros(1, batch, n) for n in self.state_sizes)

    def forward(self, x: Tensor, state: Optional[State] = None,
                lengths: Optional[Tensor] = None) -> Tuple[Tensor, State]:
        raise NotImplementedError

    def constraint_projections(self) -> Dict[str, Callable[[Tensor], None]]:
        """Parameter name -> a function that projects a tensor of that parameter's shape (the
        parameter, or the optimiser's master copy of it) in place onto the constraint set."""
        return {}

    def statistics(self) -> Dict[str, Tensor]:
        """Scalar summaries (0-dim, detached) for training logs; empty if none."""
        return {}

    def _record(self, **internals: Optional[Tensor]) -> None:
        """Store the given ``(T, B, C)`` internals in ``trace`` when tracing is on."""
        if self.trace is not None:
            self.trace.update({k: v.detach() for k, v in internals.items() if v is not None})

    @torch.no_grad()
    def project_constraints_(self) -> None:
        """Project this cell's own constrained parameters (e.g. after loading weights)."""
        for name, project in self.constraint_projections().items():
            project(getattr(self, name).data)
