"""The recurrent bounds hold after every optimiser update for the tensors the optimiser owns.

Through fairseq's own ``Trainer`` (fp32, and ``common.bf16=true`` with fp32 masters, which runs
on the CPU), with a learning rate high enough to push ``u`` and ``U_s`` out of their sets at
every step; the flat fp16 master layout (CUDA-only in fairseq) is checked on a buffer built the
way ``FP16Optimizer`` builds it. Also: the model validated is the model saved, bit for bit, and
a bf16 resume keeps the bounds and tracks the uninterrupted run.
"""
import pytest
import torch

from fairseq import checkpoint_utils, options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.trainer import Trainer

from fairseq_runs import PLUGIN, preprocess_lm
from durnn_plugin.modules import RecurrentStack, StackOptions
from durnn_plugin.modules.constraints import spectral_norm
from durnn_plugin.modules.durnn_cell import DuRNNCell

GAMMA, STEPS, RHO = 2.0, 100, 0.9
U_BOUND = GAMMA ** (1 / STEPS)
BF16_ULP = 2 ** -7  # relative spacing of bf16 numbers near 1


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return preprocess_lm(tmp_path_factory.mktemp("projection"))


def build_trainer(data, save_dir, bf16: bool = False, lr: float = 0.02):
    argv = [str(data), "--user-dir", PLUGIN, "--task", "language_modeling", "--arch", "durnn_lm",
            "--hidden-size", "64", "--short-size", "16", "--embed-dim", "16", "--num-layers", "2",
            "--u-gamma", str(GAMMA), "--u-time-steps", str(STEPS), "--short-rho", str(RHO),
            "--tokens-per-sample", "32", "--sample-break-mode", "none", "--max-tokens", "64",
            "--optimizer", "adam", "--lr", str(lr), "--dropout", "0", "--embed-dropout", "0",
            "--seed", "1", "--cpu", "--num-workers", "0", "--save-dir", str(save_dir)]
    cfg = convert_namespace_to_omegaconf(
        options.parse_args_and_arch(options.get_training_parser(), argv))
    cfg.common.bf16 = bf16
    torch.manual_seed(1)  # the same initial weights for every trainer
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    task.load_dataset("valid")
    model, criterion = task.build_model(cfg.model), task.build_criterion(cfg.criterion)
    return cfg, task, Trainer(cfg, task, model, criterion)


def batches(trainer, count: int):
    """The first ``count`` training batches, epoch after epoch, in a fixed order."""
    found, epoch = [], 1
    while len(found) < count:
        found += list(trainer.get_train_iterator(epoch=epoch).next_epoch_itr(shuffle=False))
        epoch += 1
    return found[:count]


def optimiser_tensors(trainer):
    """Name -> every tensor the optimiser updates for the constrained weights: the parameter,
    and under bf16 its fp32 master."""
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    masters = getattr(trainer.optimizer, "fp32_params", None)
    found = {}
    for index, (name, p) in enumerate((n, p) for n, p in trainer.model.named_parameters()
                                      if p.requires_grad):
        if name.endswith(".u") or name.endswith(".U_s"):
            found[name] = [p.detach()] + ([masters[index].detach()] if masters else [])
            assert masters is None or masters[index].shape == params[index].shape
    return found


def assert_within_bounds(trainer, slack: float, update: int):
    found = optimiser_tensors(trainer)
    assert any(n.endswith(".U_s") for n in found) and any(n.endswith(".u") for n in found)
    for name, tensors in found.items():
        for tensor in tensors:
            if name.endswith(".u"):
                worst = tensor.float().abs().max().item()
                assert worst <= U_BOUND * (1 + slack), (update, name, tensor.dtype, worst)
            else:
                sigma = spectral_norm(tensor).item()
                assert sigma <= RHO * (1 + slack), (update, name, tensor.dtype, sigma)


@pytest.mark.slow
@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16-with-fp32-masters"])
def test_every_update_leaves_masters_and_parameters_within_bounds(data, tmp_path, bf16):
    _, task, trainer = build_trainer(data, tmp_path, bf16=bf16, lr=0.1)
    assert (getattr(trainer.optimizer, "fp32_params", None) is not None) == bf16
    pushed = False
    for update, sample in enumerate(batches(trainer, 25), 1):
        trainer.train_step([sample])
        # the fp32 tensors are exact; a bf16 copy may round one step past 2^(1/100) or 0.9
        assert_within_bounds(trainer, slack=BF16_ULP if bf16 else 1e-5, update=update)
        u = torch.cat([p.detach().float().abs().flatten() for n, p in trainer.model.named_parameters()
                       if n.endswith(".u")])
        pushed = pushed or bool((u >= U_BOUND * (1 - BF16_ULP)).any())
    assert pushed, "the learning rate never drove u to its bound: the test would prove nothing"


