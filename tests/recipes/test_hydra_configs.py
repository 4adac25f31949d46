"""Every recipe config in configs/ trains through fairseq-hydra-train, launched from a working
directory outside the repository (so ``common.user_dir`` must resolve from anywhere), on tiny
generated data with tiny models, for two updates."""
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from classify_runs import write_pixels, write_topics
from fairseq_runs import REPO, preprocess_lm, run_cli
from seq2seq_runs import preprocess_translation, write_speech_data

CONFIGS = REPO / "configs"
RUN = ["optimization.max_update=2", "common.cpu=true", "dataset.num_workers=0",
       "common.log_interval=1"]
TINY_LM = ["model.hidden_size=16", "model.embed_dim=8"]
TINY_CLASSIFIER = ["model.hidden_size=16", "model.embed_dim=8", "dataset.batch_size=8"]
TINY_SEQ2SEQ = ["model.encoder_num_layers=1", "model.decoder_num_layers=1",
                "model.encoder_hidden_size=16", "model.decoder_hidden_size=16",
                "model.encoder_embed_dim=8", "model.decoder_embed_dim=8"]

# (config name, model group choice or None, data directory key, overrides)
RUNS = [
    ("durnn_lm", None, "lm", ["task.sample_break_mode=eos"] + TINY_LM),
    ("durnn_lm", "indrnn_lm", "lm", ["task.sample_break_mode=eos"] + TINY_LM),
    ("durnn_lm", "dilated_durnn_lm", "lm", ["task.sample_break_mode=eos"] + TINY_LM),
    ("s2t_durnn", None, "speech", TINY_SEQ2SEQ + [
        "model.conv_channels=16", "dataset.valid_subset=valid", "dataset.max_tokens=6000"]),
    ("durnn_translation", None, "translation", TINY_SEQ2SEQ),
    ("durnn_classifier", None, "topics", TINY_CLASSIFIER + ["task.num_classes=2"]),
    ("adding_problem", None, None, TINY_CLASSIFIER + [
        "task.seq_len=20", "task.train_size=40", "task.valid_size=8", "task.test_size=8"]),
    ("pixel_sequence", None, "pixels", TINY_CLASSIFIER + ["task.valid_size=4"]),
]
IDS = [name if model is None else f"{name}-{model}" for name, model, _, _ in RUNS]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("hydra_data")
    for name in ("lm", "translation", "speech", "topics", "pixels"):
        (root / name).mkdir()
    write_pixels(root / "pixels")
    return {"lm": preprocess_lm(root / "lm"), "translation": preprocess_translation(root / "translation"),
            "speech": write_speech_data(root / "speech", n_train=24),
            "topics": write_topics(root / "topics"), "pixels": root / "pixels"}


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """Each run's (exit status, output, save dir), two at a time (one per core)."""
    def launch(run):
        name, model, data_key, overrides = run
        cwd = tmp_path_factory.mktemp("cwd")  # outside the repository
        save_dir = cwd / "checkpoints"
        args = ["--config-dir", os.path.relpath(CONFIGS, cwd), "--config-name", name,
                f"checkpoint.save_dir={save_dir}", *RUN, *overrides]
        if model is not None:
            args.append(f"model={model}")
        if data_key is not None:
            args.append(f"task.data={data[data_key]}")
        out = run_cli("fairseq-hydra-train", args, cwd=cwd)
        return out.returncode, (out.stdout + out.stderr)[-3000:], save_dir

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(IDS, pool.map(launch, RUNS)))


@pytest.mark.slow
@pytest.mark.parametrize("run_id", IDS)
def test_config_trains_from_another_directory(runs, run_id):
    returncode, output, save_dir = runs[run_id]
    assert returncode == 0, output
    assert (save_dir / "checkpoint_last.pt").exists(), output
    assert re.search(r"num_updates\D+2\b", output), output


def test_every_config_is_run_and_states_its_command():
    recipes = {path.stem for path in CONFIGS.glob("*.yaml")}
    models = {path.stem for path in (CONFIGS / "model").glob("*.yaml")}
    assert recipes == {name for name, _, _, _ in RUNS}
    assert models == {"durnn_lm"} | {model for _, model, _, _ in RUNS if model}
    for path in CONFIGS.glob("*.yaml"):
        head = "\n".join(path.read_text().splitlines()[:3])
        assert f"fairseq-hydra-train --config-dir REPO/configs --config-name {path.stem}" in head, path
