#!/usr/bin/env python3
"""Word error rate per voice from a ``fairseq-generate`` output file and its manifest.

``fairseq-generate --results-path R --gen-subset S`` writes ``R/generate-S.txt``, with
``T-<i>`` (reference) and ``D-<i>`` (detokenised best hypothesis) lines, ``i`` the row index of
the manifest ``S.tsv`` after its bad rows were dropped. This script drops the same rows (the
plugin's row checker, same ``--min-source-frames``), checks that every reference equals its
row's ``tgt_text`` and that every row was decoded (fairseq-fixed 0.12.3.1's ``batch_by_size``
drops a last batch smaller than ``--required-batch-size-multiple``, default 8, so generate needs
``--required-batch-size-multiple 1``), and scores each ``speaker`` with fairseq's WER scorer
(``fairseq.scoring.wer``: word edit distance / reference words, in %), then all rows together.
A manifest with a ``group`` column (the real dev set of ``prepare_real_dev.py``: digits,
number words, other) is scored per group instead (``--by`` chooses the column).

Prints one line per voice (or group), ``<voice> WER <x> (<words> words, <n> utterances)``, then
``all``.
Run from the repository root: ``python -m examples.speech_recognition.wer_by_voice TSV GENERATE``.
"""
import argparse
import collections
import os
import re
from typing import Dict, List, Tuple

import yaml
from fairseq.scoring.wer import WerScorer, WerScorerConfig

from durnn_plugin.tasks.s2t_manifest import check_manifest
from examples.speech_recognition.features import read_manifest

LINE = re.compile(r"^([TD])-(\d+)\t(.*)$")


def read_generate(path: str) -> Dict[int, Tuple[str, str]]:
    """``{row index: (reference, hypothesis)}`` from a fairseq-generate output file."""
    refs, hyps = {}, {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = LINE.match(line.rstrip("\n"))
            if m:
                kind, i, rest = m.group(1), int(m.group(2)), m.group(3)
                if kind == "T":
                    refs[i] = rest
                else:
                    hyps[i] = rest.split("\t", 1)[1] if "\t" in rest else ""
    return {i: (refs[i], hyps.get(i, "")) for i in refs}


def wer_by_speaker(rows: List[Dict[str, str]], pairs: Dict[int, Tuple[str, str]],
                   column: str = "speaker"):
    """``({value of column: (WER %, ref words, utterances)}, (WER %, words, utterances) of
    all)``; ``column`` is ``speaker`` or another manifest column (``group``)."""
    if len(pairs) != len(rows):
        raise ValueError(f"generate decoded {len(pairs)} of the manifest's {len(rows)} usable "
                         f"rows; pass --required-batch-size-multiple 1 to fairseq-generate")
    scorers = collections.defaultdict(lambda: WerScorer(WerScorerConfig()))
    counts = collections.Counter()
    for i, (ref, hyp) in sorted(pairs.items()):
        if i >= len(rows) or rows[i]["tgt_text"].strip() != ref.strip():
            found = rows[i]["tgt_text"] if i < len(rows) else "no such row"
            raise ValueError(f"generate line T-{i} {ref!r} does not match manifest row {i} "
                             f"({found!r}); pass the --min-source-frames used by generate")
        for key in (rows[i].get(column, ""), None):
            scorers[key].add_string(ref, hyp)
            counts[key] += 1
    result = {k: (s.score(), s.ref_length, counts[k]) for k, s in scorers.items()}
    return {k: v for k, v in result.items() if k is not None}, result[None]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest", help="the S.tsv given to fairseq-generate")
    ap.add_argument("generate_output", help="R/generate-S.txt")
    ap.add_argument("--min-source-frames", type=int, default=1,
                    help="the value generate used (its default: the subsampler's receptive field)")
    ap.add_argument("--by", default=None, metavar="COLUMN",
                    help="the manifest column to score by (default: group if the manifest has "
                         "one, else speaker)")
    args = ap.parse_args()

    root = os.path.dirname(os.path.abspath(args.manifest))
    with open(os.path.join(root, "config.yaml"), encoding="utf-8") as f:
        audio_root = yaml.safe_load(f).get("audio_root", "")
    rows, _ = check_manifest(args.manifest, read_manifest(args.manifest), audio_root,
                             args.min_source_frames)
    column = args.by or ("group" if rows and "group" in rows[0] else "speaker")
    if rows and column not in rows[0]:
        ap.error(f"--by {column!r}: no such column in {args.manifest}; it has "
                 f"{', '.join(rows[0])}")
    per_voice, total = wer_by_speaker(rows, read_generate(args.generate_output), column)
    for voice, (wer, words, n) in sorted(per_voice.items()):
        print(f"{voice:<24} WER {wer:6.2f} ({words} words, {n} utterances)")
    print(f"{'all':<24} WER {total[0]:6.2f} ({total[1]} words, {total[2]} utterances)")


if __name__ == "__main__":
    main()
