"""Features, manifests, vocabulary and ``config.yaml`` in the layout of fairseq's S2T recipes.

A data directory written here is read by ``fairseq-train DATA --task speech_to_text`` (or the
plugin's ``durnn_speech_to_text``, which checks the rows first):

- ``fbank80/<id>.npy``: 80-dim log-mel filterbanks, float32 ``(n_frames, 80)``, 25 ms windows
  every 10 ms (:func:`fbank`; ``fbank80/<id>-vtln<W>.npy`` with the frequency axis warped by a
  factor ``W``, :func:`feature_file`), *before* normalisation: utterance CMVN,
  ``x <- (x - mean_t x) / std_t x`` per feature dimension, is applied by fairseq's
  ``utterance_cmvn`` feature transform named in ``config.yaml``, as in fairseq's recipes.
- ``<split>.tsv``: manifests with columns ``id audio n_frames tgt_text speaker``; ``audio`` is
  relative to ``audio_root`` in ``config.yaml``.
- ``spm_unigram<V>.model`` / ``.txt``: a sentencepiece unigram model trained on the train
  transcripts and its fairseq dictionary (pieces other than the 4 specials, ``piece 1`` per line).
- ``config.yaml``: vocabulary, sentencepiece tokenizer, 1 x 80 input, transforms, optional
  SpecAugment on the train split.
- ``gcmvn.npz`` and ``config_gcmvn.yaml`` (:func:`write_gcmvn`): global CMVN for streaming
  models (``fairseq-train DATA --config-yaml config_gcmvn.yaml``), ``x <- (x - mean) / std``
  per feature dimension with the statistics of every frame of the train split (fairseq's
  ``global_cmvn`` transform), since a stream has no utterance to average over. Written by
  ``prepare_speech.py``; for an existing data directory::

      python -m examples.speech_recognition.features gcmvn DATA
"""
import argparse
import csv
import os
import shutil
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import sentencepiece as spm
import soundfile as sf
import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional
import yaml

N_MELS = 80
SAMPLE_RATE = 16000
COLUMNS = ("id", "audio", "n_frames", "tgt_text", "speaker")
SPECIALS = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}  # fairseq Dictionary's indices
GCMVN_STD_FLOOR = 1e-5  # std below this (a constant feature) is raised to it
SPECAUGMENT = {"time_wrap_W": 0, "freq_mask_N": 2, "freq_mask_F": 15,
               "time_mask_N": 2, "time_mask_T": 20, "time_mask_p": 0.2}


def read_wav(path: str) -> torch.Tensor:
    """A 16 kHz mono WAV file as a float tensor ``(1, S)`` in [-1, 1] (via soundfile)."""
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE or samples.shape[1] != 1:
        raise ValueError(f"{path}: {rate} Hz, {samples.shape[1]} channels; "
                         f"must be {SAMPLE_RATE} Hz mono")
    return torch.from_numpy(samples.T.copy())


def load_audio(path: str, peak_normalise: bool = True) -> torch.Tensor:
    """Any sound file soundfile reads (WAV, FLAC, ...; any sample rate, mono or stereo) as the
    training audio is made: channels averaged, resampled to 16 kHz
    (``torchaudio.functional.resample``), peak at -1 dBFS unless ``peak_normalise`` is False
    (the level kept, as a stream has it); float ``(1, S)``."""
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = torch.from_numpy(samples.mean(axis=1))[None]
    if rate != SAMPLE_RATE:
        mono = torchaudio.functional.resample(mono, rate, SAMPLE_RATE)
    peak = mono.abs().max()
    return mono * (10 ** (-1 / 20) / peak) if peak > 0 and peak_normalise else mono


