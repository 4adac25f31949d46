"""The real-speech dev set builder (prepare_real_dev.py) on fake packages laid out as the Debian
packages lay them: short tones stand in for the recordings, so no network is needed."""
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from examples.speech_recognition import features, prepare_real_dev as real

PS = real.POCKETSPHINX
KT = real.KTUBERLING
KL = real.KLETTRES

REPO = Path(__file__).resolve().parents[2]


def tone(path, seconds=0.5, rate=16000, channels=1, fmt=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t)
    x = np.stack([x] * channels, axis=1) if channels > 1 else x
    if path.endswith(".raw"):
        sf.write(path, x, rate, format="RAW", subtype="PCM_16", endian="LITTLE")
    else:
        sf.write(path, x, rate, format=fmt)


def text(path, body):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(body)


def fake_packages(root):
    """``{package: its unpacked tree}``, each a few files of the real package's layout."""
    trees = {p: os.path.join(root, p) for p in real.PACKAGES}
    ps = os.path.join(trees["pocketsphinx-testdata"], PS)
    tone(f"{ps}/tidigits/dhd.2934z.raw", seconds=1.0)
    text(f"{ps}/tidigits/tidigits.lsn", "two nine three four zero (man.ah.2934za)\n"
                                        "one (man.ah.1b)\n")
    tone(f"{ps}/goforward.raw")
    text(f"{ps}/goforward.gram", "#JSGF V1.0;\ngrammar goforward;\n\n"
                                 "public <move> = go forward ten meters;\n\n"
                                 "public <move2> = go <direction> <distance> [meter | meters];\n")
    tone(f"{ps}/numbers.raw")
    for i in (1, 4):
        tone(f"{ps}/cards/00{i}.wav")
    text(f"{ps}/cards/cards.transcription", "<s> ten of clubs  </s> (001)\n"
                                            "<s> five five  </s> (004)\n")
    tone(f"{ps}/librivox/austen-0880.wav")
    text(f"{ps}/librivox/transcription", "<s> he was not an ill disposed young man </s> "
                                         "(austen-0880)\n")
    alsa = os.path.join(trees["alsa-utils"], real.ALSA)
    tone(f"{alsa}/Front_Left.wav", rate=48000, channels=2)
    tone(f"{alsa}/Noise.wav", rate=48000)
    kt = os.path.join(trees["ktuberling-data"], KT)
    for name in ("ball", "egypt_palmtree", "pizzeria_broccolli", "tv_tree"):
        tone(f"{kt}/en/{name}.ogg", rate=44100, channels=2, fmt="OGG")
    text(f"{kt}/en.soundtheme", '<language code="en">\n'
         '    <sound name="ball" file="en/ball.ogg" />\n'
         '    <sound name="egypt_palmtree" file="en/egypt_palmtree.ogg" />\n'
         '    <sound name="pizzeria_brocolli" file="en/pizzeria_broccolli.ogg" />\n'
         '</language>\n')
    kl = os.path.join(trees["klettres-data"], KL)
    for name in ("alpha/A", "syllab/car", "syllab/th"):
        tone(f"{kl}/en/{name}.ogg", rate=44100, fmt="OGG")
    text(f"{kl}/en/sounds.xml", "<klettres><language code=\"en\"><alphabet>\n"
         '<sound name="A" file="en/alpha/A.ogg" />\n</alphabet><syllables>\n'
         '<sound name="CAR" file="en/syllab/car.ogg" />\n'
         '<sound name="TH" file="en/syllab/th.ogg" />\n</syllables></language></klettres>\n')
    return trees


def merged(trees, root):
    tree = os.path.join(root, "tree")
    for t in trees.values():
        shutil.copytree(t, tree, dirs_exist_ok=True)
    return tree


EXPECTED = {  # id: (transcript, group)
    "real-tidigits-dhd-2934z": ("two nine three four zero", "digits"),
    "real-goforward": ("go forward ten meters", "number words"),
    "real-cards-001": ("ten of clubs", "number words"),
    "real-cards-004": ("five five", "digits"),
    "real-librivox-austen-0880": ("he was not an ill disposed young man", "other"),
    "real-alsa-Front_Left": ("front left", "other"),
    "real-alsa-Noise": ("", "other"),
    "real-ktuberling-ball": ("ball", "other"),
    "real-ktuberling-egypt_palmtree": ("palm tree", "other"),
    "real-ktuberling-pizzeria_brocolli": ("broccoli", "other"),
    "real-klettres-alpha-a": ("a", "other"),
    "real-klettres-syllab-car": ("car", "other"),
}


