"""The recurrent constraints applied right after every optimiser step, to the weights the
optimiser itself updates (docs/model.md, "Constraints").

Mechanism: one global step pre-hook and one global step post-hook of ``torch.optim``
(``register_optimizer_step_pre_hook``/``..._post_hook``), installed when the first module is
tracked. They run around the ``step`` of every torch optimizer, so they reach every fairseq task
and every fairseq optimizer wrapper: ``FairseqOptimizer``, ``FP16Optimizer`` and ``AMPOptimizer``
all end in a torch optimizer's ``step``. A model's own methods cannot do this: fairseq calls
``model.set_num_updates`` at the start of the next ``train_step`` (and on checkpoint load), not
after the step, and under ``--fp16``/``--bf16`` it copies the fp32 masters over the parameters
after the step, so a projection of the parameters would be overwritten.

Binding, once per optimizer at its first step: each constrained parameter of a tracked module
is bound to the tensor the optimizer updates for it, found by identity, never by equal values:

* ``parameters``: the optimizer holds the parameter object itself (fp32, ``--amp``, the
  memory-efficient fp16/bf16 modes, a bare stack);
* ``FP16Optimizer masters`` / ``FP16Optimizer flat masters``: the step is called by fairseq's
  ``FP16Optimizer`` (found among the calling frames: the object whose ``fp32_optimizer`` holds
  this optimizer), whose ``fp16_params`` are the parameters themselves and whose ``fp32_params``
  are one master per parameter (``--bf16``, ``--fp16 --fp16-no-flatten-grads``) or one flat buffer
  of them one after the other (``--fp16``).

A step called without such a wrapper over fp32 tensors that are no tracked module's parameters
may still hold masters of half-precision parameters laid out as above (``bit-identical masters``,
in ``model.parameters()`` order); they are bound only where each cast to its parameter's dtype
equals the parameter bit for bit (fairseq builds masters from the parameters) and no tensor
matches two modules' parameters. The projections write their statistics (``us_norm``) to the
cells of the bound parameters, so each model's cells describe the weights its optimizer trains.

Every binding is logged once per optimizer (how many constrained tensors, which layout). An
optimizer with nothing bound is watched: if a tracked module's constrained weights change during
its step, or between its step and its next one with no other optimizer's step between (a wrapper
copying its own tensors into the model, as ``FP16Optimizer`` does), training stops with one line
naming the launch options whose layouts this hook cannot map (``--ddp-backend fully_sharded``, an
unknown optimizer wrapper) instead of training the weights unconstrained.

Who calls :func:`track`: every :class:`.stack.RecurrentStack` (a bare stack trained on its own:
its parameters and, without a wrapper, its masters' order) and every fairseq model of this plugin
(``models.stack_updates``: the order of ``model.parameters()`` that wrapper-less masters follow,
and the name in the messages). Cells reached through both are bound once.

A bf16 copy of a projected master may lie one rounding step outside a bound that is not a bf16
number (``2^(1/100)``), which the forward's clamp of ``u`` absorbs.
"""
import logging
import sys
import weakref
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.optim.optimizer import (register_optimizer_step_post_hook,
                                   register_optimizer_step_pre_hook)

from ..errors import OneLineError
from .cell_base import RecurrentCell

logger = logging.getLogger(__name__)

Projection = Tuple[Tensor, Callable[[Tensor], None]]  # (tensor the optimizer updates, projection)
Constrained = Tuple[str, nn.Parameter, Callable[[Tensor], None]]  # (label, parameter, projection)

_tracked: "weakref.WeakSet[nn.Module]" = weakref.WeakSet()
_bound: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # optimizer -> [Projection]
_watched: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # optimizer -> _Snapshot
_handles: List = []
_steps = [0]  # optimizer steps finished in this process
HALF = (torch.float16, torch.bfloat16)
UNSUPPORTED = ("its layout is not one the constraint hook maps (--ddp-backend fully_sharded, or "
               "an optimizer wrapper other than fairseq's FP16Optimizer, "
               "MemoryEfficientFP16Optimizer and AMPOptimizer): train with --ddp-backend "
               "pytorch_ddp, legacy_ddp or no_c10d and fairseq's own optimizers")


