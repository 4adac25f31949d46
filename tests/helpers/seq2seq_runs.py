"""Tiny generated data for the encoder-decoder models, and in-process fairseq train / generate.

* translation: source words ``s<i>``, target the words ``t<i>`` in reverse order.
* speech_to_text: each word of a tiny vocabulary has its own fixed pattern of 80-dim frames;
  an utterance is its words' patterns plus noise, saved as ``.npy`` features with a TSV
  manifest (id, audio, n_frames, tgt_text, speaker), a sentencepiece model trained here, its
  fairseq dictionary and ``config.yaml``.
"""
import csv
import random
from pathlib import Path
from typing import List

import numpy as np
import sentencepiece as spm
from fairseq import distributed_utils, options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq_cli import generate, preprocess, train

from fairseq_runs import PLUGIN

# fairseq 0.12 drops a last batch whose size is not a multiple of --required-batch-size-multiple
# (default 8; facebookresearch/fairseq#5036): with 1, every sentence is trained on and decoded
COMMON = ["--user-dir", PLUGIN, "--cpu", "--num-workers", "0", "--seed", "1",
          "--required-batch-size-multiple", "1"]
TRAIN = ["--optimizer", "adam", "--lr", "0.005", "--clip-norm", "1", "--no-progress-bar",
         "--log-interval", "1", "--criterion", "label_smoothed_cross_entropy"]


def preprocess_translation(data_dir: Path) -> Path:
    rng = random.Random(0)
    for split, n in [("train", 300), ("valid", 20), ("test", 20)]:
        src, tgt = [], []
        for _ in range(n):
            ids = [rng.randrange(15) for _ in range(rng.randint(1, 6))]
            src.append(" ".join(f"s{i}" for i in ids))
            tgt.append(" ".join(f"t{i}" for i in reversed(ids)))
        (data_dir / f"{split}.src").write_text("\n".join(src) + "\n")
        (data_dir / f"{split}.tgt").write_text("\n".join(tgt) + "\n")
    dest = data_dir / "bin"
    args = options.get_preprocessing_parser().parse_args(
        ["--source-lang", "src", "--target-lang", "tgt", "--destdir", str(dest), "--workers", "1"]
        + [a for split in ("train", "valid", "test")
           for a in (f"--{split}pref", str(data_dir / split))])
    preprocess.main(args)
    return dest


WORDS = ["yes", "no", "up", "down", "left", "right", "stop", "go"]


def write_speech_data(data_dir: Path, n_train: int = 160, frames_per_word: int = 12) -> Path:
    rng = np.random.default_rng(0)
    patterns = {w: rng.normal(0, 1, (frames_per_word, 80)).astype(np.float32) for w in WORDS}
    feats = data_dir / "fbank"
    feats.mkdir(parents=True)
    texts = []
    for split, n in [("train", n_train), ("valid", 16), ("test", 16)]:
        rows = []
        for i in range(n):
            words = list(rng.choice(WORDS, size=rng.integers(1, 4)))
            x = np.concatenate([patterns[w] for w in words])
            x = x + rng.normal(0, 0.3, x.shape).astype(np.float32)
            path = feats / f"{split}{i}.npy"
            np.save(path, x)
            text = " ".join(words)
            texts.append(text)
            rows.append({"id": f"{split}{i}", "audio": str(path), "n_frames": len(x),
                         "tgt_text": text, "speaker": f"spk{i % 3}"})
        with open(data_dir / f"{split}.tsv", "w", newline="") as f:
            writer = csv.DictWriter(f, rows[0].keys(), delimiter="\t", quoting=csv.QUOTE_NONE)
            writer.writeheader()
            writer.writerows(rows)
    (data_dir / "text.txt").write_text("\n".join(texts) + "\n")
    prefix = data_dir / "spm"
    spm.SentencePieceTrainer.train(input=str(data_dir / "text.txt"), model_prefix=str(prefix),
                                   vocab_size=24, model_type="unigram", bos_id=-1, eos_id=-1,
                                   unk_id=0, minloglevel=2)
    pieces = [line.split("\t")[0] for line in Path(f"{prefix}.vocab").read_text().splitlines()]
    (data_dir / "dict.txt").write_text("".join(f"{p} 1\n" for p in pieces if p != "<unk>"))
    (data_dir / "config.yaml").write_text(
        "input_channels: 1\ninput_feat_per_channel: 80\nvocab_filename: dict.txt\n"
        f"bpe_tokenizer:\n  bpe: sentencepiece\n  sentencepiece_model: {prefix}.model\n")
    return data_dir


def train_cli(argv: List[str]) -> None:
    args = options.parse_args_and_arch(options.get_training_parser(), [str(a) for a in argv])
    distributed_utils.call_main(convert_namespace_to_omegaconf(args), train.main)


def generate_cli(argv: List[str], results: Path, subset: str = "test") -> str:
    argv = [str(a) for a in argv] + ["--gen-subset", subset, "--results-path", str(results)]
    args = options.parse_args_and_arch(options.get_generation_parser(), argv)
    generate.main(convert_namespace_to_omegaconf(args))
    return (results / f"generate-{subset}.txt").read_text()