def fbank(waveform: torch.Tensor, vtln_warp: float = 1.0) -> np.ndarray:
    """Kaldi log-mel filterbanks of a ``(1, S)`` waveform in [-1, 1]: ``(n_frames, 80)`` float32,
    ``n_frames = 1 + (S - 400) // 160`` (25 ms window, 10 ms shift, no dither). The waveform is
    scaled to the 16-bit integer range first, as Kaldi and fairseq's recipes do. ``vtln_warp``:
    the mel filters' frequency axis warped by this factor (Kaldi's piecewise-linear VTLN,
    ``vtln_low`` 100 Hz, ``vtln_high`` 500 Hz below Nyquist); 1 leaves it as it is."""
    feats = kaldi.fbank(waveform * 32768, num_mel_bins=N_MELS, sample_frequency=SAMPLE_RATE,
                        dither=0.0, vtln_warp=vtln_warp)
    return feats.numpy().astype(np.float32)


class StreamingFbank:
    """:func:`fbank` of samples that arrive in chunks of any size. Kaldi frames each 25 ms window
    (:data:`WINDOW` samples) every 10 ms (:data:`SHIFT`) from the first sample on (snip_edges),
    frame ``i`` reading samples ``160 i .. 160 i + 399`` and nothing else (no dither), so every
    frame is computed once its window is complete: :meth:`push` returns the new frames
    ``(n, 80)`` float32 and keeps the samples from the next frame's start on. Over any chunking
    the frames returned so far equal ``fbank`` of all samples pushed so far, up to fp32 rounding
    (the mel filters' matrix product rounds differently for a different number of frames:
    about 1e-7 relative)."""
    WINDOW = SAMPLE_RATE * 25 // 1000
    SHIFT = SAMPLE_RATE * 10 // 1000

    def __init__(self):
        self.pending = torch.zeros(0)  # samples from the start of the next frame on

    def push(self, samples) -> np.ndarray:
        """The frames completed by ``samples`` (``(S,)`` floats in [-1, 1], S >= 0)."""
        self.pending = torch.cat([self.pending, torch.as_tensor(samples, dtype=torch.float32)])
        n = 1 + (len(self.pending) - self.WINDOW) // self.SHIFT
        if n <= 0:
            return np.zeros((0, N_MELS), dtype=np.float32)
        frames = fbank(self.pending[None, :self.WINDOW + (n - 1) * self.SHIFT])
        self.pending = self.pending[n * self.SHIFT:].clone()
        return frames


def feature_file(utt_id: str, vtln_warp: float = 1.0) -> str:
    """The name of an utterance's feature file, the cache key of its features:
    ``<id>.npy``, or ``<id>-vtln<warp>.npy`` (3 decimals) for a warped frequency axis."""
    return f"{utt_id}.npy" if vtln_warp == 1 else f"{utt_id}-vtln{vtln_warp:.3f}.npy"


def write_features(wav_paths: Iterable[str], ids: Iterable[str], feat_dir: str,
                   warps: Optional[Iterable[float]] = None) -> List[int]:
    """Write ``feat_dir/<feature_file(id, warp)>`` for every WAV file (kept if newer than the
    WAV file), ``warps`` the VTLN warp factors (default: all 1); returns n_frames."""
    os.makedirs(feat_dir, exist_ok=True)
    lengths = []
    wav_paths, ids = list(wav_paths), list(ids)
    for wav, utt_id, warp in zip(wav_paths, ids, warps or [1.0] * len(ids)):
        path = os.path.join(feat_dir, feature_file(utt_id, warp))
        if os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(wav):
            lengths.append(np.load(path, mmap_mode="r").shape[0])
            continue
        feats = fbank(read_wav(wav), warp)
        np.save(path, feats)
        lengths.append(feats.shape[0])
    return lengths


