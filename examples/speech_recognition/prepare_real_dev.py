#!/usr/bin/env python3
"""A dev set of real people's speech, from recordings with known words in Debian packages.

The packages are fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into
``--debs`` (nothing is installed; ``--tree`` uses an unpacked tree instead). Recordings and
their transcripts, each checked against the package's own text files:

- ``pocketsphinx-testdata`` (``usr/share/pocketsphinx/test/data/``): ``tidigits/dhd.2934z.raw``,
  the one TIDIGITS recording with audio (the rest are features), read from its file name's
  digit code (``z`` zero, ``o`` oh) as ``tidigits.lsn`` reads the same code of another speaker;
  ``goforward.raw``, the sentence of ``goforward.gram``'s first rule; ``cards/*.wav`` from
  ``cards.transcription``; ``librivox/*.wav`` from ``librivox/transcription``. ``.raw`` files
  are headerless 16 kHz 16-bit mono. ``numbers.raw`` and ``something.raw`` have no transcript
  and are left out.
- ``alsa-utils`` (``usr/share/sounds/alsa/``): spoken channel names, ``Front_Left.wav`` ->
  ``front left``; ``Noise.wav`` is noise: an empty transcript.
- ``ktuberling-data`` (``usr/share/ktuberling/sounds/``): the English words of
  ``en.soundtheme``, the sound name without its theme prefix (``egypt_camel`` -> ``camel``),
  spelt as words (:data:`KTUBERLING_WORDS`); files the theme does not name are left out.
- ``klettres-data`` (``usr/share/klettres/``): the English letter names of ``en/sounds.xml``
  (``A`` -> ``a``) and its syllables that are words (``CAR`` -> ``car``); the letter groups
  :data:`KLETTRES_NOT_WORDS` are sounds, not words, and are left out.

Every recording becomes ``WORKDIR/wav_real/<id>.wav`` as a training WAV is made (channels
averaged, 16 kHz, peak -1 dBFS: :func:`features.load_audio`), features
``DATA/fbank80/<id>.npy`` and one row of ``DATA/dev_real.tsv``: the columns of
:data:`features.COLUMNS` (``speaker``: the recording's source) and ``group``, one of
:data:`GROUPS` (:func:`group`). Transcripts with a character that no ``DATA/train.tsv``
transcript has (the vocabulary would make it ``<unk>``) are left out, and said so.

Run from the repository root::

    python -m examples.speech_recognition.prepare_real_dev --workdir WORK --data-dir DATA
"""
import argparse
import csv
import glob
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import soundfile as sf

from examples.speech_recognition import features, number_words

PACKAGES = ("pocketsphinx-testdata", "alsa-utils", "ktuberling-data", "klettres-data")
POCKETSPHINX = "usr/share/pocketsphinx/test/data"
ALSA = "usr/share/sounds/alsa"
KTUBERLING = "usr/share/ktuberling/sounds"
KLETTRES = "usr/share/klettres"
TIDIGITS_CODE = {"z": "zero", "o": "oh", **{str(d): number_words.ONES[d] for d in range(10)}}
# en.soundtheme's names (theme prefix removed) that are not spelt as the word said
KTUBERLING_WORDS = {"palmtree": "palm tree", "sphynx": "sphinx", "brocolli": "broccoli",
                    "fallingstar": "falling star"}
KLETTRES_NOT_WORDS = ("aw", "ch", "th")
DIGITS = set(TIDIGITS_CODE.values())
NUMBER_WORDS = set(number_words.ONES + number_words.TENS[2:]) | {"hundred", "thousand",
                                                                  "million"}
GROUPS = ("digits", "number words", "other")
COLUMNS = features.COLUMNS + ("group",)
SOUND = re.compile(r'<sound\s+name="([^"]+)"\s+file="([^"]+)"')


