"""Every model family under data parallelism: two CPU workers started by fairseq's own spawn
(which unpickles each family's configuration in the workers) train as one process that takes
the same batches per update: ``--update-freq 2`` (see test_distributed.py), or for the
stateful task, whose workers each own their streams, twice the streams per batch. durnn_lm with
language_modeling is test_distributed.py's spawn test."""
import pytest

import distributed_runs as runs
import reliability_runs as reliability
from classify_runs import write_topics
from fairseq_runs import PLUGIN, preprocess_lm
from seq2seq_runs import preprocess_translation, write_speech_data

pytestmark = pytest.mark.slow

UPDATES = 3
DATA = {"durnn_lm stateful": preprocess_lm, "durnn": preprocess_translation,
        "s2t_durnn": lambda folder: write_speech_data(folder, n_train=24),
        "durnn_classifier": write_topics}


@pytest.mark.parametrize("family", list(DATA))
def test_two_spawned_workers_equal_one_process(family, tmp_path):
    (tmp_path / "data").mkdir()
    data = DATA[family](tmp_path / "data")

    def argv(save_dir, extra):
        return (runs.family_argv(family, data) + ["--user-dir", PLUGIN, "--max-update", UPDATES,
                                                  "--save-dir", save_dir] + runs.SGD + extra)

    two_workers = runs.spawn(argv(tmp_path / "two", runs.TWO_WORKERS), tmp_path)
    single = reliability.train_in_process(  # meanwhile
        argv(tmp_path / "one", runs.one_process_equivalent(family)))
    log = runs.finish(two_workers)

    assert "distributed init (rank 1)" in log
    two, one = ([(r["num_updates"], r["bsz"], r["wpb"], r["loss"])
                 for r in reliability.results(runs.fairseq_format(text))
                 if r["kind"] == "train_inner"] for text in (log, single))
    assert len(two) == UPDATES and two == one  # the same batches, the same logged losses
    ddp, ref = (reliability.parameters(tmp_path / d / "checkpoint_last.pt") for d in ("two", "one"))
    assert ddp.keys() == ref.keys()
    for name in ref:
        assert (ddp[name] - ref[name]).abs().max() <= runs.TOLERANCE, name