def write_features_shared(wav_paths: Sequence[str], ids: Sequence[str], feat_dir: str,
                          cache_dir: str, shared: Sequence[bool],
                          warps: Optional[Sequence[float]] = None) -> List[int]:
    """As :func:`write_features` into ``feat_dir``, except that the rows with ``shared[i]``
    are computed once into ``cache_dir`` (which several data directories share; the file name
    holds the VTLN warp, :func:`feature_file`) and hard-linked into ``feat_dir`` (copied where a
    link is impossible). A link into the cache is removed before a row's own features are
    written in its place, so the cache is never overwritten; returns n_frames."""
    lengths = [0] * len(ids)
    warps = list(warps or [1.0] * len(ids))
    own = [i for i in range(len(ids)) if not shared[i]]
    common = [i for i in range(len(ids)) if shared[i]]
    os.makedirs(feat_dir, exist_ok=True)
    paths = lambda d, i: os.path.join(d, feature_file(ids[i], warps[i]))  # noqa: E731
    linked = lambda i: (os.path.exists(paths(feat_dir, i)) and  # noqa: E731
                        os.path.exists(paths(cache_dir, i)) and
                        os.path.samefile(paths(cache_dir, i), paths(feat_dir, i)))
    for i in own:
        if linked(i):
            os.remove(paths(feat_dir, i))
    for rows, target in ((own, feat_dir), (common, cache_dir)):
        for i, n in zip(rows, write_features([wav_paths[i] for i in rows],
                                             [ids[i] for i in rows], target,
                                             [warps[i] for i in rows])):
            lengths[i] = n
    for i in common:
        if not linked(i):
            if os.path.lexists(paths(feat_dir, i)):
                os.remove(paths(feat_dir, i))
            try:
                os.link(paths(cache_dir, i), paths(feat_dir, i))
            except OSError:
                shutil.copy2(paths(cache_dir, i), paths(feat_dir, i))
    return lengths


def write_manifest(path: str, rows: Iterable[Dict[str, object]]) -> int:
    """Write a TSV manifest with :data:`COLUMNS` (fairseq's quoting: none, tab-separated);
    returns the number of rows."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, delimiter="\t", quoting=csv.QUOTE_NONE,
                                escapechar="\\", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            n += 1
    return n


def read_manifest(path: str) -> List[Dict[str, str]]:
    """The rows of a TSV manifest, read as fairseq's ``SpeechToTextDatasetCreator`` reads it."""
    with open(path, encoding="utf-8") as f:
        return [dict(r) for r in csv.DictReader(f, delimiter="\t", quotechar=None,
                                                 doublequote=False, lineterminator="\n",
                                                 quoting=csv.QUOTE_NONE)]


def train_vocab(texts: Iterable[str], prefix: str, vocab_size: int) -> str:
    """Train a sentencepiece unigram model ``prefix.model`` on ``texts`` with fairseq's special
    ids (:data:`SPECIALS`) and write the fairseq dictionary ``prefix.txt``; returns its path.
    ``vocab_size`` is an upper bound (smaller corpora get fewer pieces)."""
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts)), model_prefix=prefix, model_type="unigram",
        vocab_size=vocab_size, hard_vocab_limit=False, character_coverage=1.0,
        bos_id=SPECIALS["<s>"], pad_id=SPECIALS["<pad>"], eos_id=SPECIALS["</s>"],
        unk_id=SPECIALS["<unk>"], num_threads=1, minloglevel=2)
    model = spm.SentencePieceProcessor(model_file=f"{prefix}.model")
    dict_path = f"{prefix}.txt"
    with open(dict_path, "w", encoding="utf-8") as f:
        for i in range(model.get_piece_size()):
            if i not in SPECIALS.values():
                f.write(f"{model.id_to_piece(i)} 1\n")
    return dict_path


