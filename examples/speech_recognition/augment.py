"""Waveform augmentation of training utterances (sox and numpy), Kaldi-style copies.

Every training utterance becomes one copy per speed factor of :attr:`Augmentation.speeds`
(``0.9,1.0,1.1`` as in Kaldi's recipes: three copies); each copy then draws, from its own
random stream (seed, copy id), the effects below, applied in this order:

1. ``sox speed S`` (tempo and pitch scale together: length ``/ S``);
2. ``sox tempo T``, ``T`` uniform in ``1 ± tempo_jitter`` (length ``/ T``, pitch kept);
3. ``sox pitch C``, ``C`` cents uniform in ``± pitch_jitter`` (length kept);
4. ``sox reverb R`` (reverberance R uniform in 20..80, 0.3 s of padding for the tail), with
   probability ``reverb_prob``;
5. silence around the speech, when ``pad_silence`` > 0 (every copy): leading and trailing
   silence, each uniform in ``0..pad_silence`` seconds, as a person leaves before and after a
   word said to a machine; in :data:`ROOM_TONE_PROB` of the copies the silence is room tone,
   white, pink or brown noise under the whole copy at a speech-to-tone ratio uniform in
   :data:`ROOM_TONE_SNR_DB` (digital silence otherwise);
6. additive noise with probability ``noise_prob``: one of ``noise_types`` -- ``white``,
   ``pink``, ``brown`` (``sox synth ... whitenoise|pinknoise|brownnoise``, 30 s generated once
   and cropped at a random offset) or ``babble`` (the sum of 3-6 other training utterances at
   random offsets) -- scaled to an SNR uniform in ``snr_db``:
   ``10 log10(mean(x²) / mean(n²)) = SNR``, ``x`` the speech before the padding of step 5;
7. telephone band with probability ``telephone_prob``: ``sox sinc 300-3400 rate 8000``, then
   back to 16 kHz (nothing above 4 kHz survives);
8. peak level: -1 dBFS, lowered by a gain uniform in ``0..gain_db`` dB.

A copy with nothing to do (speed 1, no effect drawn) is the original WAV file.

Vocal tract length perturbation (``vtln`` > 0; Jaitly and Hinton 2013) acts on the features, not
the waveform: :func:`vtln_warp` draws each copy's warp factor uniform in ``1 ± vtln``, which
``features.fbank`` applies to the filterbank's frequency axis (Kaldi's ``vtln_warp``).

:func:`write_noise_only` writes utterances without speech (digital silence or noise), the
audio of training rows with an empty transcript.
"""
import functools
import os
import random
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf

from examples.speech_recognition.synthesize import read_stamp

SAMPLE_RATE = 16000
NOISE_TYPES = ("white", "pink", "brown", "babble")
NOISE_SECONDS = 30
PEAK_DBFS = -1.0
# The recipe's default augmentation (run_digits.sh's PREPARE_ARGS, the speech race's "all"):
# every effect of the README's ablation, its prepare_speech options by the ablation's names.
DEFAULT_EFFECTS = {
    "speed": "--speed-perturb 0.9,1.0,1.1",
    "tempo": "--tempo-jitter 0.1",
    "pitch": "--pitch-jitter 150",
    "noise": "--noise-prob 0.5 --snr-db 5,30",
    "reverb": "--reverb-prob 0.3",
    "telephone": "--telephone-prob 0.3",
    "gain": "--gain-db 20",
}
DEFAULT_OPTIONS = " ".join(DEFAULT_EFFECTS.values())
ROOM_TONES = ("white", "pink", "brown")
ROOM_TONE_PROB = 0.5
ROOM_TONE_SNR_DB = (30.0, 60.0)
NOISE_ONLY = ("silence",) + ROOM_TONES  # what a row with an empty transcript holds


