"""What every model with recurrent stacks does after each optimiser update.

fairseq calls ``model.set_num_updates`` at the end of every training step (inside the
``train_inner`` metrics context). There :func:`after_update`:

* projects every constrained weight back onto its bound (``|u| <= γ^{1/T}``,
  ``σ_max(U_s) <= ρ_s``), so the next forward and every checkpoint satisfy them;
* logs each layer's statistics as fairseq metrics (and so in the training log and in
  tensorboard with ``--tensorboard-logdir``): ``<layer>_u_mean``, ``<layer>_u_max`` (of
  ``|u|``), and for DuRNN ``<layer>_us_norm`` (σ_max of U_s) and ``<layer>_gate`` (mean
  selection gate of the step). Layers are ``l0, l1, ...`` (``l0b, ...`` backward); a model with
  several stacks prefixes its first-level module name (``encoder_l0_gate``).
"""
from typing import Dict

from fairseq.logging import metrics
from torch import nn

from ..modules import RecurrentStack

STATISTICS_PRIORITY = 1000  # after loss, ppl, wps, ... in the printed log


def recurrent_stacks(model: nn.Module) -> Dict[str, RecurrentStack]:
    """The model's stacks by log prefix: ``""`` for a single stack, else ``"<module>_"``."""
    stacks = {name: m for name, m in model.named_modules() if isinstance(m, RecurrentStack)}
    if len(stacks) == 1:
        return {"": next(iter(stacks.values()))}
    return {name.replace(".stack", "").replace(".", "_") + "_": m for name, m in stacks.items()}


def after_update(model: nn.Module) -> None:
    for prefix, stack in recurrent_stacks(model).items():
        stack.project_constraints_()
        for key, value in stack.statistics().items():
            metrics.log_scalar(prefix + key, value, priority=STATISTICS_PRIORITY, round=3)
