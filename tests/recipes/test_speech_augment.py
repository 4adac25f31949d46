"""Waveform augmentation of the speech recipe: each effect changes the audio as it says."""
import random

import numpy as np
import pytest
import soundfile as sf

from examples.speech_recognition import augment, prepare_speech
from examples.speech_recognition.augment import Augmentation, Plan

pytestmark = pytest.mark.skipif(
    bool(prepare_speech.synthesize.missing_engines(["flite-awb"])), reason="needs flite and sox")

RATE = 16000


def tone(path, seconds=1.0, freq=440.0):
    """A sine at ``freq`` with 0.2 s of silence either side (speech-like: onset and offset)."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = np.concatenate([np.zeros(3200), 0.5 * np.sin(2 * np.pi * freq * t), np.zeros(3200)])
    sf.write(path, x, RATE, subtype="PCM_16")
    return x


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """Three flite utterances, 16 kHz mono (the first is augmented, all are babble)."""
    d = tmp_path_factory.mktemp("aug")
    paths = []
    for i, text in enumerate(["call mom at half past seven", "three oh five", "twenty twenty six"]):
        path = str(d / f"s{i}.wav")
        prepare_speech.synthesize.synthesize_one(
            prepare_speech.Utterance(f"s{i}", "flite-awb", text, "x"), path, seed=1)
        paths.append(path)
    return paths


def run(plan, src, tmp_path, babble=()):
    out = str(tmp_path / "out.wav")
    augment.apply(plan, src, out, babble, random.Random(0))
    x, rate = sf.read(out)
    assert rate == RATE and x.ndim == 1
    return x


def dominant_freq(x):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * RATE / len(x)


def test_speed_changes_length_and_pitch(speech, tmp_path):
    n = len(augment.read(speech[0]))
    for speed in (0.9, 1.1):
        x = run(Plan(speed=speed), speech[0], tmp_path)
        assert len(x) == pytest.approx(n / speed, rel=0.01)
    src = str(tmp_path / "tone.wav")
    tone(src)
    assert dominant_freq(run(Plan(speed=1.1), src, tmp_path)) == pytest.approx(484, abs=3)


def test_tempo_keeps_pitch_and_pitch_keeps_length(tmp_path):
    src = str(tmp_path / "tone.wav")
    n = len(tone(src))
    x = run(Plan(tempo=1.2), src, tmp_path)
    assert len(x) == pytest.approx(n / 1.2, rel=0.02)
    assert dominant_freq(x) == pytest.approx(440, abs=3)
    x = run(Plan(pitch=200.0), src, tmp_path)  # two semitones up
    assert len(x) == pytest.approx(n, rel=0.01)
    assert dominant_freq(x) == pytest.approx(440 * 2 ** (200 / 1200), abs=4)


@pytest.mark.parametrize("kind", augment.NOISE_TYPES)
def test_noise_at_the_drawn_snr(kind, speech, tmp_path):
    clean = augment.read(speech[0])
    x = run(Plan(noise=kind, snr_db=10.0), speech[0], tmp_path, babble=speech[1:])
    # undo the final peak normalisation, then measure speech-to-noise power
    scale = np.dot(x, clean) / np.dot(clean, clean)
    noise = x / scale - clean
    snr = 10 * np.log10(np.mean(clean ** 2) / np.mean(noise ** 2))
    assert snr == pytest.approx(10.0, abs=0.3)
    if kind != "babble":
        spectrum = np.abs(np.fft.rfft(noise)) ** 2
        freqs = np.fft.rfftfreq(len(noise), 1 / RATE)
        low = spectrum[(freqs > 100) & (freqs < 500)].mean()
        high = spectrum[(freqs > 4000) & (freqs < 6000)].mean()
        tilt = 10 * np.log10(low / high)  # white ~0 dB, pink ~10 dB, brown ~20 dB and more
        expected = {"white": (-2, 2), "pink": (7, 14), "brown": (20, 60)}[kind]
        assert expected[0] < tilt < expected[1], (kind, tilt)


def test_telephone_removes_energy_above_4khz(speech, tmp_path):
    def above_4k(x):
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        return spectrum[np.fft.rfftfreq(len(x), 1 / RATE) > 4000].sum() / spectrum.sum()

    clean = augment.read(speech[0])
    phone = run(Plan(telephone=True), speech[0], tmp_path)
    assert above_4k(clean) > 1e-3 and above_4k(phone) < 1e-5
    assert len(phone) == pytest.approx(len(clean), abs=16)


def test_reverb_adds_a_tail_and_gain_lowers_the_peak(tmp_path):
    src = str(tmp_path / "tone.wav")
    n = len(tone(src))
    x = run(Plan(reverb=60.0), src, tmp_path)
    assert len(x) == n + int(0.3 * RATE)
    tail = x[n - 3200 + 800:n]  # the source is silent here
    assert np.sqrt(np.mean(tail ** 2)) > 1e-3
    quiet = run(Plan(gain_db=6.0), src, tmp_path)
    assert 20 * np.log10(np.abs(quiet).max()) == pytest.approx(-7.0, abs=0.05)


def test_copies_plans_and_checks(speech, tmp_path):
    aug = Augmentation(speeds=(0.9, 1.0, 1.1), tempo_jitter=0.1, noise_prob=0.5)
    made = augment.augment_all(["a", "b"], speech[:2], aug, str(tmp_path / "aug"), seed=1)
    assert [(i, c) for i, c, _ in made] == [(0, "a-sp0.9"), (0, "a-sp1"), (0, "a-sp1.1"),
                                           (1, "b-sp0.9"), (1, "b-sp1"), (1, "b-sp1.1")]
    assert all(p.startswith(str(tmp_path / "aug")) for _, _, p in made)  # tempo jitter on all
    plans = [p for _, p in augment.copies("a", aug, 1)]
    assert all(0.9 <= p.tempo <= 1.1 for p in plans) and plans[0].pitch == 0
    # an option left at its default does not change the other options' draws
    more = Augmentation(speeds=(0.9, 1.0, 1.1), tempo_jitter=0.1, noise_prob=0.5, gain_db=3)
    assert [p.tempo for _, p in augment.copies("a", more, 1)] == [p.tempo for p in plans]
    # nothing to do: the original file, same id
    assert augment.augment_all(["a"], speech[:1], Augmentation(), str(tmp_path)) == \
        [(0, "a", speech[0])]
    for bad, match in [(Augmentation(speeds=(3.0,)), "--speed-perturb"),
                       (Augmentation(noise_prob=2), "--noise-prob 2: must be a probability"),
                       (Augmentation(noise_types=("pinky",)), "--noise-types pinky: allowed"),
                       (Augmentation(snr_db=(30, 5)), "--snr-db")]:
        with pytest.raises(ValueError, match=match):
            bad.check()


def test_data_directories_share_unaugmented_features(tmp_path):
    """Two data directories of one workdir: unaugmented features computed once and linked,
    an augmented copy's features written separately without touching the shared file."""
    import os

    utts = {"train": prepare_speech.utterances(["flite-awb"], {"digits": 2}, [], seed=0,
                                               split="train"),
            "dev": prepare_speech.utterances(["flite-slt"], {"digits": 1}, [], seed=0,
                                             split="dev")}
    work = str(tmp_path)
    plain = prepare_speech.write_data(utts, work, 20, False, data_dir=str(tmp_path / "plain"))
    noisy = prepare_speech.write_data(utts, work, 20, False, data_dir=str(tmp_path / "noisy"))
    first = utts["train"][0].id
    shared = tmp_path / "fbank80" / f"{first}.npy"
    assert os.path.samefile(shared, tmp_path / "noisy" / "fbank80" / f"{first}.npy")
    before = np.load(shared)
    # the same data directory with noise on every copy: its own features, the cache untouched
    prepare_speech.write_data(utts, work, 20, False, data_dir=noisy,
                              augmentation=Augmentation(noise_prob=1.0))
    np.testing.assert_array_equal(np.load(shared), before)
    assert os.path.samefile(shared, tmp_path / "plain" / "fbank80" / f"{first}.npy")
    assert not os.path.samefile(shared, tmp_path / "noisy" / "fbank80" / f"{first}.npy")
    assert not np.allclose(np.load(tmp_path / "noisy" / "fbank80" / f"{first}.npy"), before)
    dev = utts["dev"][0].id
    assert os.path.samefile(tmp_path / "plain" / "fbank80" / f"{dev}.npy",
                            tmp_path / "noisy" / "fbank80" / f"{dev}.npy")
    # back to no augmentation: the link returns, the shared features are unchanged
    prepare_speech.write_data(utts, work, 20, False, data_dir=noisy)
    assert os.path.samefile(shared, tmp_path / "noisy" / "fbank80" / f"{first}.npy")
    np.testing.assert_array_equal(np.load(shared), before)
    assert plain != noisy


