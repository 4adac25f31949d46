"""Synthetic English speech from Debian's ``flite`` and ``espeak-ng``, resampled by ``sox``.

A *voice* is one synthetic speaker: a flite voice (``flite-awb``, ``flite-slt``, ``flite-rms``,
``flite-kal16``) or an espeak-ng language with a voice variant (``espeak-en-us+f3``). espeak-ng
voices speak every utterance at a random rate (``-s``, words per minute) and pitch (``-p``,
0-99) drawn from :data:`ESPEAK_RATE` and :data:`ESPEAK_PITCH`, so each voice varies within itself.

Texts: digit strings spoken as words (``"three one four"``, :func:`digit_strings`) and short
sentences (:func:`short_sentences`, e.g. from the Brown corpus). The text is passed to the
synthesiser after ``--`` and is the transcript.

Every utterance becomes a 16 kHz, mono, 16-bit WAV file normalised to -1 dBFS by
``sox IN -r 16000 -c 1 -b 16 OUT gain -n -1``.
"""
import os
import random
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, List, Sequence

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FLITE_VOICES = ("awb", "slt", "rms", "kal16")
ESPEAK_VOICES = ("en-us+m3", "en-us+f2", "en-gb+m1", "en-gb+f3", "en-gb-scotland+m5",
                 "en-gb-x-rp+f4", "en-029+m2", "en-us-nyc+f1", "en-gb-x-gbclan+m4",
                 "en-gb-x-gbcwmd+f5", "en-us+m7", "en-gb-x-rp+m6")
ESPEAK_RATE = (130, 190)
ESPEAK_PITCH = (25, 75)
TOOLS = ("flite", "espeak-ng", "sox")
WORD = re.compile(r"^[a-z]+$")


class SynthesisError(RuntimeError):
    """A synthesiser or sox failed; the message names the command and its error output."""


def all_voices() -> List[str]:
    return [f"flite-{v}" for v in FLITE_VOICES] + [f"espeak-{v}" for v in ESPEAK_VOICES]


def check_voice(voice: str) -> None:
    if voice not in all_voices():
        raise ValueError(f"unknown voice {voice!r}; allowed: {', '.join(all_voices())}")


def missing_tools() -> List[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


@dataclass(frozen=True)
class Utterance:
    """One utterance to synthesise: ``id`` is unique, ``voice`` is the speaker."""
    id: str
    voice: str
    text: str
    kind: str  # "digits" or "sentence"


def digit_strings(n: int, rng: random.Random, min_len: int = 3, max_len: int = 7) -> List[str]:
    """``n`` random digit strings of ``min_len``..``max_len`` digits, as words."""
    return [" ".join(rng.choice(DIGIT_WORDS) for _ in range(rng.randint(min_len, max_len)))
            for _ in range(n)]


def short_sentences(sentences: Iterable[Sequence[str]], min_words: int = 4,
                    max_words: int = 10) -> List[str]:
    """Sentences (lists of lowercase tokens) with punctuation tokens removed, kept when every
    remaining token is a plain word (``[a-z]+``) and there are ``min_words``..``max_words`` of
    them; duplicates removed, first occurrence kept."""
    out, seen = [], set()
    for tokens in sentences:
        words = [t for t in tokens if any(c.isalnum() for c in t)]
        text = " ".join(words)
        if min_words <= len(words) <= max_words and all(WORD.match(w) for w in words) \
                and text not in seen:
            seen.add(text)
            out.append(text)
    return out


def synth_command(voice: str, text: str, out_path: str, rng: random.Random) -> List[str]:
    """The command writing ``text`` spoken by ``voice`` to ``out_path`` (WAV, native rate)."""
    engine, name = voice.split("-", 1)
    if engine == "flite":
        return ["flite", "-voice", name, "-o", out_path, "-t", text]
    rate, pitch = rng.randint(*ESPEAK_RATE), rng.randint(*ESPEAK_PITCH)
    return ["espeak-ng", "-v", name, "-s", str(rate), "-p", str(pitch), "-w", out_path, "--", text]


def _run(cmd: List[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SynthesisError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")


def synthesize_one(utt: Utterance, wav_path: str, seed: int) -> None:
    """Write ``utt`` to ``wav_path`` as 16 kHz mono 16-bit WAV at -1 dBFS. Kept if present and
    made from the same voice and text (recorded in ``wav_path + ".txt"``)."""
    stamp = f"{utt.voice}\t{utt.text}\n"
    if os.path.exists(wav_path) and _read(wav_path + ".txt") == stamp:
        return
    rng = random.Random(f"{seed}:{utt.id}")
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.wav")
        _run(synth_command(utt.voice, utt.text, raw, rng))
        part = os.path.join(tmp, "16k.wav")
        _run(["sox", raw, "-r", "16000", "-c", "1", "-b", "16", part, "gain", "-n", "-1"])
        shutil.move(part, wav_path)
    with open(wav_path + ".txt", "w", encoding="utf-8") as f:
        f.write(stamp)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def synthesize_all(utts: Sequence[Utterance], wav_dir: str, seed: int = 1,
                   workers: int = 2) -> List[str]:
    """Synthesise every utterance to ``wav_dir/<id>.wav``; returns the paths in order."""
    os.makedirs(wav_dir, exist_ok=True)
    paths = [os.path.join(wav_dir, f"{u.id}.wav") for u in utts]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda a: synthesize_one(a[0], a[1], seed), zip(utts, paths)))
    return paths
