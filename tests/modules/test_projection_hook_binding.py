"""What the constraint hook binds, says and refuses (durnn_plugin/modules/projection_hook.py).

* one log line per optimizer: how many constrained tensors, which layout;
* an optimizer over a copy of a tracked model with equal values is bound to the copy (by
  identity), directly and through fairseq's ``FP16Optimizer`` masters (one per parameter, or one
  flat buffer), and the statistics go to the copy's cells, not the original's;
* an optimizer whose tensors the hook cannot map, while a wrapper copies them into a tracked
  model after each step (as a sharded data-parallel wrapper does), stops training with one line
  naming the launch option; a tracked model trained by another optimizer between two steps of an
  unrelated optimizer is not blamed on it.
"""
import logging

import pytest
import torch
from omegaconf import OmegaConf

from fairseq import optim
from fairseq.optim.fp16_optimizer import FP16Optimizer
from durnn_plugin.errors import OneLineError
from durnn_plugin.modules import DuRNNCell, RecurrentStack, StackOptions
from durnn_plugin.modules.constraints import spectral_norm

RHO = 0.9
LOGGER = "durnn_plugin.modules.projection_hook"


def small_stack() -> RecurrentStack:
    """Two DuRNN layers (4 constrained tensors) whose ``U_s`` start well inside ``ρ``."""
    stack = RecurrentStack(StackOptions(num_layers=2, hidden_size=12, short_size=4,
                                        short_rho=RHO), 3)
    with torch.no_grad():
        for cell in cells(stack):
            cell.U_s.mul_(0.1)
    stack.project_constraints_()  # us_norm = σ_max(U_s), well below ρ
    return stack


def cells(module):
    return [m for m in module.modules() if isinstance(m, DuRNNCell)]


def equal_copy(stack: RecurrentStack) -> RecurrentStack:
    copy = RecurrentStack(stack.opts, 3)
    copy.load_state_dict(stack.state_dict())
    copy.project_constraints_()
    return copy


def push_out(params) -> None:
    """Gradients that move every weight up by 1 under SGD(lr=1): far outside both sets."""
    for p in params:
        p.grad = -torch.ones_like(p)


def hook_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_one_line_per_optimizer_with_count_and_layout(caplog):
    stack = small_stack()
    optimizer = torch.optim.SGD(stack.parameters(), lr=0.0)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for _ in range(3):
            optimizer.step()
    assert hook_lines(caplog) == ["constraint projection: 4 constrained tensors bound to SGD "
                                  "(parameters)"]


def test_a_copy_with_equal_values_is_bound_by_identity():
    original = small_stack()
    copy = equal_copy(original)
    before = [cell.us_norm.item() for cell in cells(original)]
    assert before == [cell.us_norm.item() for cell in cells(copy)] and max(before) < 0.5 * RHO
    optimizer = torch.optim.SGD(copy.parameters(), lr=1.0)
    push_out(copy.parameters())
    optimizer.step()
    for cell in cells(copy):
        assert cell.us_norm.item() == pytest.approx(RHO)
        assert spectral_norm(cell.U_s) <= RHO * (1 + 1e-5)
    assert [cell.us_norm.item() for cell in cells(original)] == before


def fp16_optimizer(params, flat: bool) -> FP16Optimizer:
    """fairseq's ``FP16Optimizer`` with SGD(lr=1): as ``--bf16`` builds it (one fp32 master per
    parameter), or, with ``flat``, over one flat fp32 buffer as ``--fp16`` lays it out
    (``build_fp32_params`` builds that one on CUDA only, so here it is built the same way by
    hand)."""
    cfg = OmegaConf.create({
        "common": {"bf16": not flat, "fp16_no_flatten_grads": False, "fp16_scale_window": 1,
                   "fp16_init_scale": 1, "fp16_scale_tolerance": 0.0,
                   "threshold_loss_scale": None, "min_loss_scale": 1e-4,
                   "model_parallel_size": 1},
        "optimization": {"update_freq": [1]},
        "distributed_training": {"distributed_world_size": 1},
        "optimizer": {"_name": "sgd", "lr": [1.0], "momentum": 0.0, "weight_decay": 0.0}})
    params = list(params)
    if not flat:
        return FP16Optimizer.build_optimizer(cfg, params)
    buffer = torch.nn.Parameter(torch.cat([p.data.float().flatten() for p in params]))
    buffer.grad = torch.zeros_like(buffer)
    return FP16Optimizer(cfg, params, optim.build_optimizer(cfg.optimizer, [buffer]),
                         {None: buffer})


