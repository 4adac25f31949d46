"""Exact resume: fairseq-train killed with SIGKILL mid-epoch, then the same command again, logs
the same results from the resume point on as a run that was never interrupted, and ends with
bit-identical parameters. Both tasks; the stateful one also restores its carried state (or,
with ``--state-cache``, its cache of block states)."""
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from fairseq_runs import preprocess_lm
from reliability_runs import (num_updates, parameters, results, run_train, train_argv,
                              train_in_process, train_until_killed)

pytestmark = pytest.mark.slow

# an epoch is 24 updates (language_modeling), 84 (durnn_language_modeling) or 82 (--state-cache)
SAVE_EVERY, KILL_AFTER, UPDATES = 4, 10, 20


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return preprocess_lm(tmp_path_factory.mktemp("resume"))


@pytest.mark.parametrize("task", ["language_modeling", "durnn_language_modeling",
                                  "durnn_language_modeling --state-cache"])
def test_sigkill_mid_epoch_then_same_command_resumes_exactly(task, data, tmp_path):
    extra = ["--max-update", UPDATES, "--save-interval-updates", SAVE_EVERY]
    argv = train_argv(data, tmp_path / "run", task, extra)
    with ThreadPoolExecutor(1) as pool:  # the run to kill, beside the uninterrupted reference
        killed = pool.submit(train_until_killed, argv, KILL_AFTER)
        reference = train_in_process(train_argv(data, tmp_path / "reference", task, extra))
        killed.result()

    for checkpoint in (tmp_path / "run").glob("*.pt"):  # whatever the kill interrupted
        assert torch.load(checkpoint)["model"], checkpoint
    last = tmp_path / "run" / "checkpoint_last.pt"
    start = num_updates(last)
    assert SAVE_EVERY <= start < UPDATES and start % SAVE_EVERY == 0
    assert torch.load(last)["extra_state"]["train_iterator"]["iterations_in_epoch"] > 0

    resumed = run_train(argv)
    assert f"(epoch 1 @ {start} updates)" in resumed  # "Loaded checkpoint ... (epoch 1 @ 8 updates)"
    expected = results(reference, after_update=start)
    assert len([r for r in expected if r["kind"] == "train_inner"]) == UPDATES - start
    assert results(resumed, after_update=start) == expected
    final, uninterrupted = parameters(last), parameters(tmp_path / "reference" / "checkpoint_last.pt")
    assert final.keys() == uninterrupted.keys()
    for name in final:
        assert torch.equal(final[name], uninterrupted[name]), name