def write_config(data_dir: str, spm_prefix: str, specaugment: bool,
                 extra: Optional[Dict] = None) -> str:
    """Write ``data_dir/config.yaml`` (absolute paths: fairseq resolves ``audio`` against
    ``audio_root``); utterance CMVN for every split, SpecAugment after it on train if asked."""
    data_dir = os.path.abspath(data_dir)
    transforms = {"*": ["utterance_cmvn"]}
    config = {
        "vocab_filename": os.path.basename(spm_prefix) + ".txt",
        "input_channels": 1,
        "input_feat_per_channel": N_MELS,
        "audio_root": data_dir,
        "bpe_tokenizer": {"bpe": "sentencepiece",
                          "sentencepiece_model": os.path.abspath(spm_prefix) + ".model"},
        "feature_transforms": transforms,
    }
    if specaugment:
        transforms["_train"] = ["utterance_cmvn", "specaugment"]
        config["specaugment"] = dict(SPECAUGMENT)
    config.update(extra or {})
    path = os.path.join(data_dir, "config.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path


def gcmvn_stats(feature_paths: Iterable[str]) -> Dict[str, np.ndarray]:
    """Mean and standard deviation per feature dimension over every frame of the ``.npy``
    feature files, float32 ``(F,)`` each, in one pass (float64 sums of ``x`` and ``x²``);
    ``std = max(sqrt(E[x²] - mean²), GCMVN_STD_FLOOR)``."""
    count, total, squares = 0, 0.0, 0.0
    for path in feature_paths:
        feats = np.load(path).astype(np.float64)
        count += feats.shape[0]
        total = total + feats.sum(0)
        squares = squares + np.square(feats).sum(0)
    if count == 0:
        raise ValueError("no feature frames to compute global CMVN statistics from")
    mean = total / count
    std = np.maximum(np.sqrt(np.maximum(squares / count - mean ** 2, 0.0)), GCMVN_STD_FLOOR)
    return {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}


def write_gcmvn(data_dir: str, split: str = "train") -> str:
    """Write ``data_dir/gcmvn.npz`` (:func:`gcmvn_stats` of ``split``'s feature files, keys
    ``mean`` and ``std``) and ``data_dir/config_gcmvn.yaml``: ``config.yaml`` with
    ``utterance_cmvn`` replaced by ``global_cmvn`` in every split's transforms and
    ``global_cmvn: {stats_npz_path: <absolute path of gcmvn.npz>}``; returns the config's
    path."""
    data_dir = os.path.abspath(data_dir)
    with open(os.path.join(data_dir, "config.yaml"), encoding="utf-8") as f:
        config = yaml.safe_load(f)
    root = config.get("audio_root") or data_dir
    rows = read_manifest(os.path.join(data_dir, f"{split}.tsv"))
    for row in rows:
        if not row["audio"].endswith(".npy"):
            raise ValueError(f"{split}.tsv row {row['id']}: audio {row['audio']!r}; global CMVN "
                             "statistics are computed from .npy feature files only")
    stats = gcmvn_stats(os.path.join(root, row["audio"]) for row in rows)
    npz = os.path.join(data_dir, "gcmvn.npz")
    np.savez(npz, **stats)
    config["feature_transforms"] = {
        name: ["global_cmvn" if t == "utterance_cmvn" else t for t in transforms]
        for name, transforms in config.get("feature_transforms", {}).items()}
    config["global_cmvn"] = {"stats_npz_path": npz}
    path = os.path.join(data_dir, "config_gcmvn.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m examples.speech_recognition.features",
        description="gcmvn DATA: write DATA/gcmvn.npz and DATA/config_gcmvn.yaml (global CMVN "
                    "from every frame of the train split)")
    commands = parser.add_subparsers(dest="command", required=True)
    gcmvn = commands.add_parser("gcmvn", help="write gcmvn.npz and config_gcmvn.yaml")
    gcmvn.add_argument("data", help="a data directory with config.yaml and the split's .tsv")
    gcmvn.add_argument("--split", default="train", help="the split whose frames are averaged")
    args = parser.parse_args(argv)
    for name in ("config.yaml", f"{args.split}.tsv"):
        if not os.path.isfile(os.path.join(args.data, name)):
            parser.error(f"{args.data}: no {name}; DATA must be a data directory written by "
                         "prepare_speech.py")
    print(f"global CMVN: {write_gcmvn(args.data, args.split)}")


if __name__ == "__main__":
    main()
