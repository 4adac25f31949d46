"""A checkpoint trained on short segments (stateful task) is evaluated on longer blocks without
losing tokens:
fairseq drops samples longer than model.max_positions(), so a recurrent LM must not report the
training block length as its limit (that once made eval-lm score 62 of 99,518 test tokens)."""
import logging
import re

import pytest

from fairseq import distributed_utils, options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq_cli import eval_lm, train
from fairseq_runs import PLUGIN, TINY_MODEL, preprocess_lm

pytestmark = pytest.mark.slow


def evaluated_tokens(data, checkpoint, tokens_per_sample, caplog) -> int:
    caplog.clear()
    argv = [str(data), "--user-dir", PLUGIN, "--task", "language_modeling",
            "--sample-break-mode", "none", "--tokens-per-sample", str(tokens_per_sample),
            "--context-window", "0", "--cpu", "--path", str(checkpoint), "--gen-subset", "test",
            "--max-tokens", "4096", "--num-workers", "0"]
    with caplog.at_level(logging.INFO):
        eval_lm.main(convert_namespace_to_omegaconf(
            options.parse_args_and_arch(options.get_eval_lm_parser(), argv)))
    counts = [re.search(r"Evaluated ([\d,]+) tokens", r.getMessage()) for r in caplog.records]
    return int([m for m in counts if m][-1].group(1).replace(",", ""))


def test_longer_eval_blocks_score_every_token(tmp_path, caplog):
    data = preprocess_lm(tmp_path)
    argv = [str(data), "--user-dir", PLUGIN, "--task", "durnn_language_modeling", "--cpu",
            "--tokens-per-sample", "8", "--batch-size", "4", "--arch", "durnn_lm", "--u-gamma",
            "1", "--optimizer", "adam", "--lr", "0.01", "--max-update", "2", "--save-dir",
            str(tmp_path / "ckpt"), "--no-progress-bar", "--num-workers", "0"] + TINY_MODEL
    distributed_utils.call_main(convert_namespace_to_omegaconf(
        options.parse_args_and_arch(options.get_training_parser(), argv)), train.main)
    checkpoint = tmp_path / "ckpt" / "checkpoint_last.pt"
    short = evaluated_tokens(data, checkpoint, 8, caplog)
    long = evaluated_tokens(data, checkpoint, 64, caplog)
    assert short == long > 64
