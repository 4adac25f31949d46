"""Hostile input: bad options, checkpoints that do not fit, another dictionary, empty lines, too
long lines. Each case runs the real command (a subprocess) and checks the last line it writes to
stderr: one clear line (exit status 2 for the plugin's own errors), never only a traceback from
inside the model; afterwards the checkpoint directory is byte-identical and still loads.

To add a case (another task or model), append a ``Case`` to ``CASES``: ``argv`` receives the
``Paths`` of the module's fixtures (data, other data, a trained checkpoint's directory).
"""
import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List

import pytest
import torch

from torch import nn

from durnn_plugin.errors import OneLineError
from durnn_plugin.models.state_dict_check import CheckpointMismatchError, check_state_dict_fits
from fairseq import checkpoint_utils
from fairseq_runs import PLUGIN, preprocess_lm
from reliability_runs import binarize, run_tool, train_argv, train_in_process


@dataclass
class Paths:
    data: Path  # the checkpoint's data
    other: Path  # another dictionary (more symbols)
    odd: Path  # the checkpoint's dictionary; test: 5 empty lines and one 320-token line
    save: Path  # directory of the trained checkpoint (hidden size 16)

    @property
    def checkpoint(self) -> Path:
        return self.save / "checkpoint_last.pt"


@dataclass
class Case:
    name: str
    tool: str
    argv: Callable[[Paths], List]
    last_line: str  # regular expression for the whole last line of stderr
    status: int = 2
    shows: str = ""  # a regular expression that must also occur in stderr


def train(paths: Paths, *extra, task="language_modeling") -> List:
    return train_argv(paths.data, paths.save, task, ["--max-update", "8", *extra])


def eval_lm(data: Path, paths: Paths, *extra) -> List:
    return [data, "--user-dir", PLUGIN, "--path", paths.checkpoint, "--cpu", "--max-tokens", 300,
            "--num-workers", 0, *extra]


PERPLEXITY = r".*Loss \(base 2\): \d+\.\d+, Perplexity: \d+\.\d+"
CASES = [
    Case("option out of range", "fairseq-train", lambda p: train(p, "--short-rho", 1.2),
         r"fairseq-train: error: invalid --short-rho=1.2: must be in \(0, 1\)"),
    Case("resume with another --hidden-size", "fairseq-train",
         lambda p: train(p, "--hidden-size", 32),
         r"fairseq-train: error: the checkpoint does not fit this model: \S+ is 40x16 in the "
         r"checkpoint but 40x32 here \(and \d+ more\); build the model with the options the "
         r"checkpoint was trained with \(--hidden-size, .*"),
    Case("eval-lm on data with another dictionary", "fairseq-eval-lm",
         lambda p: eval_lm(p.other, p),
         r"fairseq-eval-lm: error: the checkpoint was trained with a dictionary of 40 symbols, "
         r"the data's dictionary has 48 \(decoder\.embed_tokens\.weight\): use the dict\.txt "
         r"the checkpoint was trained with"),
    Case("stateful task: more streams than tokens", "fairseq-train",
         lambda p: train(p, "--batch-size", 5000, task="durnn_language_modeling"),
         r"fairseq-train: error: the split has \d+ tokens, too few for 10000 streams "
         r"\(--batch-size x --stream-groups .*"),
    Case("stateful task: --state-cache with the --stream-groups it replaces", "fairseq-train",
         lambda p: train(p, "--state-cache", task="durnn_language_modeling"),
         r"fairseq-train: error: invalid --state-cache=True: must be only without "
         r"--stream-groups, --shuffle-streams and --state-reset-prob \(it replaces them\)"),
    Case("empty lines (eos-only samples) and a line 5x longer than --tokens-per-sample "
         "(no position limit: scored whole)", "fairseq-eval-lm",
         lambda p: eval_lm(p.odd, p, "--sample-break-mode", "eos", "--tokens-per-sample", 64,
                           "--max-tokens", 1000), PERPLEXITY, status=0,
         shows=r"Evaluated 326 tokens"),  # 5 eos + 320 tokens + eos
]


