"""``--u-time-steps`` follows the task when not given: fixed when the model is built, kept in
the checkpoint (so evaluating at another length loads the same bound), an explicit value wins."""
from types import SimpleNamespace

import pytest
import torch

from classify_runs import write_pixels
from durnn_plugin.models.s2t_durnn import S2TDuRNNConfig, S2TDuRNNModel
from durnn_plugin.tasks.adding_problem import AddingProblemConfig, AddingProblemTask
from durnn_plugin.tasks.pixel_sequence import PixelSequenceConfig, PixelSequenceTask
from fairseq import checkpoint_utils
from fairseq_runs import TINY_MODEL, preprocess_lm, train_lm
from durnn_plugin.models.durnn_classifier import DuRNNClassifier, DuRNNClassifierConfig
from durnn_plugin.models.time_steps import resolve_time_steps, task_training_length


def u_bounds(model):
    return {cell.u_bound for cell in model.modules() if hasattr(cell, "u_bound")}


def classifier(task, **options):
    cfg = DuRNNClassifierConfig(hidden_size=8, short_size=4, embed_dim=4, num_layers=1, **options)
    return cfg, DuRNNClassifier.build_model(cfg, task)


@pytest.mark.slow
def test_language_model_takes_tokens_per_sample_and_keeps_it_in_the_checkpoint(tmp_path):
    data = preprocess_lm(tmp_path)
    train_lm(data, tmp_path / "ckpt", "durnn_lm", TINY_MODEL, updates=1)  # --tokens-per-sample 64
    checkpoint = str(tmp_path / "ckpt" / "checkpoint_last.pt")
    assert torch.load(checkpoint)["cfg"]["model"]["u_time_steps"] == 64
    [model], cfg, _ = checkpoint_utils.load_model_ensemble_and_task(
        [checkpoint], arg_overrides={"data": str(data), "tokens_per_sample": 16})
    assert cfg.task.tokens_per_sample == 16 and u_bounds(model) == {2.0 ** (1 / 64)}


@pytest.mark.slow
def test_explicit_value_wins(tmp_path):
    data = preprocess_lm(tmp_path)
    train_lm(data, tmp_path / "ckpt", "durnn_lm", TINY_MODEL + ["--u-time-steps", "7"], updates=1)
    assert torch.load(tmp_path / "ckpt" / "checkpoint_last.pt")["cfg"]["model"]["u_time_steps"] == 7


def test_adding_problem_takes_seq_len():
    task = AddingProblemTask.setup_task(AddingProblemConfig(
        seq_len=50, train_size=4, valid_size=4, test_size=4, classification_head_name="h"))
    cfg, model = classifier(task)
    assert cfg.u_time_steps == 50 and u_bounds(model) == {2.0 ** (1 / 50)}


def test_pixel_sequence_takes_the_pixel_count(tmp_path):
    write_pixels(tmp_path, side=5)
    task = PixelSequenceTask.setup_task(PixelSequenceConfig(
        data=str(tmp_path), valid_size=4, classification_head_name="h"))
    cfg, model = classifier(task)
    assert cfg.u_time_steps == 25


def test_sentence_prediction_keeps_the_default():
    task = SimpleNamespace(cfg=SimpleNamespace(max_positions=512))
    cfg = DuRNNClassifierConfig()
    resolve_time_steps(cfg, "u_time_steps", *task_training_length(task))
    assert cfg.u_time_steps is None and cfg.u_bound() == 2.0 ** (1 / 100)


def test_speech_sides_take_the_subsampled_frames_and_the_target_length():
    task = SimpleNamespace(args=SimpleNamespace(max_source_positions=6000,
                                                max_target_positions=1024))
    lengths = S2TDuRNNModel.side_lengths(S2TDuRNNConfig(conv_kernel_sizes="5,5"), task)
    assert lengths["encoder"][0] == 1500 and lengths["decoder"][0] == 1024