def test_transcripts_groups_features_and_what_is_left_out(tmp_path, capsys):
    tree = merged(fake_packages(str(tmp_path / "pkgs")), str(tmp_path))
    data = tmp_path / "data"
    data.mkdir()
    counts = real.build(tree, str(tmp_path / "work"), str(data))
    assert counts == {"digits": 2, "number words": 2, "other": 8}
    out = capsys.readouterr().out
    for left_out in ("numbers.raw: no transcript", "tv_tree.ogg: not named in en.soundtheme",
                     "th.ogg: 'TH' is a letter sound"):
        assert left_out in out
    lines = (data / "dev_real.tsv").read_text().splitlines()
    assert lines[0].split("\t") == list(features.COLUMNS) + ["group"]
    rows = features.read_manifest(str(data / "dev_real.tsv"))
    assert {r["id"]: (r["tgt_text"], r["group"]) for r in rows} == EXPECTED
    for r in rows:
        feats = np.load(data / r["audio"])
        assert feats.shape == (int(r["n_frames"]), 80)
        samples, rate = sf.read(tmp_path / "work" / "wav_real" / f"{r['id']}.wav")
        assert rate == 16000 and samples.ndim == 1
        assert np.abs(samples).max() == pytest.approx(10 ** (-1 / 20), abs=0.01)
    n = {r["id"]: int(r["n_frames"]) for r in rows}
    assert n["real-tidigits-dhd-2934z"] == 1 + (16000 - 400) // 160  # 1 s of 16-bit 16 kHz
    assert n["real-alsa-Front_Left"] == 1 + (8000 - 400) // 160  # 48 kHz stereo -> 16 kHz


def test_characters_no_training_transcript_has_are_left_out(tmp_path, capsys):
    tree = merged(fake_packages(str(tmp_path / "pkgs")), str(tmp_path))
    data = tmp_path / "data"
    data.mkdir()
    features.write_manifest(str(data / "train.tsv"), [{
        "id": "x", "audio": "fbank80/x.npy", "n_frames": 1, "speaker": "v",
        "tgt_text": "zero one two three four five six seven eight nine ten go forward"}])
    real.build(tree, str(tmp_path / "work"), str(data))
    ids = {r["id"] for r in features.read_manifest(str(data / "dev_real.tsv"))}
    assert "real-tidigits-dhd-2934z" in ids and "real-cards-004" in ids
    assert "real-ktuberling-ball" not in ids  # 'b', 'l' in no training transcript
    assert "'ball' has 'bl', in no training transcript" in capsys.readouterr().out


def test_a_digit_code_the_lsn_reads_otherwise_is_refused(tmp_path):
    tree = merged(fake_packages(str(tmp_path / "pkgs")), str(tmp_path))
    text(f"{tree}/{PS}/tidigits/tidigits.lsn", "two nine three four oh (man.ah.2934za)\n")
    with pytest.raises(ValueError, match="digit code '2934z' reads 'two nine three four zero'"):
        real.recordings(tree)


def test_download_with_apt_get_and_unpack_with_dpkg(tmp_path):
    """main() without --tree: ``apt-get download`` (a stand-in that copies .deb files built with
    dpkg-deb) and ``dpkg -x`` build the same set."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("needs dpkg-deb")
    trees = fake_packages(str(tmp_path / "pkgs"))
    repo = tmp_path / "repo"
    repo.mkdir()
    for package, tree in trees.items():
        os.makedirs(f"{tree}/DEBIAN")
        text(f"{tree}/DEBIAN/control", f"Package: {package}\nVersion: 1:1.0-1\n"
             "Architecture: all\nMaintainer: x <x@example.org>\nDescription: test\n")
        subprocess.run(["dpkg-deb", "-b", tree, str(repo / f"{package}_1%3a1.0-1_all.deb")],
                       check=True, capture_output=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    apt = bin_dir / "apt-get"
    apt.write_text(f'#!/bin/sh\n[ "$1" = download ] && cp {repo}/"$3"_*.deb .\n')
    apt.chmod(apt.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    work = tmp_path / "work"
    done = subprocess.run([sys.executable, "-m", "examples.speech_recognition.prepare_real_dev",
                           "--workdir", str(work)], env=env, capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "12 utterances" in done.stdout and "digits 2, number words 2, other 8" in done.stdout
    rows = features.read_manifest(str(work / "data" / "dev_real.tsv"))
    assert {r["id"] for r in rows} == set(EXPECTED)
    apt.write_text("#!/bin/sh\necho 'E: Unable to locate package' >&2\nexit 100\n")
    shutil.rmtree(work / "debs")
    done = subprocess.run([sys.executable, "-m", "examples.speech_recognition.prepare_real_dev",
                           "--workdir", str(work)], env=env, capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "prepare_real_dev.py: error: apt-get download pocketsphinx-testdata failed (E: Unable "
        "to locate package); run 'apt-get update' as root, or unpack the packages "
        "pocketsphinx-testdata alsa-utils ktuberling-data klettres-data with dpkg -x and pass "
        "--tree"]


def test_wer_by_group_column():
    from examples.speech_recognition import wer_by_voice

    rows = [{"tgt_text": "five five", "speaker": "cards", "group": "digits"},
            {"tgt_text": "ten of clubs", "speaker": "cards", "group": "number words"},
            {"tgt_text": "ball", "speaker": "ktuberling", "group": "other"}]
    pairs = {0: ("five five", "five"), 1: ("ten of clubs", "ten of clubs"), 2: ("ball", "call")}
    per_group, total = wer_by_voice.wer_by_speaker(rows, pairs, "group")
    assert per_group == {"digits": (50.0, 2, 1), "number words": (0.0, 3, 1),
                         "other": (100.0, 1, 1)}
    assert total == (pytest.approx(100 * 2 / 6), 6, 3)
