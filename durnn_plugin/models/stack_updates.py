"""What every model with recurrent stacks does around training.

* Constraints: the model is tracked by :mod:`..modules.projection_hook`, which projects every
  constrained weight (``|u| <= γ^{1/T}``, ``σ_max(U_s) <= ρ_s``) right after every optimiser step,
  on the tensors the optimiser updates (fp32 masters under ``--fp16``/``--bf16``), so the next
  forward, validation and every checkpoint see the constrained values. Loaded weights are
  projected once in ``load_state_dict`` (the identity on weights this plugin saved).
* :func:`log_statistics`, after the model's ``forward`` in training mode (inside fairseq's
  ``train_inner`` metrics context): logs each layer's statistics as fairseq metrics (and so in
  the training log, and in tensorboard with ``--tensorboard-logdir``): ``<layer>_u_mean``,
  ``<layer>_u_max`` (of ``|u|``), and for DuRNN ``<layer>_us_norm`` (σ_max of U_s after the last
  projection) and ``<layer>_gate`` (mean selection gate of this forward). Layers are ``l0, l1,
  ...`` (``l0b, ...`` backward; ``l0_1, l0_2`` in residual blocks); a model with several stacks
  prefixes its first-level module name (``encoder_l0_gate``). Logging from the forward, not
  from ``set_num_updates``, keeps every step's set of keys the same, also on resume.
"""
from typing import Dict

from fairseq.logging import metrics
from torch import nn

from ..modules import RecurrentStack
from ..modules.projection_hook import track

STATISTICS_PRIORITY = 1000  # after loss, ppl, wps, ... in the printed log


def recurrent_stacks(model: nn.Module) -> Dict[str, RecurrentStack]:
    """The model's stacks by log prefix: ``""`` for a single stack, else ``"<module>_"``."""
    stacks = {name: m for name, m in model.named_modules() if isinstance(m, RecurrentStack)}
    if len(stacks) == 1:
        return {"": next(iter(stacks.values()))}
    return {name.replace(".stack", "").replace(".", "_") + "_": m for name, m in stacks.items()}


def log_statistics(model: nn.Module) -> None:
    """Log the stacks' statistics when ``model`` is training (call after its forward)."""
    if not model.training:
        return
    for prefix, stack in recurrent_stacks(model).items():
        for key, value in stack.statistics().items():
            metrics.log_scalar(prefix + key, value, priority=STATISTICS_PRIORITY, round=3)


class RecurrentStackModel:
    """Mixin for a fairseq model (listed before the fairseq base class) that wires both in:
    the constraint projection after optimiser steps, and the statistics after each forward (a
    forward hook, so a model that defines its own ``forward`` logs them too)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        track(self)
        self.register_forward_hook(lambda model, inputs, output: log_statistics(model))

    def load_state_dict(self, *args, **kwargs):
        result = super().load_state_dict(*args, **kwargs)
        for stack in recurrent_stacks(self).values():
            stack.project_constraints_()
        return result