def test_pad_silence_lengthens_with_near_zero_energy_at_the_ends(speech, tmp_path):
    clean = augment.read(speech[0])
    n, lead, trail = len(clean), round(0.4 * RATE), round(0.6 * RATE)
    x = run(Plan(lead=0.4, trail=0.6), speech[0], tmp_path)
    assert len(x) == n + lead + trail
    assert np.abs(x[:lead]).max() == 0 and np.abs(x[-trail:]).max() == 0  # digital silence
    np.testing.assert_allclose(x[lead:lead + n] / np.abs(x).max(), clean / np.abs(clean).max(),
                               atol=1e-4)
    # room tone: not silent, 40 dB below the speech
    toned = run(Plan(lead=0.4, trail=0.6, room_tone="pink", room_snr_db=40.0), speech[0],
                tmp_path)
    speech_power = np.mean(toned[lead:lead + n] ** 2)
    for end in (toned[:lead], toned[-trail:]):
        assert 10 * np.log10(speech_power / np.mean(end ** 2)) == pytest.approx(40, abs=1.5)
    # noise SNR refers to the speech, not to the padded copy
    noisy = run(Plan(lead=1.0, trail=1.0, noise="white", snr_db=10.0), speech[0], tmp_path)
    part = noisy[RATE:RATE + n]
    scale = np.dot(part, clean) / np.dot(clean, clean)
    snr = 10 * np.log10(np.mean(clean ** 2) / np.mean((part / scale - clean) ** 2))
    assert snr == pytest.approx(10.0, abs=0.3)


