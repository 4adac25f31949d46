"""Stateful training (durnn_language_modeling) with two data-parallel workers resumes exactly:
the checkpoint, which fairseq writes on worker 0 alone, holds each worker's stream positions and
carried state (with --state-cache, each worker's cache), and after a SIGKILL of both workers
(one process per rank) mid-epoch the same commands log the same results from the resume point
on as the run that was never interrupted, and end with bit-identical parameters.

``--load-checkpoint-on-all-dp-ranks``: otherwise fairseq loads the checkpoint on worker 0 and
broadcasts it, configuration included as an omegaconf ``DictConfig``, which the other workers'
``torch.load`` (weights-only by default since torch 2.6) refuses: any resume with several workers
fails so, whatever the task (docs/distributed.md)."""
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from fairseq import options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

import distributed_runs as runs
import reliability_runs as reliability
from fairseq_runs import PLUGIN, preprocess_lm

# an epoch is 40 updates (2 workers x 2 groups x 2 streams of ~165 tokens, 8-token segments)
SAVE_EVERY, KILL_AFTER, UPDATES = 10, 15, 20
MODES = {"stream groups": [], "state cache": ["--state-cache"]}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return preprocess_lm(tmp_path_factory.mktemp("stateful_ddp"))


def command(data, save_dir, mode):
    argv = runs.family_argv("durnn_lm stateful", data)
    if mode == "state cache":  # it replaces the stream groups
        i = argv.index("--stream-groups")
        argv[i:i + 2] = ["--state-cache"]
    return argv + ["--user-dir", PLUGIN, "--save-dir", save_dir, "--max-update", UPDATES,
                   "--save-interval-updates", SAVE_EVERY, "--load-checkpoint-on-all-dp-ranks"
                   ] + runs.SGD + runs.TWO_WORKERS


def saved_workers(checkpoint):
    return torch.load(checkpoint)["extra_state"]["DuRNNLanguageModelingTask"]["workers"]


def test_checkpoint_entries_per_worker_and_the_earlier_single_entry_format(data, caplog):
    """In one process: the task's checkpoint dict has one entry per worker; a checkpoint of the
    earlier format (one worker's ``shard``, ``train``, ``cache``) still restores that worker;
    one written by another number of workers restores nothing, with a warning."""
    def task_after_a_batch(train):
        argv = [str(a) for a in command(data, "unused", "stream groups")]
        cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(
            options.get_training_parser(), argv))
        task = tasks.setup_task(cfg.task)
        task.load_dataset("train")
        torch.manual_seed(0)
        model, criterion = task.build_model(cfg.model), task.build_criterion(cfg.criterion)
        batch = next(task.get_batch_iterator(task.dataset("train"), max_sentences=2)
                     .next_epoch_itr(shuffle=False))
        if train:
            task.train_step(batch, model, criterion, Backward(), 0)
        return task

    saved = task_after_a_batch(True).get_checkpoint_dict()["DuRNNLanguageModelingTask"]
    assert len(saved["workers"]) == 1 and saved["workers"][0]["train"]["groups"][0][1] == 1
    earlier = {"shard": [1, 0], **saved["workers"][0]}
    for checkpoint in (saved, earlier):
        task = task_after_a_batch(False)
        task.set_checkpoint_dict(checkpoint)
        restored = task.carriers["train"].box_for(1, 0).state
        assert torch.equal(restored[0][1], saved["workers"][0]["train"]["groups"][0][2][0][1])
    task = task_after_a_batch(False)
    task.set_checkpoint_dict({"workers": saved["workers"] * 2})
    assert task.carriers["train"].box_for(1, 0).state is None
    assert "training state of 2 data-parallel workers and this run has 1" in caplog.text


class Backward:
    def backward(self, loss):
        loss.backward()


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
def test_two_workers_sigkilled_mid_epoch_resume_exactly(data, mode, tmp_path):
    argv = command(data, tmp_path / "run", mode)
    with ThreadPoolExecutor(1) as pool:  # the run to kill, beside the uninterrupted reference
        killed = pool.submit(runs.kill_after, runs.by_hand(argv, tmp_path), KILL_AFTER)
        reference = runs.finish(runs.by_hand(command(data, tmp_path / "reference", mode), tmp_path))
        killed.result()

    last = tmp_path / "run" / "checkpoint_last.pt"
    start = reliability.num_updates(last)
    assert start == SAVE_EVERY
    workers = saved_workers(last)
    assert len(workers) == 2
    if mode == "state cache":  # each worker's cache: 2 blocks per update
        assert [int(w["cache"]["filled"].sum()) for w in workers] == [2 * SAVE_EVERY] * 2
        states = [w["cache"]["states"][0][1] for w in workers]
    else:  # 10 batches: segments 0-4 of groups 0 and 1, states of 2 streams each
        assert [[g[:2] for g in w["train"]["groups"]] for w in workers] == [[(0, 5), (1, 5)]] * 2
        states = [w["train"]["groups"][0][2][0][1] for w in workers]
    assert not torch.equal(states[0], states[1])  # each worker's own, not worker 0's twice

    resumed = runs.finish(runs.by_hand(argv, tmp_path))
    assert f"(epoch 1 @ {start} updates)" in resumed
    expected = reliability.results(runs.fairseq_format(reference), after_update=start)
    assert len([r for r in expected if r["kind"] == "train_inner"]) == UPDATES - start
    assert reliability.results(runs.fairseq_format(resumed), after_update=start) == expected
    final = reliability.parameters(last)
    uninterrupted = reliability.parameters(tmp_path / "reference" / "checkpoint_last.pt")
    for name in uninterrupted:
        assert torch.equal(final[name], uninterrupted[name]), name