@dataclass(frozen=True)
class Recording:
    """One recording: ``path`` inside the unpacked tree, ``text`` its transcript ("" for
    noise), ``speaker`` its source."""
    id: str
    path: str
    text: str
    speaker: str


def group(text: str) -> str:
    """``digits``: every word a digit (``zero`` .. ``nine``, ``oh``); ``number words``: some
    word a number word (``seven of clubs``, ``go forward ten meters``); ``other``: the rest
    (noise's empty transcript included)."""
    words = text.split()
    if words and set(words) <= DIGITS:
        return "digits"
    return "number words" if set(words) & NUMBER_WORDS else "other"


def _read(tree: str, path: str) -> str:
    with open(os.path.join(tree, path), encoding="utf-8") as f:
        return f.read()


def _sphinx_transcripts(text: str) -> Dict[str, str]:
    """``{utterance id: words}`` from sphinx transcription lines ``<s> w w </s> (id)``."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(?:<s>)?(.*?)(?:</s>)?\s*\(([^()]+)\)\s*$", line)
        if m:
            out[m.group(2)] = " ".join(m.group(1).split())
    return out


def pocketsphinx_recordings(tree: str) -> Tuple[List[Recording], List[str]]:
    """``(recordings, left out with the reason)`` of pocketsphinx-testdata."""
    base = POCKETSPHINX
    out, dropped = [], []
    lsn = _sphinx_transcripts(_read(tree, f"{base}/tidigits/tidigits.lsn"))
    by_code = {key.split(".")[-1][:-1]: words for key, words in lsn.items()}
    for path in sorted(glob.glob(os.path.join(tree, base, "tidigits", "*.raw"))):
        name = os.path.basename(path)[:-len(".raw")]
        code = name.split(".")[-1]
        words = " ".join(TIDIGITS_CODE[c] for c in code)
        if code in by_code and by_code[code] != words:
            raise ValueError(f"{path}: digit code {code!r} reads {words!r} but tidigits.lsn "
                             f"has {by_code[code]!r}")
        out.append(Recording(f"real-tidigits-{name.replace('.', '-')}",
                             os.path.relpath(path, tree), words, f"tidigits-{name.split('.')[0]}"))
    gram = re.search(r"public\s+<\w+>\s*=\s*([a-z ]+);", _read(tree, f"{base}/goforward.gram"))
    out.append(Recording("real-goforward", f"{base}/goforward.raw", gram.group(1).strip(),
                         "goforward"))
    for folder, listing, speaker in (("cards", "cards.transcription", "cards"),
                                     ("librivox", "transcription", "librivox")):
        for utt, words in sorted(_sphinx_transcripts(
                _read(tree, f"{base}/{folder}/{listing}")).items()):
            out.append(Recording(f"real-{folder}-{utt}", f"{base}/{folder}/{utt}.wav", words,
                                 speaker))
    for name in ("numbers.raw", "something.raw"):
        if os.path.exists(os.path.join(tree, base, name)):
            dropped.append(f"{base}/{name}: no transcript in the package")
    return out, dropped


def alsa_recordings(tree: str) -> List[Recording]:
    """The spoken channel names of alsa-utils (``Noise.wav``: empty transcript)."""
    out = []
    for path in sorted(glob.glob(os.path.join(tree, ALSA, "*.wav"))):
        name = os.path.basename(path)[:-len(".wav")]
        text = "" if name == "Noise" else name.replace("_", " ").lower()
        out.append(Recording(f"real-alsa-{name}", os.path.relpath(path, tree), text, "alsa"))
    return out


def ktuberling_recordings(tree: str) -> Tuple[List[Recording], List[str]]:
    """The English words of ktuberling's ``en.soundtheme``; files it does not name are left
    out."""
    named = SOUND.findall(_read(tree, f"{KTUBERLING}/en.soundtheme"))
    out = []
    for name, file in named:
        word = name.split("_", 1)[-1]
        out.append(Recording(f"real-ktuberling-{name}", f"{KTUBERLING}/{file}",
                             KTUBERLING_WORDS.get(word, word), "ktuberling"))
    listed = {file for _, file in named}
    dropped = [f"{os.path.relpath(p, tree)}: not named in en.soundtheme, so no transcript"
               for p in sorted(glob.glob(os.path.join(tree, KTUBERLING, "en", "*.ogg")))
               if os.path.relpath(p, os.path.join(tree, KTUBERLING)) not in listed]
    return out, dropped


def klettres_recordings(tree: str) -> Tuple[List[Recording], List[str]]:
    """English letter names and word syllables of klettres' ``en/sounds.xml``."""
    out, dropped = [], []
    for name, file in SOUND.findall(_read(tree, f"{KLETTRES}/en/sounds.xml")):
        text = name.lower()
        if text in KLETTRES_NOT_WORDS:
            dropped.append(f"{KLETTRES}/{file}: {name!r} is a letter sound, not a word")
            continue
        kind = "alpha" if "/alpha/" in file else "syllab"
        out.append(Recording(f"real-klettres-{kind}-{text}", f"{KLETTRES}/{file}", text,
                             f"klettres-{kind}"))
    return out, dropped