@dataclass(frozen=True)
class Augmentation:
    """What to do to training copies (the defaults do nothing)."""
    speeds: Tuple[float, ...] = (1.0,)
    tempo_jitter: float = 0.0
    pitch_jitter: float = 0.0  # cents
    noise_prob: float = 0.0
    noise_types: Tuple[str, ...] = ("white", "pink", "brown", "babble")
    snr_db: Tuple[float, float] = (5.0, 30.0)
    reverb_prob: float = 0.0
    telephone_prob: float = 0.0
    gain_db: float = 0.0
    pad_silence: float = 0.0  # seconds, at most, on either side
    vtln: float = 0.0  # warp factor uniform in 1 +- vtln

    def check(self) -> "Augmentation":
        """Self, or ValueError naming the option and what is allowed."""
        if not self.speeds or any(not 0.5 <= s <= 2.0 for s in self.speeds):
            raise ValueError(f"--speed-perturb {self.speeds}: factors must lie in 0.5..2.0")
        if not 0 <= self.tempo_jitter < 0.5:
            raise ValueError(f"--tempo-jitter {self.tempo_jitter}: must be in [0, 0.5)")
        if not 0 <= self.pitch_jitter <= 1200:
            raise ValueError(f"--pitch-jitter {self.pitch_jitter}: must be 0..1200 cents")
        for name in ("noise_prob", "reverb_prob", "telephone_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"--{name.replace('_', '-')} {getattr(self, name)}: "
                                 "must be a probability in 0..1")
        bad = [t for t in self.noise_types if t not in NOISE_TYPES]
        if bad or not self.noise_types:
            raise ValueError(f"--noise-types {','.join(self.noise_types)}: allowed "
                             f"{', '.join(NOISE_TYPES)} (at least one)")
        if len(self.snr_db) != 2 or self.snr_db[0] > self.snr_db[1]:
            raise ValueError(f"--snr-db {self.snr_db}: must be LOW,HIGH with LOW <= HIGH")
        if not 0 <= self.gain_db <= 40:
            raise ValueError(f"--gain-db {self.gain_db}: must be 0..40 dB")
        if not 0 <= self.pad_silence <= 5:
            raise ValueError(f"--pad-silence {self.pad_silence}: must be 0..5 seconds")
        if not 0 <= self.vtln <= 0.2:
            raise ValueError(f"--vtln {self.vtln}: must be 0..0.2 (warp factors 1 +- X)")
        return self


@dataclass(frozen=True)
class Plan:
    """The effects drawn for one copy."""
    speed: float = 1.0
    tempo: float = 1.0
    pitch: float = 0.0
    reverb: Optional[float] = None
    noise: Optional[str] = None
    snr_db: float = 0.0
    telephone: bool = False
    gain_db: float = 0.0
    lead: float = 0.0  # seconds of silence before the speech
    trail: float = 0.0  # and after it
    room_tone: Optional[str] = None
    room_snr_db: float = 0.0

    def is_identity(self) -> bool:
        return self == Plan()

    def describe(self) -> str:
        return " ".join(f"{k}={v}" for k, v in sorted(vars(self).items()))


def draw_plan(aug: Augmentation, speed: float, rng: random.Random) -> Plan:
    """Random effects of one copy (every draw is made, whatever the probabilities, so one
    option does not change the other options' draws)."""
    tempo = rng.uniform(1 - aug.tempo_jitter, 1 + aug.tempo_jitter)
    pitch = rng.uniform(-aug.pitch_jitter, aug.pitch_jitter)
    reverb, use_reverb = rng.uniform(20, 80), rng.random() < aug.reverb_prob
    noise, snr, use_noise = rng.choice(aug.noise_types), rng.uniform(*aug.snr_db), \
        rng.random() < aug.noise_prob
    telephone = rng.random() < aug.telephone_prob
    gain = rng.uniform(0, aug.gain_db)
    lead, trail = rng.uniform(0, aug.pad_silence), rng.uniform(0, aug.pad_silence)
    room, room_snr = rng.choice(ROOM_TONES), rng.uniform(*ROOM_TONE_SNR_DB)
    use_room = aug.pad_silence > 0 and rng.random() < ROOM_TONE_PROB
    return Plan(speed=speed, tempo=round(tempo, 4) if aug.tempo_jitter else 1.0,
                pitch=round(pitch, 1) if aug.pitch_jitter else 0.0,
                reverb=round(reverb, 1) if use_reverb else None,
                noise=noise if use_noise else None, snr_db=round(snr, 2) if use_noise else 0.0,
                telephone=telephone, gain_db=round(gain, 2), lead=round(lead, 3),
                trail=round(trail, 3), room_tone=room if use_room else None,
                room_snr_db=round(room_snr, 2) if use_room else 0.0)


