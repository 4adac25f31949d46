"""The streaming CTC recogniser's recipe on the tiny synthetic corpus: global CMVN files, and
``s2t_durnn_ctc_s`` trained by fairseq-train with ``durnn_ctc``."""
import logging
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from fairseq import checkpoint_utils, distributed_utils, options
from fairseq.data.audio.data_cfg import S2TDataConfig
from fairseq.data.audio.feature_transforms import CompositeAudioFeatureTransform
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq_cli import train as train_cli

import speech_runs
from fairseq_runs import REPO
from durnn_plugin.models.s2t_durnn_ctc import S2TDuRNNCTCModel

pytestmark = pytest.mark.skipif(bool(speech_runs.prepare_speech.synthesize.missing_tools()),
                                reason="needs flite, espeak-ng and sox (apt-get)")

from examples.speech_recognition import features  # noqa: E402

TINY_CTC = ["--arch", "s2t_durnn_ctc_s", "--encoder-num-layers", "2", "--encoder-hidden-size",
            "32", "--encoder-short-size", "8", "--encoder-embed-dim", "32", "--conv-channels",
            "32", "--encoder-dilations", "1,2"]
CTC = ["--criterion", "durnn_ctc", "--config-yaml", "config_gcmvn.yaml"]


def train_frames(data):
    rows = features.read_manifest(str(data / "train.tsv"))
    return np.concatenate([np.load(data / row["audio"]) for row in rows]).astype(np.float64)


def test_gcmvn_files_of_a_new_data_directory(data, tmp_path, monkeypatch):
    """prepare_speech writes gcmvn.npz (every train frame's mean and std) and
    config_gcmvn.yaml, which fairseq's global_cmvn transform reads from any directory."""
    stats = np.load(data / "gcmvn.npz")
    frames = train_frames(data)
    assert stats["mean"].dtype == stats["std"].dtype == np.float32
    np.testing.assert_allclose(stats["mean"], frames.mean(0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(stats["std"], frames.std(0), rtol=1e-5, atol=1e-4)
    config = yaml.safe_load((data / "config_gcmvn.yaml").read_text())
    original = yaml.safe_load((data / "config.yaml").read_text())
    assert config["feature_transforms"] == {"*": ["global_cmvn"],
                                            "_train": ["global_cmvn", "specaugment"]}
    assert {k: v for k, v in config.items() if k not in ("feature_transforms", "global_cmvn")} \
        == {k: v for k, v in original.items() if k != "feature_transforms"}
    monkeypatch.chdir(tmp_path)
    transform = CompositeAudioFeatureTransform.from_config_dict(
        S2TDataConfig(data / "config_gcmvn.yaml").get_feature_transforms("dev", False))
    row = features.read_manifest(str(data / "dev.tsv"))[0]
    x = np.load(data / row["audio"])
    y = transform(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, (x - stats["mean"]) / stats["std"], rtol=1e-6)


def test_gcmvn_command_on_an_existing_data_directory(data, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    for name in ("config.yaml", "train.tsv"):
        shutil.copy(data / name, old / name)  # audio_root: the fixture's directory
    run = subprocess.run([sys.executable, "-m", "examples.speech_recognition.features", "gcmvn",
                          str(old)], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout == f"global CMVN: {old / 'config_gcmvn.yaml'}\n"
    for key in ("mean", "std"):
        np.testing.assert_array_equal(np.load(old / "gcmvn.npz")[key],
                                      np.load(data / "gcmvn.npz")[key])
    config = yaml.safe_load((old / "config_gcmvn.yaml").read_text())
    assert config["global_cmvn"] == {"stats_npz_path": str(old / "gcmvn.npz")}
    missing = subprocess.run([sys.executable, "-m", "examples.speech_recognition.features",
                              "gcmvn", str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert missing.returncode == 2
    assert missing.stderr.splitlines()[-1].endswith(f"{tmp_path}: no config.yaml; DATA must be "
                                                    "a data directory written by "
                                                    "prepare_speech.py")


def test_ctc_model_trains_and_its_checkpoint_streams(data, tmp_path, caplog):
    """fairseq-train --arch s2t_durnn_ctc_s --criterion durnn_ctc on global CMVN features logs
    the greedy WER in validation; the checkpoint streams a dev utterance, normalised as the
    task normalises it, into what its offline forward computes."""
    save = tmp_path / "ckpt"
    argv = speech_runs.train_argv(data, save, model=TINY_CTC, updates=4) + CTC  # last wins
    with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger="fairseq"):
        args = options.parse_args_and_arch(options.get_training_parser(), argv)
        distributed_utils.call_main(convert_namespace_to_omegaconf(args), train_cli.main)
    assert "valid on 'dev' subset" in caplog.text and "| wer " in caplog.text, caplog.text[-3000:]
    models, _, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(save / "checkpoint_last.pt")])
    model = models[0].eval()
    assert isinstance(model, S2TDuRNNCTCModel)
    task.load_dataset("dev")
    feats = task.datasets["dev"][0].source[None]  # (1, T_in, 80), global CMVN applied
    with torch.no_grad():
        offline, lengths = model.ctc_log_probs(feats, torch.tensor([feats.shape[1]]))
        state, chunks = model.start_stream(), []
        for start in range(0, feats.shape[1], 10):
            lprobs, state = model.stream(feats[:, start:start + 10], state)
            chunks.append(lprobs)
    assert int(lengths) == -(-feats.shape[1] // 4)
    torch.testing.assert_close(torch.cat(chunks), offline, rtol=1e-5, atol=1e-5)
