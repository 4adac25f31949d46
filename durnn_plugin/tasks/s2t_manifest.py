"""Row checks for fairseq speech-to-text manifests (``SPLIT.tsv``: ``id audio n_frames tgt_text``).

Every row is checked before training or decoding starts; each bad row gives one line naming the
TSV file, its line number and the row's id, what is wrong (the first problem found) and what is
allowed:

- *skipped, with a warning* (the rest of the split is used): an empty ``tgt_text`` where none
  is allowed, a ``tgt_text`` of blanks only or none at all (a row with too few columns), and a
  feature matrix shorter than ``min_frames`` (the convolutional subsampler's receptive field,
  :func:`subsampler_receptive_field`);
- *an error* (:class:`~durnn_plugin.errors.InvalidDataError`, raised after every row has
  been checked, so all such rows are listed): ``audio`` that is missing, unreadable or not a
  feature matrix / sound file, and ``n_frames`` that is not an integer or differs from the file.
  These point at a broken data directory, which silently dropping rows would hide.

An empty ``tgt_text`` is a transcript with no words: audio of noise or silence, whose right
answer is nothing. It is allowed where ``allow_empty`` says so (the splits listed in
``config.yaml``'s :data:`ALLOW_EMPTY_KEY`), and skipped elsewhere, where it more likely means a
lost transcript.

``audio`` is what fairseq's ``get_features_or_waveform`` reads: a ``.npy`` feature file
``(n_frames, feat_dim)``, a ``.wav``/``.flac``/``.ogg`` file (``n_frames`` = its samples), or a
``zip_path:offset:length`` slice holding either, relative to ``audio_root``.
"""
import io
import logging
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
from fairseq.data.audio.audio_utils import (
    FEATURE_OR_SF_AUDIO_FILE_EXTENSIONS, is_npy_data, is_sf_audio_data, read_from_stored_zip)

from ..errors import InvalidDataError

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("id", "audio", "n_frames", "tgt_text")
ALLOW_EMPTY_KEY = "allow_empty_tgt_text"  # config.yaml: the splits whose rows may have no words
AUDIO_ALLOWED = ("must be an existing .npy feature file, sound file (.wav, .flac, .ogg) or "
                 "zip:offset:length slice of one, relative to audio_root")


def subsampler_receptive_field(kernel_sizes: Sequence[int], stride: int = 2) -> int:
    """Input frames seen by one output frame of a stack of 1-D convolutions, each with stride
    ``stride`` (fairseq's ``Conv1dSubsampler``): ``1 + sum_i (k_i - 1) * stride^i``; kernels
    ``5,5`` give 13 frames (130 ms of 10 ms frames)."""
    return 1 + sum((k - 1) * stride ** i for i, k in enumerate(kernel_sizes))


@dataclass(frozen=True)
class BadRow:
    """One bad manifest row; ``str()`` is its one-line message."""
    tsv: str
    line: int
    row_id: str
    problem: str
    fatal: bool

    def __str__(self):
        action = "" if self.fatal else " (row skipped)"
        return f"{self.tsv} line {self.line} (id {self.row_id!r}): {self.problem}{action}"


def _split_audio(audio: str) -> Tuple[str, List[int]]:
    """``(file, [])`` for a ``.npy``/sound file, ``(zip file, [offset, length])`` for a
    ``file:offset:length`` slice; ``ValueError`` for anything else."""
    if os.path.splitext(audio)[1] in FEATURE_OR_SF_AUDIO_FILE_EXTENSIONS:
        return audio, []
    parts = audio.split(":")
    if len(parts) == 3 and parts[0] and parts[1].isdigit() and parts[2].isdigit():
        return parts[0], [int(parts[1]), int(parts[2])]
    raise ValueError(audio)


def _source_length(file_path: str, slice_ptr: List[int]) -> Tuple[int, bool]:
    """``(length, is_features)``: frames of the feature matrix (first dimension) or samples of
    the sound file. Raises ``OSError``/``ValueError``/``RuntimeError`` naming what is wrong."""
    if not os.path.isfile(file_path):
        raise FileNotFoundError(file_path)
    if slice_ptr:
        data = read_from_stored_zip(file_path, slice_ptr[0], slice_ptr[1])
        if len(data) != slice_ptr[1] or len(data) < 3:
            raise ValueError(f"slice {slice_ptr} lies outside {file_path}")
        if is_npy_data(data):
            return _feature_frames(np.load(io.BytesIO(data))), True
        if is_sf_audio_data(data):
            return sf.info(io.BytesIO(data)).frames, False
        raise ValueError("slice holds neither .npy data nor a sound file")
    if file_path.endswith(".npy"):
        return _feature_frames(np.load(file_path, mmap_mode="r")), True
    return sf.info(file_path).frames, False