def recordings(tree: str) -> Tuple[List[Recording], List[str]]:
    """Every recording of the unpacked packages, and what was left out (one line each)."""
    found, dropped = [], []
    for source in (pocketsphinx_recordings, ktuberling_recordings, klettres_recordings):
        rec, drop = source(tree)
        found += rec
        dropped += drop
    return found + alsa_recordings(tree), dropped


def fetch(deb_dir: str, packages: Sequence[str] = PACKAGES) -> str:
    """``apt-get download`` each package missing from ``deb_dir`` (after ``apt-get update`` if
    root and the first try fails) and ``dpkg -x`` it into ``deb_dir/tree``; returns the tree."""
    os.makedirs(deb_dir, exist_ok=True)
    tree = os.path.join(deb_dir, "tree")
    for package in packages:
        if not glob.glob(os.path.join(deb_dir, f"{package}_*.deb")):
            download = ["apt-get", "download", "-q", package]
            done = subprocess.run(download, cwd=deb_dir, capture_output=True, text=True)
            if done.returncode != 0 and os.geteuid() == 0:
                subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
                done = subprocess.run(download, cwd=deb_dir, capture_output=True, text=True)
            if done.returncode != 0:
                error = (done.stderr.strip().splitlines() or ["failed"])[-1]
                raise RuntimeError(f"apt-get download {package} failed ({error}); run "
                                   f"'apt-get update' as root, or unpack the packages "
                                   f"{' '.join(packages)} with dpkg -x and pass --tree")
        stamp = os.path.join(tree, f".{package}")
        if not os.path.exists(stamp):
            deb = sorted(glob.glob(os.path.join(deb_dir, f"{package}_*.deb")))[-1]
            subprocess.run(["dpkg", "-x", deb, tree], check=True)
            open(stamp, "w").close()
    return tree


def to_wav(source: str, wav: str) -> None:
    """``source`` (a sound file, or a headerless 16 kHz 16-bit mono ``.raw``) as a 16 kHz mono
    16-bit WAV at -1 dBFS (:func:`features.load_audio`); kept if newer than ``source``."""
    if os.path.exists(wav) and os.path.getmtime(wav) >= os.path.getmtime(source):
        return
    if source.endswith(".raw"):
        samples, _ = sf.read(source, samplerate=features.SAMPLE_RATE, channels=1,
                             format="RAW", subtype="PCM_16", endian="LITTLE")
        sf.write(wav, samples, features.SAMPLE_RATE, subtype="PCM_16")
        source = wav
    audio = features.load_audio(source)
    sf.write(wav, audio[0].numpy(), features.SAMPLE_RATE, subtype="PCM_16")