def digest(directory: Path) -> dict:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in directory.iterdir()}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every case run once (two at a time), with the checkpoint directory's digests around."""
    root = tmp_path_factory.mktemp("hostile")
    data = preprocess_lm(root)
    odd = root / "odd"
    odd.mkdir()
    for split in ("train", "valid", "test"):
        (odd / f"{split}.txt").write_text("\n" * 5 + " ".join(f"w{i % 30}" for i in range(320)))
    other = root / "other"
    other.mkdir()
    for split in ("train", "valid", "test"):
        (other / f"{split}.txt").write_text(" ".join(f"v{i}" for i in range(44)) + "\n")
    paths = Paths(data, binarize(other), binarize(odd, srcdict=data / "dict.txt"), root / "save")
    train_in_process(train_argv(data, paths.save, extra=["--max-update", 4]))
    before = digest(paths.save)
    with ThreadPoolExecutor(2) as pool:
        runs = dict(zip([c.name for c in CASES],
                        pool.map(lambda c: run_tool(c.tool, c.argv(paths)), CASES)))
    return paths, before, runs


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_gives_one_clear_line(case, outcomes):
    paths, _, runs = outcomes
    run = runs[case.name]
    lines = run.stderr.strip().splitlines()
    assert run.returncode == case.status, run.stderr[-3000:]
    assert re.fullmatch(case.last_line, lines[-1]), lines[-1]
    if case.status == 2:
        assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert re.search(case.shows, run.stderr), run.stderr[-3000:]


@pytest.mark.slow
def test_failed_runs_leave_the_checkpoint_byte_identical_and_loadable(outcomes):
    paths, before, _ = outcomes
    assert digest(paths.save) == before
    models, _, _ = checkpoint_utils.load_model_ensemble_and_task([str(paths.checkpoint)])
    assert models[0].decoder.stack.output_size == 16


@pytest.mark.slow
def test_padding_only_and_empty_batches(outcomes):
    """Straight into the model: rows of padding only give finite scores and gradients (and do
    not change the other rows beyond rounding); a batch with no time step is refused in one
    line."""
    paths, _, _ = outcomes
    models, _, task = checkpoint_utils.load_model_ensemble_and_task([str(paths.checkpoint)])
    model, pad = models[0], task.dictionary.pad()
    tokens = torch.tensor([[5, 6, 7], [pad, pad, pad]])
    scores = model(tokens)[0]
    scores.sum().backward()
    assert torch.isfinite(scores).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # the same up to the rounding of a batched matrix product (bit-equal on some CPUs only)
    torch.testing.assert_close(scores[:1], model(tokens[:1])[0], rtol=0, atol=1e-5)
    assert torch.isfinite(model(torch.full((2, 3), pad))[0]).all()
    with pytest.raises(OneLineError, match=r"^the input has no time steps: x is \(0, 2, 8\)"):
        model(torch.zeros(2, 0, dtype=torch.long))


def test_state_dict_check_names_missing_and_extra_tensors():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 3))
    state = model.state_dict()
    with pytest.raises(CheckpointMismatchError, match=r"^the checkpoint lacks 1\.weight \(and 1 "
                       r"more\) of this model; build the model with the options"):
        check_state_dict_fits(model, {k: v for k, v in state.items() if k.startswith("0.")})
    check_state_dict_fits(model, {k: v for k, v in state.items() if k.startswith("0.")},
                          strict=False)
    with pytest.raises(CheckpointMismatchError, match=r"^the checkpoint has 2\.weight, which this "
                       r"model lacks"):
        check_state_dict_fits(model, {**state, "2.weight": state["1.weight"]})
    with pytest.raises(CheckpointMismatchError, match=r"^the checkpoint does not fit this model: "
                       r"0\.weight is 4x2 in the checkpoint but 3x2 here;"):
        check_state_dict_fits(model, {**state, "0.weight": torch.zeros(4, 2)})