def _feature_frames(feats: np.ndarray) -> int:
    if feats.ndim != 2:
        raise ValueError(f"feature array has shape {feats.shape}, not (n_frames, feat_dim)")
    return feats.shape[0]


def check_row(tsv: str, line: int, row: Dict[str, str], audio_root: str,
              min_frames: int, allow_empty: bool = False) -> Optional[BadRow]:
    """The problem of one manifest row, ``None`` if it is fine; of several problems the first
    fatal one is named (audio, then n_frames), else the first reason to skip it.
    ``allow_empty``: an empty ``tgt_text`` (no words) is fine."""
    row_id = row.get("id") or "?"
    audio = row.get("audio") or ""
    try:
        file_path, slice_ptr = _split_audio(audio)
    except ValueError:
        return BadRow(tsv, line, row_id, f"audio {audio!r} is not a supported path; "
                      f"{AUDIO_ALLOWED}", True)
    try:
        length, is_features = _source_length(os.path.join(audio_root, file_path), slice_ptr)
    except (OSError, ValueError, RuntimeError, EOFError) as err:
        kind = "not found" if isinstance(err, FileNotFoundError) else "unreadable"
        return BadRow(tsv, line, row_id, f"audio {audio!r} {kind} ({err}); {AUDIO_ALLOWED}",
                      True)
    n_frames = row.get("n_frames") or ""
    if not n_frames.strip().isdigit():
        return BadRow(tsv, line, row_id, f"n_frames {n_frames!r} is not a non-negative integer",
                      True)
    if int(n_frames) != length:
        return BadRow(tsv, line, row_id, f"n_frames {n_frames} but audio {audio!r} holds "
                      f"{length}; must be equal", True)
    text = row.get("tgt_text")
    if text is None:
        return BadRow(tsv, line, row_id, "no tgt_text (the row has too few columns); every "
                      "row needs a value in each column", False)
    if text and not text.strip():
        return BadRow(tsv, line, row_id, f"tgt_text {text!r} is blanks only; must hold words"
                      f"{', or be empty for audio without words' if allow_empty else ''}", False)
    if not text and not allow_empty:
        return BadRow(tsv, line, row_id, "empty tgt_text; a non-blank transcript is required "
                      f"(config.yaml's {ALLOW_EMPTY_KEY} lists the splits that may hold audio "
                      "without words)", False)
    if is_features and length < min_frames:
        return BadRow(tsv, line, row_id, f"{length} feature frames, fewer than {min_frames} "
                      f"(the subsampler's receptive field, --min-source-frames); must be at "
                      f"least {min_frames}", False)
    return None


def check_manifest(tsv: str, rows: Sequence[Dict[str, str]], audio_root: str,
                   min_frames: int = 1,
                   allow_empty: bool = False) -> Tuple[List[Dict[str, str]], List[BadRow]]:
    """``(kept rows, bad rows)``: rows with a fatal problem or a skip reason are not kept. Raises
    :class:`InvalidDataError` if a required column is missing. Line numbers count the header as
    line 1."""
    if rows:
        missing = [c for c in REQUIRED_COLUMNS if c not in rows[0]]
        if missing:
            raise InvalidDataError(f"{tsv}: no column {', '.join(missing)}; a manifest needs "
                                   f"the columns {', '.join(REQUIRED_COLUMNS)}")
    kept, bad = [], []
    for line, row in enumerate(rows, start=2):
        problem = check_row(tsv, line, row, audio_root, min_frames, allow_empty)
        if problem is None:
            kept.append(row)
        else:
            bad.append(problem)
    return kept, bad


def checked_rows(tsv: str, rows: Sequence[Dict[str, str]], audio_root: str,
                 min_frames: int = 1, allow_empty: bool = False) -> List[Dict[str, str]]:
    """The usable rows of a manifest: logs one warning per skipped row and one error per
    broken row; raises :class:`InvalidDataError` (one line: the first broken row, and how many
    more) if any row is broken or no row is left."""
    kept, bad = check_manifest(tsv, rows, audio_root, min_frames, allow_empty)
    fatal = [b for b in bad if b.fatal]
    for b in bad:
        (logger.error if b.fatal else logger.warning)(str(b))
    if fatal:
        more = f" (and {len(fatal) - 1} more rows, listed above)" if len(fatal) > 1 else ""
        raise InvalidDataError(f"{fatal[0]}{more}")
    if not kept:
        raise InvalidDataError(f"{tsv}: no usable row ({len(bad)} skipped, listed above)")
    return kept