def track(module: nn.Module) -> None:
    """Project ``module``'s constrained weights after every step of any optimizer over them
    (or over masters of them); see the module docstring for who calls it."""
    if not _handles:
        _handles.append(register_optimizer_step_pre_hook(_before_step))
        _handles.append(register_optimizer_step_post_hook(_after_step))
    _tracked.add(module)


def constrained_parameters(module: nn.Module) -> List[Constrained]:
    """Every constrained parameter of ``module`` with its label and in-place projection."""
    return [(f"{type(module).__name__} {prefix + '.' if prefix else ''}{name}",
             getattr(cell, name), project)
            for prefix, cell in module.named_modules() if isinstance(cell, RecurrentCell)
            for name, project in cell.constraint_projections().items()]


def tracked_constrained() -> List[Constrained]:
    """The constrained parameters of every tracked module, each once (a stack tracked on its own
    and inside a model is labelled by the model, its largest tracked container)."""
    found: Dict[int, Constrained] = {}
    for module in sorted(_tracked, key=lambda m: -sum(1 for _ in m.modules())):
        for entry in constrained_parameters(module):
            found.setdefault(id(entry[1]), entry)
    return list(found.values())


def stepped_tensors(optimizer: torch.optim.Optimizer) -> List[Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def master_keeper(optimizer: torch.optim.Optimizer):
    """The caller that keeps fp32 masters for ``optimizer``: the ``self`` of a calling frame with
    ``fp16_params``, ``fp32_params`` and an ``fp32_optimizer`` whose ``_optimizer`` is
    ``optimizer`` (fairseq's ``FP16Optimizer``), or ``None``."""
    frame = sys._getframe(1)
    while frame is not None:
        owner = frame.f_locals.get("self")
        inner = getattr(owner, "fp32_optimizer", None)
        if getattr(inner, "_optimizer", None) is optimizer and hasattr(owner, "fp16_params") \
                and hasattr(owner, "fp32_params"):
            return owner
        frame = frame.f_back
    return None


def flat_views(flat: Tensor, params: List[Tensor]) -> List[Tensor]:
    """Views of the 1-D ``flat`` holding ``params`` one after the other, each of its shape."""
    offsets = torch.tensor([0] + [p.numel() for p in params]).cumsum(0).tolist()
    return [flat.data[start:start + p.numel()].view(p.shape) for start, p in zip(offsets, params)]


def keeper_masters(keeper) -> Tuple[Dict[int, Tensor], str]:
    """``id(parameter)`` -> its fp32 master in ``keeper`` (a tensor, or a view of a flat buffer
    per device, as ``FP16Optimizer.build_fp32_params`` lays them out), and the layout's name."""
    params, masters = list(keeper.fp16_params), keeper.fp32_params
    if isinstance(masters, (list, tuple)):
        if len(masters) != len(params):
            return {}, ""
        return {id(p): m.data for p, m in zip(params, masters)}, "FP16Optimizer masters"
    buffers = {None: masters} if torch.is_tensor(masters) else dict(masters)
    found = {}
    for device, flat in buffers.items():
        on_device = [p for p in params if len(buffers) == 1 or p.device.index == device]
        if sum(p.numel() for p in on_device) != flat.numel():
            return {}, ""
        found.update({id(p): view for p, view in zip(on_device, flat_views(flat, on_device))})
    return found, "FP16Optimizer flat masters"


def matching_masters(stepped: List[Tensor], module: nn.Module) -> Optional[List[Tensor]]:
    """Without a wrapper: the fp32 tensors of ``stepped`` laid out as masters of ``module``'s
    trainable half-precision parameters, in order (one each, or one flat buffer), where each cast
    to its parameter's dtype equals the parameter bit for bit; else ``None``."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    if not trainable or not stepped or any(p.dtype not in HALF for p in trainable):
        return None
    if len(stepped) >= len(trainable) and all(m.shape == p.shape
                                              for m, p in zip(stepped, trainable)):
        masters = [m.data for m in stepped[:len(trainable)]]
    elif len(stepped) == 1 and stepped[0].dim() == 1 \
            and stepped[0].numel() >= sum(p.numel() for p in trainable):
        masters = flat_views(stepped[0], trainable)
    else:
        return None
    with torch.no_grad():
        if not all(m.dtype == torch.float32 and torch.equal(m.to(p.dtype), p)
                   for m, p in zip(masters, trainable)):
            return None
    return masters


def bit_identical_masters(stepped: List[Tensor]) -> Dict[int, Projection]:
    """``id(parameter)`` -> (master, projection) from :func:`matching_masters` over every tracked
    module; empty when a master would serve the parameters of two modules (equal copies)."""
    found: Dict[int, Projection] = {}
    owner: Dict[int, int] = {}  # data_ptr of a master -> id of the parameter it serves
    for module in list(_tracked):
        masters = matching_masters(stepped, module)
        if masters is None:
            continue
        position = {id(p): i for i, p in enumerate(p for p in module.parameters()
                                                    if p.requires_grad)}
        for _, p, project in constrained_parameters(module):
            if id(p) in position:
                master = masters[position[id(p)]]
                if owner.setdefault(master.data_ptr(), id(p)) != id(p):
                    return {}
                found[id(p)] = (master, project)
    return found


def bind(optimizer: torch.optim.Optimizer, keeper=None) -> Tuple[List[Projection], str]:
    """The (tensor, projection) pairs of ``optimizer`` and the layout's name (module doc)."""
    stepped = stepped_tensors(optimizer)
    ids = {id(p) for p in stepped}
    constrained = tracked_constrained()
    direct = [(p.data, project) for _, p, project in constrained if id(p) in ids]
    if direct:
        return direct, "parameters"
    if keeper is not None:
        masters, layout = keeper_masters(keeper)
        return [(masters[id(p)], project) for _, p, project in constrained
                if id(p) in masters], layout
    tracked_ids = {id(p) for module in list(_tracked) for p in module.parameters()}
    if ids & tracked_ids:
        return [], ""
    return list(bit_identical_masters(stepped).values()), "bit-identical masters"


class _Snapshot:
    """The tracked constrained weights as they were, and the process's step count then."""

    def __init__(self):
        self.entries = [(label, p, p.detach().clone()) for label, p, _ in tracked_constrained()]
        self.steps = _steps[0]

    def check(self, optimizer: torch.optim.Optimizer, when: str) -> None:
        for label, p, before in self.entries:
            if p.shape != before.shape or not torch.equal(p.detach(), before):
                shapes = ", ".join(str(tuple(t.shape)) for t in stepped_tensors(optimizer)[:3])
                raise OneLineError(
                    f"{label} changed {when} of {type(optimizer).__name__} over tensors of "
                    f"shapes {shapes}, which the constraint hook could not bind to any "
                    f"constrained weight, so the constraints were off: {UNSUPPORTED}")


def _before_step(optimizer, args, kwargs) -> None:
    if optimizer not in _bound:
        bound, layout = bind(optimizer, master_keeper(optimizer))
        _bound[optimizer] = bound
        logger.info(f"constraint projection: {len(bound)} constrained tensors bound to "
                    f"{type(optimizer).__name__} ({layout if bound else 'none'})")
    if not _bound[optimizer]:
        snapshot = _watched.get(optimizer)
        if snapshot is not None and snapshot.steps == _steps[0]:
            snapshot.check(optimizer, "between two steps")
        _watched[optimizer] = _Snapshot()


@torch.no_grad()
def _after_step(optimizer, args, kwargs) -> None:
    _steps[0] += 1
    bound = _bound.get(optimizer)
    for tensor, project in bound or ():
        project(tensor)
    if bound == [] and optimizer in _watched:
        _watched[optimizer].check(optimizer, "in a step")
        _watched[optimizer].steps = _steps[0]
