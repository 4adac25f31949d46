"""The voices of the speech recipe: every engine writes 16 kHz mono speech at -1 dBFS; the same
recorded speaker across engines is one speaker."""
import random
import re

import numpy as np
import pytest
import soundfile as sf

from examples.speech_recognition import synthesize
from examples.speech_recognition.synthesize import Utterance

ONE_PER_ENGINE = ["flite-kal", "festival-kal", "festival-ked", "festival-slt", "piper-joe",
                  "espeak-en-us+m3"]


@pytest.mark.parametrize("voice", ONE_PER_ENGINE)
def test_engine_writes_16k_mono_speech(voice, tmp_path):
    engine = voice.split("-", 1)[0]
    if synthesize.missing_engines([voice]):
        pytest.skip(f"needs {'; '.join(synthesize.missing_engines([voice]))}")
    utt = Utterance("u", voice, "set a timer for five minutes", "command")
    wav = tmp_path / "u.wav"
    synthesize.synthesize_one(utt, str(wav), seed=1)
    samples, rate = sf.read(wav)
    assert rate == 16000 and samples.ndim == 1
    assert 0.8 < len(samples) / rate < 5.0, engine  # six words of speech
    assert np.abs(samples).max() == pytest.approx(0.891, abs=0.01)  # -1 dBFS
    # speech, not silence: a quarter of the 10 ms frames within 30 dB of the loudest one
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    energy = 10 * np.log10((frames ** 2).mean(axis=1) + 1e-12)
    assert (energy > energy.max() - 30).mean() > 0.25


def test_random_duration_stretch_per_utterance(tmp_path):
    """flite and festival (diphone) voices speak each utterance at their own rate."""
    for voice in ("flite-kal16", "festival-kal"):
        if synthesize.missing_engines([voice]):
            continue
        lengths = set()
        for i in range(2):
            utt = Utterance(f"u{i}", voice, "three oh five", "digits")
            synthesize.synthesize_one(utt, str(tmp_path / f"{voice}{i}.wav"), seed=1)
            lengths.add(sf.info(str(tmp_path / f"{voice}{i}.wav")).frames)
        assert len(lengths) == 2, voice
        cmd = synthesize.synth_command(voice, "x", str(tmp_path / "o.wav"), random.Random(0))
        stretch = float(re.search(r"(?:duration_stretch=|Duration_Stretch )([0-9.]+)",
                                  " ".join(cmd)).group(1))
        assert synthesize.STRETCH[0] <= stretch <= synthesize.STRETCH[1]


def test_speakers_and_missing_engines(monkeypatch):
    assert synthesize.speaker("festival-kal") == synthesize.speaker("flite-kal16") == \
        synthesize.speaker("flite-kal") == "kal"
    assert synthesize.speaker("festival-slt") == synthesize.speaker("flite-slt") == "slt"
    assert synthesize.speaker("festival-ked") == "festival-ked"
    voices = synthesize.all_voices()
    assert len(voices) == len(set(voices)) and {"piper-joe", "festival-ked"} <= set(voices)
    assert {v.split("-", 1)[0] for v in voices} == set(synthesize.ENGINE_NEEDS)
    monkeypatch.setattr(synthesize, "engine_available", lambda engine: engine != "festival")
    assert synthesize.missing_engines(["festival-ked", "flite-awb"]) == [
        "text2wave (apt-get install festival festvox-kallpc16k festvox-kdlpc16k "
        "festvox-us-slt-hts)"]
    with pytest.raises(ValueError, match="unknown voice 'festival-bob'"):
        synthesize.check_voice("festival-bob")


def test_piper_draws_length_noise_and_noise_width_per_utterance():
    if synthesize.missing_engines(["piper-joe"]):
        pytest.skip(f"needs {'; '.join(synthesize.missing_engines(['piper-joe']))}")
    configs = [synthesize.piper_config(random.Random(f"1:u{i}")) for i in range(50)]
    for field, (low, high) in [("length_scale", synthesize.STRETCH),
                               ("noise_scale", synthesize.PIPER_NOISE),
                               ("noise_w_scale", synthesize.PIPER_NOISE_W)]:
        values = [getattr(c, field) for c in configs]
        assert all(low <= v <= high for v in values) and len(set(values)) == 50, field
        assert min(values) < low + 0.2 * (high - low) and max(values) > high - 0.2 * (high - low)
