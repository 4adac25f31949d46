"""Tiny data and in-process fairseq runs for the classifier and the real-valued tasks."""
import importlib.util
import random
from pathlib import Path

import numpy as np
from fairseq import distributed_utils, options
from fairseq.data import Dictionary
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq_cli import preprocess, train

from durnn_plugin.tasks.idx_files import write_idx
from fairseq_runs import PLUGIN, REPO

TINY = ["--hidden-size", "16", "--short-size", "4", "--embed-dim", "8", "--num-layers", "2"]


def run_train(argv) -> None:
    """fairseq-train in this process."""
    args = options.parse_args_and_arch(options.get_training_parser(),
                                       [str(a) for a in argv] + ["--user-dir", PLUGIN])
    distributed_utils.call_main(convert_namespace_to_omegaconf(args), train.main)


def common_train_args(save_dir: Path, updates: int) -> list:
    return ["--optimizer", "adam", "--lr", "0.01", "--max-update", updates,
            "--save-dir", save_dir, "--no-progress-bar", "--num-workers", "0", "--cpu",
            "--log-interval", "1", "--seed", "1", "--no-epoch-checkpoints"]


def write_topics(data_dir: Path, seed: int = 0) -> Path:
    """Two-class text (class a: words w0-w4, class b: w5-w9) as sentence_prediction data in
    ``data_dir/bin/{input0,label}``."""
    rng = random.Random(seed)
    raw = data_dir / "raw"
    raw.mkdir(parents=True)
    for split, n in [("train", 160), ("valid", 40)]:
        texts, labels = [], []
        for i in range(n):
            label = "ab"[i % 2]
            words = range(5) if label == "a" else range(5, 10)
            texts.append(" ".join(f"w{rng.choice(words)}" for _ in range(rng.randint(1, 7))))
            labels.append(label)
        (raw / f"{split}.input0").write_text("\n".join(texts) + "\n")
        (raw / f"{split}.label").write_text("\n".join(labels) + "\n")
    dest = data_dir / "bin"
    for part in ("input0", "label"):
        args = options.get_preprocessing_parser().parse_args([
            "--only-source", "--trainpref", str(raw / f"train.{part}"),
            "--validpref", str(raw / f"valid.{part}"), "--destdir", str(dest / part),
            "--workers", "1"])
        preprocess.main(args)
    return dest


def write_pixels(data_dir: Path, n_train: int = 24, n_test: int = 8, side: int = 4,
                 images_dtype=np.uint8, seed: int = 0):
    """MNIST-layout IDX files of random ``side x side`` images; labels = row index mod 10.
    Returns ``(train_images, test_images)``."""
    rng = np.random.default_rng(seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for prefix, n in [("train", n_train), ("t10k", n_test)]:
        if images_dtype == np.uint8:
            images = rng.integers(0, 256, (n, side, side), dtype=np.uint8)
        else:
            images = rng.random((n, side, side)).astype(images_dtype)
        write_idx(data_dir / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(data_dir / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
        made.append(images)
    return made


def token_task(num_words: int = 20):
    """A stand-in for a task with a source dictionary (what build_model reads)."""
    dictionary = Dictionary()
    for i in range(num_words):
        dictionary.add_symbol(f"w{i}")

    class Task:
        source_dictionary = dictionary

    return Task()


def load_example(name: str):
    """A module of examples/ by its path, e.g. ``classification/evaluate.py``."""
    path = REPO / "examples" / name
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
