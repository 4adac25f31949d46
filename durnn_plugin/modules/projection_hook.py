"""The recurrent constraints applied right after every optimiser step, to the weights the
optimiser itself updates (docs/model.md, "Constraints").

Mechanism: one global step post-hook of ``torch.optim`` (``register_optimizer_step_post_hook``),
installed when the first model is tracked. It runs after the ``step`` of every torch optimizer,
so it reaches every fairseq task and every fairseq optimizer wrapper without knowing either:
fairseq's ``FairseqOptimizer``, ``FP16Optimizer`` and ``AMPOptimizer`` all end in a torch
optimizer's ``step``. A model's own methods cannot do this: fairseq calls
``model.set_num_updates`` at the start of the next ``train_step`` (and on checkpoint load), not
after the step, and under ``--fp16``/``--bf16`` it copies the fp32 masters over the parameters
after the step, so a projection of the parameters would be overwritten.

Which tensors the optimizer updates (found once per optimizer, at its first step, by a global
step pre-hook, and checked then against the model's values bit for bit):

* the parameters themselves: fp32, ``--amp`` and the memory-efficient fp16/bf16 modes;
* one fp32 master per trainable parameter, in ``model.parameters()`` order: ``--bf16`` and
  ``--fp16 --fp16-no-flatten-grads`` (fairseq's ``FP16Optimizer``, ``flatten=False``);
* one flat fp32 buffer holding the trainable parameters one after the other, in the same
  order: ``--fp16`` (``FP16Optimizer``, ``flatten=True``).

The check: before the optimizer's first step each master, cast to its parameter's dtype, equals
the parameter exactly (fairseq builds the masters from the parameters and copies them back after
every step). A layout that fails it is not bound, so another optimizer in the same process is
never touched. Then fairseq's own copy of the masters over the parameters carries the projected
values into the model; a bf16 copy may lie one rounding step outside a bound that is not a bf16
number (``2^(1/100)``), which the forward's clamp of ``u`` absorbs.
"""
import weakref
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch import Tensor, nn

from .cell_base import RecurrentCell

Projection = Tuple[Tensor, Callable[[Tensor], None]]  # (tensor the optimizer updates, projection)

_tracked: "weakref.WeakSet[nn.Module]" = weakref.WeakSet()
_bound: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # optimizer -> [Projection]
_handles: List = []


def track(model: nn.Module) -> None:
    """Project ``model``'s constrained weights after every step of any optimizer over them
    (``model``: the module whose ``parameters()`` the optimizer was built from, e.g. the fairseq
    model, or a :class:`.stack.RecurrentStack` used on its own)."""
    if not _handles:
        _handles.append(register_optimizer_step_pre_hook(_bind))
        _handles.append(register_optimizer_step_post_hook(_project))
    _tracked.add(model)


def constrained_parameters(model: nn.Module) -> List[Tuple[nn.Parameter, Callable[[Tensor], None]]]:
    """Every constrained parameter of ``model`` with its in-place projection."""
    return [(getattr(cell, name), project) for cell in model.modules()
            if isinstance(cell, RecurrentCell)
            for name, project in cell.constraint_projections().items()]


def master_tensors(optimizer: torch.optim.Optimizer, model: nn.Module) -> Optional[List[Tensor]]:
    """The fp32 master the optimizer updates for each trainable parameter of ``model``, in order
    (a tensor, or a view of the flat buffer), or ``None`` when the optimizer holds no masters of
    this model in one of the layouts of the module docstring."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable or not params:
        return None
    if len(params) >= len(trainable) and all(m.shape == p.shape for m, p in zip(params, trainable)):
        masters = params[:len(trainable)]
    elif len(params) == 1 and params[0].dim() == 1 \
            and params[0].numel() >= sum(p.numel() for p in trainable):
        offsets = torch.tensor([0] + [p.numel() for p in trainable]).cumsum(0).tolist()
        masters = [params[0].data[start:start + p.numel()].view(p.shape)
                   for start, p in zip(offsets, trainable)]
    else:
        return None
    with torch.no_grad():
        if not all(m is not p and m.dtype == torch.float32 and torch.equal(m.to(p.dtype), p)
                   for m, p in zip(masters, trainable)):
            return None
    return masters


def projections(optimizer: torch.optim.Optimizer, model: nn.Module) -> Dict[int, Projection]:
    """``id(parameter)`` -> (the tensor ``optimizer`` updates for it, its projection), for each
    constrained parameter of ``model`` that the optimizer updates directly or through a master."""
    constrained = constrained_parameters(model)
    stepped = {id(p) for group in optimizer.param_groups for p in group["params"]}
    direct = {id(p): (p.data, project) for p, project in constrained if id(p) in stepped}
    if direct or not constrained:
        return direct
    masters = master_tensors(optimizer, model)
    if masters is None:
        return {}
    position = {id(p): i for i, p in enumerate(p for p in model.parameters() if p.requires_grad)}
    return {id(p): (masters[position[id(p)]].data, project) for p, project in constrained
            if id(p) in position}


def _bind(optimizer, args, kwargs) -> None:
    if optimizer not in _bound:
        found: Dict[int, Projection] = {}
        for model in list(_tracked):  # a stack may be tracked on its own and inside a model
            found.update(projections(optimizer, model))
        _bound[optimizer] = list(found.values())


@torch.no_grad()
def _project(optimizer, args, kwargs) -> None:
    for tensor, project in _bound.get(optimizer, ()):
        project(tensor)