def masters_of(optimizer: FP16Optimizer, model, suffix: str):
    """The fp32 masters of ``model``'s parameters named ``*suffix``."""
    params = list(model.parameters())
    if isinstance(optimizer.fp32_params, dict):
        pieces = optimizer.fp32_params[None].split([p.numel() for p in params])
        masters = [m.view(p.shape) for m, p in zip(pieces, params)]
    else:
        masters = optimizer.fp32_params
    return [m for (name, _), m in zip(model.named_parameters(), masters) if name.endswith(suffix)]


@pytest.mark.parametrize("flat", [False, True], ids=["bf16-masters", "fp16-flat-masters"])
def test_fp16_optimizer_masters_are_bound_to_the_model_they_copy(caplog, flat):
    half = torch.float16 if flat else torch.bfloat16
    original = small_stack().to(half)
    copy = equal_copy(original).to(half)
    assert all(torch.equal(a, b) for a, b in zip(original.parameters(), copy.parameters()))
    before = [cell.us_norm.item() for cell in cells(original)]
    optimizer = fp16_optimizer(copy.parameters(), flat)
    optimizer.backward(-sum(p.float().sum() for p in copy.parameters()))  # every gradient -1
    with caplog.at_level(logging.INFO, logger=LOGGER):
        optimizer.step()  # steps the masters, then copies them into ``copy``
    assert [cell.us_norm.item() for cell in cells(original)] == before
    masters = masters_of(optimizer, copy, ".U_s")
    assert len(masters) == 2
    for cell, master in zip(cells(copy), masters):
        assert cell.us_norm.item() == pytest.approx(RHO)
        assert spectral_norm(master) <= RHO * (1 + 1e-5)
    layout = "FP16Optimizer flat masters" if flat else "FP16Optimizer masters"
    assert hook_lines(caplog) == [f"constraint projection: 4 constrained tensors bound to SGD "
                                  f"({layout})"]


class CopyingWrapper:
    """A layout the hook cannot map: the optimizer steps one flat fp32 tensor of its own and the
    wrapper copies it into the model's parameters after each step (as a sharded data-parallel
    wrapper gathers its shards), like ``--ddp-backend fully_sharded``."""

    def __init__(self, model, lr: float):
        self.params = list(model.parameters())
        self.flat = torch.nn.Parameter(torch.cat([p.detach().flatten() for p in self.params]))
        self.optimizer = torch.optim.SGD([self.flat], lr=lr)

    def step(self):
        self.flat.grad = -torch.ones_like(self.flat)
        self.optimizer.step()
        with torch.no_grad():
            offset = 0
            for p in self.params:
                p.copy_(self.flat[offset:offset + p.numel()].view_as(p))
                offset += p.numel()


def test_weights_trained_through_an_unmapped_layout_stop_the_run(caplog):
    stack = small_stack()
    wrapper = CopyingWrapper(stack, lr=1.0)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        wrapper.step()
        with pytest.raises(OneLineError) as error:
            wrapper.step()
    assert hook_lines(caplog) == ["constraint projection: 0 constrained tensors bound to SGD "
                                  "(none)"]
    message = str(error.value)
    assert "\n" not in message and "--ddp-backend fully_sharded" in message
    assert message.startswith("RecurrentStack directions.0.0.cell.u changed between two steps "
                              "of SGD")


def test_another_optimizer_training_the_model_is_not_blamed_on_a_stranger():
    stack = small_stack()
    own = torch.optim.SGD(stack.parameters(), lr=1.0)
    stranger_weights = torch.nn.Parameter(torch.zeros(5))
    stranger = torch.optim.SGD([stranger_weights], lr=1.0)
    for _ in range(3):
        stranger_weights.grad = torch.ones(5)
        stranger.step()
        push_out(stack.parameters())
        own.step()
    assert bool((stranger_weights == -3).all())
    assert all(spectral_norm(cell.U_s) <= RHO * (1 + 1e-5) for cell in cells(stack))
