"""fairseq's launch paths for data-parallel training, each with two CPU workers (gloo,
legacy_ddp), end with the parameters of one process that accumulates the same two batches per
update: one process per rank started by hand (``--distributed-no-spawn``), fairseq's own spawn
(its default single-node launch), torchrun, and fairseq-hydra-train with a YAML of configs/. The
spawn that would start no worker is refused in one line.

Equivalence: with W workers fairseq deals the epoch's (shuffled) batch list round-robin, worker
r taking batches r, r + W, ...; an update sums the W workers' gradients and divides by the total
token count. One process with ``--update-freq W`` groups batches (kW, ..., kW + W - 1) into
update k and divides by the same count: the same update. The optimiser here is plain SGD
(``nag --momentum 0``), whose step is linear in the gradient, so the difference measures the
gradient's rounding (Adam's first steps are about ``lr·sign(g)`` and would magnify it).
"""
import os
import subprocess
import sys

import pytest

import distributed_runs as runs
import reliability_runs as reliability
from fairseq_runs import PLUGIN, REPO, preprocess_lm, run_cli

pytestmark = pytest.mark.slow

UPDATES = 4
SGD = ["--optimizer", "nag", "--momentum", "0", "--lr", "0.2", "--max-update", UPDATES]
# TOLERANCE (distributed_runs): max |Δθ| measured 0 for each launch here (docs/distributed.md)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return preprocess_lm(tmp_path_factory.mktemp("ddp"))


def lm_argv(data, save_dir, extra=()):
    return reliability.train_argv(data, save_dir, extra=SGD + list(extra))


@pytest.fixture(scope="module")
def single(data, tmp_path_factory):
    """One process with --update-freq 2: its log and final parameters."""
    save_dir = tmp_path_factory.mktemp("single")
    log = reliability.train_in_process(lm_argv(data, save_dir, ["--update-freq", 2]))
    return log, reliability.parameters(save_dir / "checkpoint_last.pt")


def assert_trained_as_one_process(log, save_dir, single):
    """Both workers trained (the same batches per update as the single process, the same
    logged losses) and the parameters are those of the single process."""
    two = [r for r in reliability.results(runs.fairseq_format(log)) if r["kind"] == "train_inner"]
    one = [r for r in reliability.results(single[0]) if r["kind"] == "train_inner"]
    assert len(two) == UPDATES
    assert [(r["num_updates"], r["bsz"], r["wpb"]) for r in two] == \
        [(r["num_updates"], r["bsz"], r["wpb"]) for r in one]
    assert [r["loss"] for r in two] == [r["loss"] for r in one]  # logged with 3 decimals
    ddp = reliability.parameters(save_dir / "checkpoint_last.pt")
    for name, reference in single[1].items():
        assert (ddp[name] - reference).abs().max() <= runs.TOLERANCE, name


def test_two_processes_by_hand_equal_one_process_with_update_freq_2(data, single, tmp_path):
    ranks = runs.by_hand(lm_argv(data, tmp_path, runs.TWO_WORKERS), tmp_path)
    log = runs.finish(ranks)
    assert_trained_as_one_process(log, tmp_path, single)


def test_spawn_from_another_directory_runs_a_copy_of_the_plugin(data, single, tmp_path):
    """fairseq's default launch (torch.multiprocessing.spawn), as a user would start it: from
    another working directory, with an absolute --user-dir naming a copy of the plugin under
    another folder name; the installed package cannot be imported (it would fail)."""
    trace = tmp_path / "imports.txt"
    copy = runs.plugin_copy(tmp_path / "x", trace)
    argv = [str(copy) if a == PLUGIN else a for a in lm_argv(data, tmp_path / "save")]
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    shadow = {"PYTHONPATH": str(tmp_path / "x" / "shadow")}
    log = runs.finish(runs.spawn(argv + runs.TWO_WORKERS, cwd, env=shadow))

    assert "distributed init (rank 1)" in log
    imports = [line.split() for line in trace.read_text().splitlines()]
    assert len({pid for pid, _, _ in imports}) == 3  # the launcher and both workers
    assert {(name, path) for _, name, path in imports} == {("my_durnn", str(copy / "__init__.py"))}
    assert_trained_as_one_process(log, tmp_path / "save", single)


