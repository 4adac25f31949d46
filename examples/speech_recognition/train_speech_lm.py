#!/usr/bin/env python3
"""A small ``durnn_lm`` on a recogniser's training texts, in its own sentencepiece pieces, for
language model fusion in beam search (``fairseq-generate --lm-path L --lm-weight W``,
``transcribe.py --lm-path L --lm-weight W``).

fairseq's ``SequenceGenerator`` adds ``W * log p_LM(y_t | y_<t)`` to the recogniser's
``log p(y_t | y_<t, x)`` at every step, over the recogniser's target dictionary, so the LM's
dictionary must be that dictionary index for index. This script:

1. encodes the ``tgt_text`` of ``DATA/train.tsv`` (one line per utterance; the speed copies
   ``<id>-sp<S>`` of one utterance count once) and ``DATA/dev.tsv`` with the sentencepiece model
   of ``DATA/config.yaml``, into ``DATA/lm/{train,valid}.txt``;
2. copies the recogniser's dictionary (``vocab_filename`` of ``config.yaml``,
   ``spm_unigram<V>.txt``) to ``DATA/dict.txt`` (``fairseq-generate --lm-path`` loads the LM's
   task with the recogniser's data directory) and binarises the texts with
   ``fairseq-preprocess --only-source --srcdict DATA/dict.txt`` into ``DATA/lm``, then checks
   that ``DATA/lm/dict.txt`` lists the same pieces in the same order;
3. trains ``durnn_lm`` (``--sample-break-mode eos``: one sentence per sample, starting after
   ``</s>`` as the generator's prefixes do; ``--required-batch-size-multiple 1``: fairseq-fixed
   0.12.3.1 drops a last batch smaller than the multiple, a small dev set's only batch) for
   ``--minutes`` or ``--max-update`` updates into ``--save-dir``; ``checkpoint_best.pt`` is the
   LM.

Run from the repository root::

    python -m examples.speech_recognition.train_speech_lm --data DATA --save-dir DIR
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
from typing import List

import sentencepiece as spm
import yaml
from fairseq.data import Dictionary

from examples.speech_recognition.features import read_manifest

SPEED_COPY = re.compile(r"-sp[0-9.]+$")
MODEL = ["--arch", "durnn_lm", "--embed-dim", "64", "--hidden-size", "256", "--num-layers", "2",
         "--dropout", "0.2", "--embed-dropout", "0.1", "--share-input-output-embed"]


def config(data: str) -> dict:
    with open(os.path.join(data, "config.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def texts(tsv: str) -> List[str]:
    """The transcripts of a manifest, one per utterance (speed copies collapsed), non-empty."""
    seen, out = set(), []
    for row in read_manifest(tsv):
        utt = SPEED_COPY.sub("", row["id"])
        if utt not in seen and row["tgt_text"].strip():
            seen.add(utt)
            out.append(row["tgt_text"])
    return out


def same_dictionary(a: str, b: str) -> bool:
    """Whether two fairseq dictionary files give every symbol the same index."""
    return Dictionary.load(a).symbols == Dictionary.load(b).symbols


def prepare(data: str, workers: int = 1) -> str:
    """Steps 1 and 2 of the module docstring; returns the LM data directory ``DATA/lm``."""
    cfg = config(data)
    model = spm.SentencePieceProcessor(model_file=cfg["bpe_tokenizer"]["sentencepiece_model"])
    lm_dir = os.path.join(data, "lm")
    os.makedirs(lm_dir, exist_ok=True)
    for split, tsv in (("train", "train.tsv"), ("valid", "dev.tsv")):
        lines = [" ".join(model.encode(t, out_type=str)) for t in texts(os.path.join(data, tsv))]
        with open(os.path.join(lm_dir, f"{split}.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    vocab = os.path.join(data, cfg["vocab_filename"])
    shutil.copyfile(vocab, os.path.join(data, "dict.txt"))
    for name in os.listdir(lm_dir):
        if name.endswith((".bin", ".idx")) or name == "dict.txt":
            os.remove(os.path.join(lm_dir, name))
    subprocess.run([sys.executable, "-m", "fairseq_cli.preprocess", "--only-source",
                    "--srcdict", os.path.join(data, "dict.txt"),
                    "--trainpref", os.path.join(lm_dir, "train.txt"),
                    "--validpref", os.path.join(lm_dir, "valid.txt"), "--destdir", lm_dir,
                    "--workers", str(workers)], check=True, capture_output=True)
    if not same_dictionary(os.path.join(lm_dir, "dict.txt"), vocab):
        raise RuntimeError(f"{lm_dir}/dict.txt is not {vocab} index for index")
    return lm_dir


def train_command(lm_dir: str, save_dir: str, minutes: float, max_update: int,
                  model: List[str] = MODEL, extra: List[str] = ()) -> List[str]:
    """The fairseq-train command line of step 3."""
    plugin = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "durnn_plugin")
    return [sys.executable, "-m", "fairseq_cli.train", lm_dir, "--user-dir",
            os.path.normpath(plugin), "--task", "language_modeling",
            "--sample-break-mode", "eos", "--tokens-per-sample", "128", *model,
            "--criterion", "cross_entropy", "--optimizer", "adam", "--lr", "0.003",
            "--clip-norm", "1", "--max-tokens", "4096", "--max-update", str(max_update),
            "--stop-time-hours", str(minutes / 60), "--save-dir", save_dir,
            "--no-epoch-checkpoints", "--log-format", "simple", "--log-interval", "50",
            "--seed", "1", "--cpu", "--num-workers", "0", "--required-batch-size-multiple", "1",
            *extra]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True,
                    help="the recogniser's data directory (config.yaml, train.tsv, dev.tsv)")
    ap.add_argument("--save-dir", required=True, help="where the LM checkpoints go")
    ap.add_argument("--minutes", type=float, default=5.0,
                    help="training-time budget in minutes (default: %(default)s)")
    ap.add_argument("--max-update", type=int, default=100000,
                    help="at most this many updates (default: %(default)s)")
    ap.add_argument("extra", nargs="*", metavar="FAIRSEQ_ARG",
                    help="more fairseq-train options after --, e.g. -- --hidden-size 128")
    args = ap.parse_args(argv)
    missing = [f for f in ("config.yaml", "train.tsv", "dev.tsv")
               if not os.path.isfile(os.path.join(args.data, f))]
    if missing:
        ap.error(f"--data {args.data!r}: no {', '.join(missing)}; must be a data directory "
                 "written by prepare_speech.py")
    if args.minutes <= 0 or args.max_update <= 0:
        ap.error(f"--minutes {args.minutes} / --max-update {args.max_update}: must be > 0")
    lm_dir = prepare(args.data)
    print(f"LM data: {lm_dir} (dictionary {os.path.join(args.data, 'dict.txt')})", flush=True)
    done = subprocess.run(train_command(lm_dir, args.save_dir, args.minutes, args.max_update,
                                        extra=args.extra))
    if done.returncode != 0:
        sys.exit(f"train_speech_lm.py: error: fairseq-train failed ({done.returncode})")


if __name__ == "__main__":
    main()