def test_flat_fp16_masters_are_projected():
    """fairseq's ``--fp16`` keeps one flat fp32 buffer of every trainable parameter in
    ``model.parameters()`` order; the optimizer steps that buffer."""
    stack = RecurrentStack(StackOptions(num_layers=2, hidden_size=24, short_size=8,
                                        u_gamma=GAMMA, u_time_steps=STEPS, short_rho=RHO), 6)
    stack.half()
    params = [p for p in stack.parameters() if p.requires_grad]
    flat = torch.nn.Parameter(torch.cat([p.data.float().flatten() for p in params]))
    optimizer = torch.optim.SGD([flat], lr=1.0)
    for _ in range(3):
        flat.grad = -torch.ones_like(flat)  # every weight grows by 1: far outside both sets
        optimizer.step()
        offset = 0
        for p in params:  # FP16Optimizer._sync_fp32_params_to_fp16
            p.data.copy_(flat.data[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
    cells = [m for m in stack.modules() if isinstance(m, DuRNNCell)]
    assert len(cells) == 2
    for cell in cells:
        assert cell.u.float().abs().max() <= U_BOUND * (1 + 2 ** -10)  # fp16 rounding
        assert spectral_norm(cell.U_s) <= RHO * (1 + 2 ** -9)


def test_optimizer_of_another_model_is_left_alone():
    """Masters whose values are not this model's are not bound (the layout check)."""
    stack = RecurrentStack(StackOptions(num_layers=1, hidden_size=8, short_size=4), 3)
    stack.bfloat16()
    strangers = [torch.nn.Parameter(torch.full(p.shape, 5.0)) for p in stack.parameters()]
    optimizer = torch.optim.SGD(strangers, lr=0.0)
    optimizer.step()
    assert all(bool((s == 5.0).all()) for s in strangers)


def eval_loss(trainer, task, model):
    sample = next(iter(task.get_batch_iterator(task.dataset("valid"), max_tokens=64)
                       .next_epoch_itr(shuffle=False)))
    model.eval()
    with torch.no_grad():
        return model(**sample["net_input"])[0]


@pytest.mark.slow
def test_model_validated_equals_model_saved(data, tmp_path):
    """Right after an update (before the next train_step), validation's forward and the saved
    checkpoint's forward agree bit for bit (fp32)."""
    cfg, task, trainer = build_trainer(data, tmp_path)
    for sample in batches(trainer, 8):
        trainer.train_step([sample])
    validated = eval_loss(trainer, task, trainer.model)
    trainer.consolidate_optimizer()
    trainer.save_checkpoint(str(tmp_path / "checkpoint.pt"), {})
    [loaded], _, _ = checkpoint_utils.load_model_ensemble_and_task(
        [str(tmp_path / "checkpoint.pt")], arg_overrides={"data": str(data)})
    assert torch.equal(eval_loss(trainer, task, loaded), validated)
    state = torch.load(tmp_path / "checkpoint.pt")["model"]
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(state[name], value), name


@pytest.mark.slow
def test_bf16_resume_keeps_bounds_and_tracks_the_uninterrupted_run(data, tmp_path):
    """Under bf16 fairseq saves no masters and rebuilds them from the bf16 weights on load, so a
    resume is not bit-exact; it keeps the bounds, and its losses stay within 0.05 bits per
    token (fairseq logs base-2 losses) of the uninterrupted run's."""
    updates, cut = 12, 6
    _, task, reference = build_trainer(data, tmp_path / "reference", bf16=True)
    samples = batches(reference, updates)
    expected = [reference.train_step([sample])["loss"] for sample in samples]
    _, task, first = build_trainer(data, tmp_path / "first", bf16=True)
    for sample in samples[:cut]:
        first.train_step([sample])
    first.consolidate_optimizer()
    first.save_checkpoint(str(tmp_path / "checkpoint.pt"), {})
    _, task, resumed = build_trainer(data, tmp_path / "resumed", bf16=True)
    resumed.load_checkpoint(str(tmp_path / "checkpoint.pt"))
    losses = []
    for update, sample in enumerate(samples[cut:], cut + 1):
        losses.append(resumed.train_step([sample])["loss"])
        assert_within_bounds(resumed, slack=BF16_ULP, update=update)
    difference = max(abs(a - b) for a, b in zip(losses, expected[cut:]))
    assert difference < 0.05, (losses, expected[cut:])
