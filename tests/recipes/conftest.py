"""Fixtures of the speech recipe tests: a tiny synthetic corpus, and a recogniser trained on it,
built once per test module that asks for them."""
import pytest
import speech_runs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return speech_runs.make_corpus(tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="module")
def checkpoint(data, tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("ckpt")
    speech_runs.train(data, save_dir)
    return save_dir / "checkpoint_last.pt"