def training_characters(data_dir: str) -> str:
    """Characters of ``data_dir/train.tsv``'s transcripts, "" if there is none."""
    path = os.path.join(data_dir, "train.tsv")
    if not os.path.exists(path):
        return ""
    return "".join(sorted(set("".join(r["tgt_text"] for r in features.read_manifest(path)))))


def write_manifest(path: str, rows: Sequence[Dict[str, object]]) -> None:
    """A TSV manifest with :data:`COLUMNS`, written as :func:`features.write_manifest` writes
    its columns."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, delimiter="\t", quoting=csv.QUOTE_NONE,
                                escapechar="\\", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def build(tree: str, workdir: str, data_dir: str, name: str = "dev_real") -> Dict[str, int]:
    """Write ``data_dir/<name>.tsv`` and its features from the unpacked ``tree``; prints what
    was left out and returns ``{group: utterances}``."""
    found, dropped = recordings(tree)
    missing = [r.path for r in found if not os.path.isfile(os.path.join(tree, r.path))]
    if missing:
        raise FileNotFoundError(f"{len(missing)} recordings named by the packages' text "
                                f"files are not in {tree}, first {missing[0]}")
    chars = training_characters(data_dir)
    if chars:
        unseen = [(r, sorted(set(r.text) - set(chars))) for r in found]
        dropped += [f"{r.path}: {r.text!r} has {''.join(c)!r}, in no training transcript"
                    for r, c in unseen if c]
        found = [r for r, c in unseen if not c]
    wav_dir = os.path.join(workdir, "wav_real")
    os.makedirs(wav_dir, exist_ok=True)
    wavs = [os.path.join(wav_dir, f"{r.id}.wav") for r in found]
    for r, wav in zip(found, wavs):
        to_wav(os.path.join(tree, r.path), wav)
    lengths = features.write_features(wavs, [r.id for r in found],
                                      os.path.join(data_dir, "fbank80"))
    write_manifest(os.path.join(data_dir, f"{name}.tsv"), [
        {"id": r.id, "audio": f"fbank80/{r.id}.npy", "n_frames": n, "tgt_text": r.text,
         "speaker": r.speaker, "group": group(r.text)} for r, n in zip(found, lengths)])
    for line in dropped:
        print(f"left out: {line}")
    counts = {g: sum(group(r.text) == g for r in found) for g in GROUPS}
    minutes = sum(lengths) / 100 / 60
    print(f"{name:<15} {len(found):>5} utterances, {minutes:6.1f} min of real speech: "
          + ", ".join(f"{g} {n}" for g, n in counts.items())
          + f" ({os.path.join(data_dir, name + '.tsv')})", flush=True)
    return counts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default=os.path.join(os.path.dirname(__file__), "work"),
                    help="the WAV files go to WORKDIR/wav_real (default: %(default)s)")
    ap.add_argument("--data-dir", default=None,
                    help="the fairseq data directory to add dev_real.tsv to "
                         "(default: WORKDIR/data)")
    ap.add_argument("--debs", default=None,
                    help="where the .deb files are downloaded and unpacked "
                         "(default: WORKDIR/debs)")
    ap.add_argument("--tree", default=None,
                    help="an unpacked tree of the packages to use instead of downloading")
    args = ap.parse_args(argv)
    data_dir = args.data_dir or os.path.join(args.workdir, "data")
    if args.tree and not os.path.isdir(args.tree):
        sys.exit(f"prepare_real_dev.py: error: --tree {args.tree!r}: no such directory; must "
                 f"hold the unpacked packages {' '.join(PACKAGES)}")
    try:
        tree = args.tree or fetch(args.debs or os.path.join(args.workdir, "debs"))
        os.makedirs(data_dir, exist_ok=True)
        build(tree, args.workdir, data_dir)
    except (RuntimeError, FileNotFoundError, ValueError) as err:
        sys.exit(f"prepare_real_dev.py: error: {err}")


if __name__ == "__main__":
    main()