def test_pad_silence_and_vtln_draws_per_copy():
    base = Augmentation(speeds=(0.9, 1.0, 1.1), tempo_jitter=0.1)
    padded = Augmentation(speeds=(0.9, 1.0, 1.1), tempo_jitter=0.1, pad_silence=0.5)
    plans = [augment.copies(f"u{i}", padded, 1) for i in range(40)]
    flat = [p for copies in plans for _, p in copies]
    assert all(0 <= p.lead <= 0.5 and 0 <= p.trail <= 0.5 for p in flat)
    assert len({p.lead for p in flat}) > 100 and not any(p.is_identity() for p in flat)
    toned = [p.room_tone for p in flat if p.room_tone]
    assert 0.3 < len(toned) / len(flat) < 0.7 and set(toned) == set(augment.ROOM_TONES)
    assert all(augment.ROOM_TONE_SNR_DB[0] <= p.room_snr_db <= augment.ROOM_TONE_SNR_DB[1]
               for p in flat if p.room_tone)
    # the other options' draws are those without padding; without it, no silence is added
    assert [p.tempo for _, p in augment.copies("u0", base, 1)] == [p.tempo for _, p in plans[0]]
    assert all(p.lead == p.trail == 0 and p.room_tone is None
               for _, p in augment.copies("u0", base, 1))
    warps = [augment.vtln_warp(Augmentation(vtln=0.1), f"u{i}", 1) for i in range(200)]
    assert 0.9 <= min(warps) < 0.92 and 1.08 < max(warps) <= 1.1 and len(set(warps)) > 100
    assert augment.vtln_warp(Augmentation(), "u0", 1) == 1.0
    assert augment.vtln_warp(Augmentation(vtln=0.1), "u0", 1) == warps[0]  # its own stream
    for bad, match in [(Augmentation(pad_silence=-1), "--pad-silence -1: must be 0..5"),
                       (Augmentation(vtln=0.5), "--vtln 0.5: must be 0..0.2")]:
        with pytest.raises(ValueError, match=match):
            bad.check()


