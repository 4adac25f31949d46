"""s2t_durnn and durnn through fairseq's own train / generate, on tiny generated data."""
import re

import logging

import pytest

from durnn_plugin.modules import InvalidOptionError

from fairseq_runs import run_cli
from seq2seq_runs import (COMMON, TRAIN, generate_cli, preprocess_translation, train_cli,
                          write_speech_data)

pytestmark = pytest.mark.slow

SMALL = ["--encoder-hidden-size", "64", "--decoder-hidden-size", "64",
         "--encoder-embed-dim", "32", "--decoder-embed-dim", "32", "--lr", "0.01",
         "--no-epoch-checkpoints"]


def hypotheses(generate_output: str) -> int:
    return sum(line.startswith("H-") for line in generate_output.splitlines())


def test_translation_learns_to_reverse(tmp_path):
    data = preprocess_translation(tmp_path)
    train_cli([data, "--task", "translation", "--arch", "durnn_s", *COMMON, *TRAIN, *SMALL,
               "--max-tokens", "1000", "--max-update", "60", "--save-dir", tmp_path / "ckpt"])
    out = generate_cli([data, "--task", "translation", "--path", tmp_path / "ckpt/checkpoint_last.pt",
                        *COMMON, "--max-tokens", "5000", "--beam", "4"], tmp_path / "gen")
    assert hypotheses(out) == 20
    bleu = float(re.search(r"BLEU4 = ([0-9.]+)", out).group(1))
    assert bleu > 50, out[-1500:]  # target = source words mapped and reversed (untrained: ~0)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return write_speech_data(tmp_path_factory.mktemp("s2t"))


def test_speech_to_text_trains_and_decodes(speech, tmp_path):
    save = tmp_path / "ckpt"
    train_cli([speech, "--task", "speech_to_text", "--config-yaml", "config.yaml",
               "--train-subset", "train", "--valid-subset", "valid", "--arch", "s2t_durnn_s",
               *COMMON, *TRAIN, *SMALL, "--encoder-num-layers", "2", "--conv-channels", "64",
               "--max-tokens", "2000", "--max-update", "30", "--save-dir", save])
    gen = ["--task", "speech_to_text", "--config-yaml", "config.yaml", *COMMON,
           "--max-tokens", "5000", "--beam", "5", "--scoring", "wer"]
    out = generate_cli([speech, "--path", save / "checkpoint_last.pt", *gen], tmp_path / "gen")
    assert hypotheses(out) == 16
    wer = float(re.search(r"Generate test with beam=5: WER: ([0-9.]+)", out).group(1))
    assert wer < 80, out[-2000:]  # 8 words, each with its own pattern of frames
    # the command-line tool in a fresh process (checkpoint loaded by torch's default loader)
    cli = run_cli("fairseq-generate", [speech, "--path", save / "checkpoint_last.pt", *gen])
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert f"WER: {wer:.2f}" in cli.stdout


def test_invalid_option_names_the_prefixed_flag(speech, tmp_path):
    with pytest.raises(InvalidOptionError, match=r"^invalid --decoder-short-rho=2.0: must be in \(0, 1\)$"):
        train_cli([speech, "--task", "speech_to_text", "--arch", "s2t_durnn_s", *COMMON,
                   "--decoder-short-rho", "2", "--max-tokens", "2000", "--max-update", "1",
                   "--save-dir", tmp_path])


CTC = ["--encoder-ctc", "--criterion", "label_smoothed_cross_entropy_with_ctc", "--ctc-weight",
       "0.5"]


def test_speech_with_ctc_output_trains_and_decodes(speech, tmp_path, caplog):
    """--encoder-ctc with fairseq's CTC criterion: the CTC loss is logged and falls, and the
    checkpoint decodes with the decoder alone."""
    save = tmp_path / "ckpt"
    # fairseq's progress lines come from its "fairseq.logging.progress_bar" logger
    with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger="fairseq"):
        train_cli([speech, "--task", "durnn_speech_to_text", "--config-yaml", "config.yaml",
                   "--train-subset", "train", "--valid-subset", "valid", "--arch", "s2t_durnn_s",
                   *COMMON, *TRAIN, *SMALL, *CTC, "--encoder-num-layers", "2", "--conv-channels",
                   "64", "--max-tokens", "2000", "--max-update", "30", "--save-dir", save,
                   "--log-format", "json"])
    ctc = [float(v) for v in re.findall(r'"update": [0-9.]+, "loss": "[0-9.]+", '
                                        r'"nll_loss": "[0-9.]+", "ctc_loss": "([0-9.]+)"',
                                        caplog.text)]
    # the first and the last epoch (3 batches each), so the same batches are compared
    assert len(ctc) == 30 and sum(ctc[-3:]) < 0.8 * sum(ctc[:3]), ctc
    out = generate_cli([speech, "--path", save / "checkpoint_last.pt", "--task",
                        "durnn_speech_to_text", "--config-yaml", "config.yaml", *COMMON,
                        "--max-tokens", "5000", "--beam", "5"], tmp_path / "gen")
    assert hypotheses(out) == 16


@pytest.mark.parametrize("options, message", [
    (CTC[1:], r"^invalid --ctc-weight=0.5: must be 0 for a model without a CTC output"),
    (CTC[:1], r"^invalid --criterion=label_smoothed_cross_entropy: must be durnn_ctc, or "
              r"label_smoothed_cross_entropy_with_ctc"),
])
def test_ctc_criterion_and_ctc_output_go_together(speech, tmp_path, options, message):
    with pytest.raises(InvalidOptionError, match=message):
        train_cli([speech, "--task", "durnn_speech_to_text", "--config-yaml", "config.yaml",
                   "--train-subset", "train", "--valid-subset", "valid", "--arch",
                   "s2t_durnn_s", *COMMON, *TRAIN, *SMALL, *options, "--max-tokens", "2000",
                   "--max-update", "1", "--save-dir", tmp_path])
