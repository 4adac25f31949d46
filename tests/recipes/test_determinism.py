"""Same seed, same CPU, same result: two fairseq-train runs (dropout on) give bit-identical
parameters and logged results; another seed does not. DURNN_DETERMINISTIC=1 switches torch to
deterministic kernels, and the model trains under it."""
import importlib.util
import os

import pytest
import torch

from durnn_plugin import determinism
from durnn_plugin.errors import OneLineError
from fairseq_runs import REPO, preprocess_lm
from reliability_runs import parameters, results, train_argv, train_in_process

pytestmark = pytest.mark.slow

DROPOUT = ["--max-update", 6, "--dropout", 0.3, "--embed-dropout", 0.2, "--layer-dropout", 0.2]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return preprocess_lm(tmp_path_factory.mktemp("determinism"))


def run(data, save, seed=1):
    log = train_in_process(train_argv(data, save, extra=DROPOUT + ["--seed", seed]))
    return results(log), parameters(save / "checkpoint_last.pt")


def test_same_seed_gives_bit_identical_parameters_and_losses(data, tmp_path):
    logs_a, a = run(data, tmp_path / "a")
    logs_b, b = run(data, tmp_path / "b")
    assert len([r for r in logs_a if r["kind"] == "train_inner"]) == 6
    assert logs_a == logs_b
    assert all(torch.equal(a[k], b[k]) for k in a)
    _, c = run(data, tmp_path / "c", seed=2)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.fixture
def deterministic_mode(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    yield
    torch.use_deterministic_algorithms(before[0])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1:]


def test_deterministic_switch(deterministic_mode, data, tmp_path):
    assert not determinism.apply_from_environment({})
    assert not determinism.apply_from_environment({"DURNN_DETERMINISTIC": "0"})
    assert not torch.are_deterministic_algorithms_enabled()
    with pytest.raises(OneLineError, match=r"^DURNN_DETERMINISTIC='yes': must be 0 or 1$"):
        determinism.apply_from_environment({"DURNN_DETERMINISTIC": "yes"})
    assert determinism.apply_from_environment({"DURNN_DETERMINISTIC": "1"})
    assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    # bidirectional and dilated stacks (gather), adaptive softmax: no op refuses to run
    log = train_in_process(train_argv(data, tmp_path, extra=[
        "--max-update", 2, "--bidirectional", "--dilations", "1,2", "--criterion",
        "adaptive_loss", "--adaptive-softmax-cutoff", "10,20", "--ddp-backend", "legacy_ddp"]))
    assert len([r for r in results(log) if r["kind"] == "train_inner"]) == 2


def test_determinism_script_compares_two_runs_per_mode(tmp_path, monkeypatch):
    """examples/reliability/determinism.py (recorded on a GPU in examples/reliability/README.md) on the CPU: two
    fairseq-train runs per mode, parameters bit-identical, equal last losses."""
    script_path = REPO / "examples" / "reliability" / "determinism.py"
    monkeypatch.syspath_prepend(str(script_path.parent))  # it imports mixed_precision beside it
    spec = importlib.util.spec_from_file_location("determinism_script", script_path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rows = script.main(["--cpu", "--updates", "2", "--hidden-size", "16", "--work", str(tmp_path)])
    assert [r["mode"] for r in rows] == ["default", "DURNN_DETERMINISTIC=1"]
    for r in rows:
        assert r["identical"] and r["max_diff"] == 0 and r["losses"][0] == r["losses"][1], r