def test_vtln_warps_the_features_and_keys_the_cache(speech, tmp_path):
    """A warped copy has other features than the unwarped utterance, under another name in the
    shared feature cache; the unwarped features stay as they were."""
    import os

    from examples.speech_recognition import features

    wav = features.read_wav(speech[0])
    plain = features.fbank(wav)
    for warp in (0.9, 1.1):
        warped = features.fbank(wav, warp)
        assert warped.shape == plain.shape and np.abs(warped - plain).mean() > 0.1
    np.testing.assert_array_equal(features.fbank(wav, 1.0), plain)
    assert features.feature_file("a") == "a.npy" != features.feature_file("a", 0.953) == \
        "a-vtln0.953.npy"
    utts = {"train": prepare_speech.utterances(["flite-awb"], {"digits": 2}, [], seed=0,
                                               split="train")}
    work = str(tmp_path)
    prepare_speech.write_data(utts, work, 20, False, data_dir=str(tmp_path / "plain"))
    vtln = Augmentation(vtln=0.1)
    prepare_speech.write_data(utts, work, 20, False, data_dir=str(tmp_path / "vtln"),
                              augmentation=vtln)
    rows = prepare_speech.features.read_manifest(str(tmp_path / "vtln" / "train.tsv"))
    for row, utt in zip(rows, utts["train"]):
        warp = augment.vtln_warp(vtln, utt.id, 1)
        assert warp != 1 and row["audio"] == f"fbank80/{utt.id}-vtln{warp:.3f}.npy"
        cached = tmp_path / "fbank80" / f"{utt.id}-vtln{warp:.3f}.npy"
        assert os.path.samefile(cached, tmp_path / "vtln" / row["audio"])
        np.testing.assert_allclose(np.load(cached), features.fbank(features.read_wav(
            str(tmp_path / "wav" / f"{utt.id}.wav")), warp))
        assert not np.allclose(np.load(cached), np.load(tmp_path / "fbank80" / f"{utt.id}.npy"))
    plain_rows = prepare_speech.features.read_manifest(str(tmp_path / "plain" / "train.tsv"))
    assert [r["audio"] for r in plain_rows] == [f"fbank80/{u.id}.npy" for u in utts["train"]]


def test_noise_only_audio(tmp_path):
    silent, noise = str(tmp_path / "s.wav"), str(tmp_path / "n.wav")
    augment.write_noise_only(silent, "silence", 0.5, random.Random(0))
    augment.write_noise_only(noise, "pink", 1.25, random.Random(0))
    assert not augment.read(silent).any() and len(augment.read(silent)) == 8000
    x = augment.read(noise)
    assert len(x) == 20000 and 20 * np.log10(np.abs(x).max()) == pytest.approx(-1, abs=0.05)
    assert (np.abs(x) > 0.01).mean() > 0.5  # noise throughout, not a click
    with pytest.raises(ValueError, match="noise-only kind 'babble'; allowed: silence, white"):
        augment.write_noise_only(noise, "babble", 1, random.Random(0))