def vtln_warp(aug: Augmentation, copy_id: str, seed: int) -> float:
    """The vocal tract length warp factor of one copy, uniform in ``1 ± aug.vtln`` from its own
    random stream (seed, copy id), rounded to 3 decimals; 1.0 when ``aug.vtln`` is 0."""
    if not aug.vtln:
        return 1.0
    return round(random.Random(f"{seed}:{copy_id}:vtln").uniform(1 - aug.vtln, 1 + aug.vtln), 3)


def _sox(args: List[str]) -> None:
    done = subprocess.run(["sox", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"sox {' '.join(args)} failed ({done.returncode}): "
                           f"{done.stderr.strip()}")


def read(path: str) -> np.ndarray:
    """A mono 16 kHz WAV file as float64 samples."""
    x, rate = sf.read(path, dtype="float64")
    if rate != SAMPLE_RATE or x.ndim != 1:
        raise ValueError(f"{path}: {rate} Hz, {x.ndim}-D; must be {SAMPLE_RATE} Hz mono")
    return x


@functools.lru_cache(maxsize=None)
def synthetic_noise(kind: str) -> np.ndarray:
    """:data:`NOISE_SECONDS` of ``sox synth`` white, pink or brown noise (``-R``: the same
    samples every time), float64."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "noise.wav")
        _sox(["-R", "-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", path,
              "synth", str(NOISE_SECONDS), f"{kind}noise"])
        return read(path)


def _crop(source: np.ndarray, n: int, rng: random.Random) -> np.ndarray:
    """``n`` samples of ``source`` from a random offset, wrapping around."""
    start = rng.randrange(len(source))
    return np.resize(np.roll(source, -start), n)


def noise_like(kind: str, n: int, rng: random.Random, babble_sources: Sequence[str]) -> np.ndarray:
    """``n`` samples of noise of ``kind`` (babble: the sum of 3-6 of ``babble_sources``)."""
    if kind != "babble":
        return _crop(synthetic_noise(kind), n, rng)
    if not babble_sources:
        raise ValueError("babble noise needs other training utterances")
    talkers = rng.sample(list(babble_sources), min(len(babble_sources), rng.randint(3, 6)))
    return sum(_crop(read(p), n, rng) for p in talkers)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float,
               speech_power: Optional[float] = None) -> np.ndarray:
    """``speech + g * noise`` with ``g`` such that ``10 log10(P / mean((g noise)²)) = snr_db``,
    ``P = speech_power`` (default ``mean(speech²)``)."""
    p_speech = np.mean(speech ** 2) if speech_power is None else speech_power
    p_noise = np.mean(noise ** 2)
    if p_noise == 0 or p_speech == 0:
        return speech
    return speech + noise * np.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10)))


def apply(plan: Plan, in_wav: str, out_wav: str, babble_sources: Sequence[str] = (),
          rng: Optional[random.Random] = None) -> None:
    """Write ``in_wav`` (16 kHz mono) transformed by ``plan`` to ``out_wav`` (16 kHz mono
    16-bit); ``rng`` chooses noise offsets and babble talkers."""
    rng = rng or random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        stage = os.path.join(tmp, "a.wav")
        effects = []
        if plan.speed != 1:
            effects += ["speed", str(plan.speed)]
        if plan.tempo != 1:
            effects += ["tempo", "-s", str(plan.tempo)]
        if plan.pitch:
            effects += ["pitch", str(plan.pitch)]
        if plan.reverb is not None:
            effects += ["pad", "0", "0.3", "reverb", str(plan.reverb)]
        _sox([in_wav, "-r", str(SAMPLE_RATE), "-c", "1", "-e", "floating-point", "-b", "32",
              stage, *effects, "rate", str(SAMPLE_RATE)] if effects else [in_wav, "-e",
              "floating-point", "-b", "32", stage])
        x = read(stage)
        power = np.mean(x ** 2)  # of the speech: silence around it does not lower the SNRs
        x = np.concatenate([np.zeros(round(plan.lead * SAMPLE_RATE)), x,
                            np.zeros(round(plan.trail * SAMPLE_RATE))])
        if plan.room_tone is not None:
            x = mix_at_snr(x, noise_like(plan.room_tone, len(x), rng, ()), plan.room_snr_db,
                           power)
        if plan.noise is not None:
            x = mix_at_snr(x, noise_like(plan.noise, len(x), rng, babble_sources), plan.snr_db,
                           power)
        if plan.telephone:
            sf.write(stage, x, SAMPLE_RATE, subtype="FLOAT")
            phone = os.path.join(tmp, "b.wav")
            _sox([stage, "-e", "floating-point", "-b", "32", phone, "sinc", "300-3400",
                  "rate", "8000", "rate", str(SAMPLE_RATE)])
            x = read(phone)
        write_at_peak(out_wav, x, PEAK_DBFS - plan.gain_db)


def write_at_peak(path: str, x: np.ndarray, peak_dbfs: float) -> None:
    """``x`` scaled to a peak of ``peak_dbfs`` (silence left as it is) to ``path``, 16 kHz mono
    16-bit WAV (written beside it, then moved)."""
    peak = np.max(np.abs(x), initial=0.0)
    part = path + ".part.wav"
    sf.write(part, x * (10 ** (peak_dbfs / 20) / peak) if peak > 0 else x, SAMPLE_RATE,
             subtype="PCM_16")
    shutil.move(part, path)


def write_noise_only(path: str, kind: str, seconds: float, rng: random.Random) -> None:
    """``seconds`` of audio without speech to ``path`` (16 kHz mono 16-bit WAV): digital
    silence (``kind="silence"``) or white, pink or brown noise (:data:`ROOM_TONES`) at a peak
    of -1 dBFS."""
    if kind not in NOISE_ONLY:
        raise ValueError(f"noise-only kind {kind!r}; allowed: {', '.join(NOISE_ONLY)}")
    n = round(seconds * SAMPLE_RATE)
    write_at_peak(path, np.zeros(n) if kind == "silence" else noise_like(kind, n, rng, ()),
                  PEAK_DBFS)


def copies(utt_id: str, aug: Augmentation, seed: int) -> List[Tuple[str, Plan]]:
    """``[(copy id, plan)]`` for one training utterance: one copy per speed factor, id
    ``<id>-sp<S>`` when there is more than one speed factor or it is not 1."""
    out = []
    for speed in aug.speeds:
        copy_id = utt_id if aug.speeds == (1.0,) else f"{utt_id}-sp{speed:g}"
        out.append((copy_id, draw_plan(aug, speed, random.Random(f"{seed}:{copy_id}:augment"))))
    return out


def augment_all(ids: Sequence[str], wavs: Sequence[str], aug: Augmentation, out_dir: str,
                seed: int = 1, workers: int = 2) -> List[Tuple[int, str, str]]:
    """``[(index of the source utterance, copy id, WAV path)]`` for every copy of every
    utterance; copies with effects are written to ``out_dir/<copy id>.wav`` (kept if present,
    newer than the source and made from the same plan, recorded in ``.txt`` beside it). Babble
    is made of the other utterances of ``wavs``."""
    os.makedirs(out_dir, exist_ok=True)
    out, todo = [], []
    for i, (utt_id, wav) in enumerate(zip(ids, wavs)):
        for copy_id, plan in copies(utt_id, aug, seed):
            path = wav if plan.is_identity() else os.path.join(out_dir, f"{copy_id}.wav")
            out.append((i, copy_id, path))
            if path != wav:
                todo.append((wav, path, copy_id, plan))

    def make(job):
        wav, path, copy_id, plan = job
        stamp = plan.describe() + "\n"
        if os.path.exists(path) and read_stamp(path + ".txt") == stamp \
                and os.path.getmtime(path) >= os.path.getmtime(wav):
            return
        others = [w for w in wavs if w != wav]
        apply(plan, wav, path, others, random.Random(f"{seed}:{copy_id}:noise"))
        with open(path + ".txt", "w", encoding="utf-8") as f:
            f.write(stamp)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(make, todo))
    return out