def test_the_copy_test_fails_if_the_installed_package_is_imported(tmp_path):
    copy = runs.plugin_copy(tmp_path, tmp_path / "imports.txt")
    shadowed = subprocess.run([sys.executable, "-c", "import durnn_plugin"], text=True,
                              capture_output=True, cwd=tmp_path,
                              env=dict(os.environ, PYTHONPATH=str(tmp_path / "shadow")))
    assert "the installed durnn_plugin was imported instead of the copy" in shadowed.stderr
    assert copy.name == "my_durnn"


def test_torchrun_equals_one_process(data, single, tmp_path):
    log = runs.finish(runs.torchrun(lm_argv(data, tmp_path) + runs.TWO_WORKERS, tmp_path))
    assert "distributed init (rank 1): env://" in log
    assert_trained_as_one_process(log, tmp_path, single)


def test_hydra_train_with_two_workers_equals_one_process(data, tmp_path):
    """configs/durnn_lm.yaml from another directory, as a tiny model trained with plain SGD:
    two spawned workers, then one process with update_freq [2]."""
    overrides = [
        "--config-dir", REPO / "configs", "--config-name", "durnn_lm", f"task.data={data}",
        "model.hidden_size=16", "+model.short_size=4", "model.embed_dim=8", "model.dropout=0",
        "model.embed_dropout=0", "task.sample_break_mode=eos", "task.tokens_per_sample=64",
        "dataset.max_tokens=64", "dataset.num_workers=0", "common.cpu=true",
        "common.log_format=json", "common.log_interval=1", f"optimization.max_update={UPDATES}",
        "~optimizer.adam_betas", "optimizer._name=nag", "+optimizer.momentum=0",
        "optimization.lr=[0.2]"]
    two_workers = [*overrides, f"checkpoint.save_dir={tmp_path / 'two'}",
                   "distributed_training.distributed_world_size=2",
                   "distributed_training.distributed_backend=gloo",
                   "distributed_training.ddp_backend=legacy_ddp"]
    one = runs.start([runs.BIN / "fairseq-hydra-train", *overrides, "optimization.update_freq=[2]",
                      f"checkpoint.save_dir={tmp_path / 'one'}"], tmp_path, devices=0)
    logs = [runs.finish(runs.spawn(two_workers, tmp_path, "hydra_train")), runs.finish(one)]

    assert "distributed init (rank 1)" in logs[0]
    two, one = ([r for r in reliability.results(runs.fairseq_format(log))
                 if r["kind"] == "train_inner"] for log in logs)
    assert len(two) == UPDATES
    assert [(r["num_updates"], r["bsz"], r["wpb"], r["loss"]) for r in two] == \
        [(r["num_updates"], r["bsz"], r["wpb"], r["loss"]) for r in one]
    two, one = (reliability.parameters(tmp_path / d / "checkpoint_last.pt") for d in ("two", "one"))
    for name in one:
        assert (two[name] - one[name]).abs().max() <= runs.TOLERANCE, name


def test_a_spawn_of_no_worker_is_refused_in_one_line(data, tmp_path):
    """Without CUDA devices fairseq would spawn min(0, 2) = 0 workers and exit 0."""
    argv = lm_argv(data, tmp_path) + ["--distributed-world-size", 2,
                                      "--distributed-init-method", "tcp://127.0.0.1:1"]
    result = run_cli("fairseq-train", argv)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "fairseq-train: error: --distributed-world-size 2 with --distributed-init-method and "
        "without --distributed-no-spawn makes fairseq spawn min(torch.cuda.device_count(), 2) "
        "= 0 workers on this host (it has no CUDA device) and exit without training: start one "
        "process per rank with --distributed-no-spawn --distributed-rank R, or use torchrun "
        "(docs/distributed.md)")
    assert not list(tmp_path.iterdir())
