#!/usr/bin/env python3
"""Streaming speech recognition with an ``s2t_durnn_ctc`` checkpoint: the transcript grows while
the audio arrives, with constant work per frame (a state instead of a growing context).

    python -m examples.speech_recognition.stream --path CKPT [--data DATA] AUDIO
    arecord -q -f S16_LE -r 16000 -c 1 -t raw | \\
        python -m examples.speech_recognition.stream --path CKPT -
    python -m examples.speech_recognition.stream --path CKPT --manifest DATA/SPLIT.tsv \\
        --results-path R

``AUDIO``: a WAV or FLAC file (anything soundfile reads), or ``-``: raw 16-bit little-endian
mono 16 kHz PCM on stdin (e.g. from a microphone, as above). A 16 kHz mono file is read in
blocks of ``--chunk-ms`` (soundfile's ``blocks``), as a stream; a file at another rate, or with
several channels, is read whole first (channels averaged, resampled to 16 kHz by torchaudio:
:func:`features.load_audio` without its peak normalisation) and then streamed in the same
chunks. Every chunk goes through the front end of training: 80-dim Kaldi filterbanks, each 25 ms
window as soon as it is complete (:class:`features.StreamingFbank`, which keeps the samples of
the windows still open; the frames of ``features.fbank`` of the whole file, up to fp32
rounding), the feature transforms that the checkpoint's data config (``config_gcmvn.yaml``)
names for a non-training split, which must act on each frame alone (``global_cmvn``; a config
with ``utterance_cmvn``, which needs the whole utterance, is refused), then ``model.stream``
with the model's state carried from chunk to chunk, and a CTC decoder (:mod:`.ctc_decoding`:
``--beam 1`` best path, else the prefix beam search, fused with the language model ``--lm-path``
at ``--lm-weight``, which needs ``--beam`` 2 or more). Pieces are joined by the data's
sentencepiece model (the config's ``bpe_tokenizer``). ``--data``: the data directory with the
config, dictionary and sentencepiece model (default: the one the checkpoint was trained on);
``--chunk-ms``: audio per chunk (default 100; a positive multiple of 10 ms, the frame shift);
``--threads``: torch's CPU threads (default 1).

Output on stdout, one line each::

    partial 0.40s: two
    partial 0.80s: two nine
    final: two nine three

``partial <t>s: <text>`` whenever the best transcript changes, ``t`` the audio read so far
(seconds); ``final: <text>`` at the end of the audio (after the decoder's end of utterance: the
LM's ``</s>``). ``--quiet``: the final line only. ``--save-lprobs F.npy``: also save the
model's log-probabilities ``(T, V)`` of every output frame (one per 40 ms with two stride-2
convolutions). Audio shorter than one 25 ms window has no frame: ``final:`` with no words.
Log messages go to stderr.

Manifest mode (``--manifest DATA/SPLIT.tsv``, or ``--gen-subset SPLIT`` with ``--data``):
every row the task keeps (the rows ``fairseq-generate`` would decode, checked by
``durnn_speech_to_text``) is decoded from its feature file, transformed as the task does;
``fbank80/<id>.npy`` is what the streaming front end computes from the row's 16 kHz WAV. The
features go through the same chunked ``model.stream`` path, ``--chunk-ms / 10`` frames at a
time (``--offline``: the whole utterance in one ``model.ctc_log_probs`` call instead, which
gives the same log-probabilities within fp32 rounding). ``--results-path R`` receives
``R/generate-SPLIT.txt`` in fairseq-generate's format: per row ``i`` ``T-i`` (the reference),
``H-i`` (score, pieces) and ``D-i`` (score, text), the score being ``log2`` of the CTC
probability of the hypothesis (all its alignments); then
``Generate SPLIT with beam=B: WER: x`` (fairseq's WER scorer), which is also printed, so
``run_digits.sh`` and ``wer_by_voice.py`` read it as they read fairseq-generate's.

Bad input stops the command before work starts with one line naming it (exit status 2):
an unreadable or empty file, a ``--chunk-ms`` that is not a positive multiple of 10, a data
config whose transforms are not per frame, a checkpoint without a streaming model. Stdin with
no samples, or an odd number of bytes, is refused in one line at its end.
"""
import argparse
import math
import os
import sys
from typing import Iterable, Iterator, List, Optional, Tuple

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

import durnn_plugin  # noqa: F401  (registers the plugin's models and tasks, allow-lists Namespace)
from examples.speech_recognition import features
from examples.speech_recognition.ctc_decoding import GreedyCTC, LMScorer, PrefixBeamCTC
from examples.speech_recognition.transcribe import check_inputs
from fairseq import checkpoint_utils
from fairseq.data.audio.feature_transforms import CompositeAudioFeatureTransform
from fairseq.scoring.wer import WerScorer, WerScorerConfig

FRAME_MS = 10  # the filterbanks' frame shift
PER_FRAME_TRANSFORMS = ("global_cmvn",)  # feature transforms that act on each frame alone
STDIN = "-"


def check_chunk_ms(chunk_ms: int) -> int:
    """Samples per chunk of ``chunk_ms``; ValueError in one line unless a positive multiple of
    :data:`FRAME_MS`."""
    if chunk_ms <= 0 or chunk_ms % FRAME_MS:
        raise ValueError(f"--chunk-ms {chunk_ms}: must be a positive multiple of {FRAME_MS} "
                         f"(ms, the frame shift), e.g. 10, 40, 100")
    return features.SAMPLE_RATE * chunk_ms // 1000


def file_blocks(path: str, block: int) -> Iterator[torch.Tensor]:
    """Samples ``(S,)`` float32 in [-1, 1] of a sound file, ``block`` at a time (module
    docstring: 16 kHz mono read in blocks, anything else read whole and resampled first)."""
    info = sf.info(path)
    if info.samplerate == features.SAMPLE_RATE and info.channels == 1:
        for samples in sf.blocks(path, blocksize=block, dtype="float32"):
            yield torch.from_numpy(samples)
    else:
        yield from features.load_audio(path, peak_normalise=False)[0].split(block)


def pcm_blocks(stream, block: int) -> Iterator[torch.Tensor]:
    """Samples ``(S,)`` float32 (``int16 / 32768``, as soundfile reads a 16-bit WAV) of raw
    16-bit little-endian PCM read from the binary ``stream``, ``block`` samples at a time (fewer
    at its end); ValueError in one line for no samples or an odd number of bytes."""
    pending, total = b"", 0
    while True:
        data = stream.read(2 * block - len(pending))
        pending += data
        if len(pending) == 2 * block or (not data and len(pending) > 1):
            usable = len(pending) // 2 * 2
            samples = np.frombuffer(pending[:usable], dtype="<i2")
            pending = pending[usable:]
            total += len(samples)
            yield torch.from_numpy(samples.astype(np.float32) / 32768)
        if not data:
            break
    if pending:
        raise ValueError(f"AUDIO {STDIN!r}: {2 * total + len(pending)} bytes, an odd number; "
                         "must be raw 16-bit little-endian mono 16 kHz PCM")
    if total == 0:
        raise ValueError(f"AUDIO {STDIN!r}: no samples on stdin; must be raw 16-bit "
                         "little-endian mono 16 kHz PCM")


class StreamingRecogniser:
    """An ``s2t_durnn_ctc`` checkpoint with its task (data config, dictionary, sentencepiece
    model), per-frame feature transforms and a CTC decoder of ``beam`` (1: best path) fused
    with the LM ``lm_path`` at ``lm_weight``. ValueError in one line for a checkpoint without
    ``stream`` or a data config whose non-training transforms are not per frame."""

    def __init__(self, checkpoint: str, data: str = None, beam: int = 1, lm_path: str = None,
                 lm_weight: float = 0.0):
        overrides = {"data": os.path.abspath(data)} if data else {}
        models, _, self.task = checkpoint_utils.load_model_ensemble_and_task(
            [checkpoint], arg_overrides=overrides)
        self.model = models[0].eval()
        if not hasattr(self.model, "stream"):
            raise ValueError(f"--path {checkpoint!r}: a {type(self.model).__name__}, which "
                             "cannot decode a stream; must be an s2t_durnn_ctc checkpoint")
        self.dictionary = self.task.target_dictionary
        self.bpe = self.task.build_bpe(self.task.args)
        self.tokenizer = self.task.build_tokenizer(self.task.args)
        self.transforms = self.frame_transforms("test")
        self.lm = LMScorer.load(lm_path, self.task.args.data, self.dictionary) \
            if lm_path else None
        self.beam, self.lm_weight = beam, lm_weight

    def frame_transforms(self, split: str) -> CompositeAudioFeatureTransform:
        """The feature transforms of ``split`` (a training split if it starts with ``train``,
        as the task decides), each of which must act on every frame alone."""
        cfg = self.task.data_cfg.get_feature_transforms(split, split.startswith("train"))
        for name in cfg.get("feature_transforms") or []:
            if name not in PER_FRAME_TRANSFORMS:
                config = os.path.join(self.task.args.data, self.task.args.config_yaml)
                raise ValueError(
                    f"{config}: feature transform {name!r} for split {split!r} does not act "
                    f"on each frame alone; a stream needs per-frame transforms only "
                    f"({', '.join(PER_FRAME_TRANSFORMS)}: train with --config-yaml "
                    "config_gcmvn.yaml)")
        return CompositeAudioFeatureTransform.from_config_dict(cfg)

    def decoder(self):
        """A new CTC decoder: best path for beam 1 without an LM, else the prefix beam search."""
        if self.beam == 1 and self.lm is None:
            return GreedyCTC(blank=self.dictionary.bos())
        return PrefixBeamCTC(self.beam, blank=self.dictionary.bos(), lm=self.lm,
                             lm_weight=self.lm_weight)

    def pieces(self, ids: List[int]) -> str:
        """Token ids -> pieces, ``<pad>`` and ``</s>`` dropped (as fairseq's ``ctc``
        criterion drops them: no target holds them)."""
        return self.dictionary.string(torch.tensor(ids, dtype=torch.long),
                                      extra_symbols_to_ignore=[self.dictionary.pad()])

    def text(self, pieces: str) -> str:
        """Pieces -> words, as fairseq-generate's ``decode_fn`` makes them."""
        if self.bpe is not None:
            pieces = self.bpe.decode(pieces)
        return self.tokenizer.decode(pieces) if self.tokenizer is not None else pieces

    def utterance(self) -> "Utterance":
        """A new utterance to decode chunk by chunk."""
        return Utterance(self.model, self.decoder(), len(self.dictionary),
                         lambda ids: self.text(self.pieces(ids)))

    def feature_chunks(self, blocks: Iterable[torch.Tensor]
                       ) -> Iterator[Tuple[int, torch.Tensor]]:
        """Sample blocks -> ``(samples read so far, normalised frames (t, 80))`` per block."""
        fbank, read = features.StreamingFbank(), 0
        for samples in blocks:
            read += len(samples)
            yield read, torch.from_numpy(self.transforms(fbank.push(samples)))


class Utterance:
    """One utterance being decoded: the model's stream state and the decoder's, both carried
    from chunk to chunk; ``text_of`` turns token ids into words."""

    def __init__(self, model, decoder, vocab: int, text_of):
        self.model, self.decoder, self.vocab, self.text_of = model, decoder, vocab, text_of
        self.state = model.start_stream(1)
        self.best, self.text = [], ""  # the best ids so far and their words

    @torch.no_grad()
    def push(self, feats: torch.Tensor) -> Tuple[torch.Tensor, List[int]]:
        """Normalised frames ``(t, F)`` (t >= 0) -> the log-probabilities of the output frames
        they complete ``(t', V)`` and the best ids so far."""
        lprobs = torch.zeros(0, self.vocab)
        if len(feats):
            lprobs, self.state = self.model.stream(feats[None], self.state)
            lprobs = lprobs[:, 0]
        return lprobs, self.decoder.push(lprobs)

    def push_text(self, feats: torch.Tensor) -> Tuple[torch.Tensor, str]:
        """As :meth:`push`, with the transcript so far instead of the ids; the pieces are
        joined only when the best ids change (a chunk that adds none costs no join)."""
        lprobs, ids = self.push(feats)
        if ids != self.best:
            self.best, self.text = ids, self.text_of(ids)
        return lprobs, self.text

    def finish(self) -> List[int]:
        """The final ids (the decoder's end of utterance)."""
        return self.decoder.finish()


def stream_audio(recogniser: StreamingRecogniser, blocks: Iterable[torch.Tensor],
                 quiet: bool = False, out=None) -> Tuple[str, torch.Tensor]:
    """Decode a stream of sample blocks, printing partial and final lines (module docstring) to
    ``out`` (default: stdout); returns the final text and the log-probabilities ``(T, V)`` of
    every output frame."""
    out = out or sys.stdout
    utterance, shown, outputs = recogniser.utterance(), "", []
    for read, feats in recogniser.feature_chunks(blocks):
        lprobs, text = utterance.push_text(feats)
        outputs.append(lprobs)
        if text != shown and not quiet:
            print(f"partial {read / features.SAMPLE_RATE:.2f}s: {text}", file=out, flush=True)
        shown = text
    final = utterance.text_of(utterance.finish())
    print(f"final: {final}", file=out, flush=True)
    return final, torch.cat(outputs) if outputs else torch.zeros(0, utterance.vocab)


def ctc_score(lprobs: torch.Tensor, ids: List[int], blank: int) -> float:
    """``log2 P_CTC(ids | lprobs (T, V))``, summed over all alignments."""
    nll = F.ctc_loss(lprobs[:, None], torch.tensor([ids], dtype=torch.long).view(1, -1),
                     torch.tensor([len(lprobs)]), torch.tensor([len(ids)]), blank=blank,
                     reduction="sum")
    return -float(nll) / math.log(2)


def decode_manifest(recogniser: StreamingRecogniser, split: str, frames_per_chunk: int,
                    results_path: str, offline: bool = False) -> str:
    """Decode every kept row of ``split`` (module docstring) into
    ``results_path/generate-<split>.txt``; returns its last line."""
    recogniser.frame_transforms(split)  # the dataset applies them; refused if not per frame
    recogniser.task.load_dataset(split)
    dataset = recogniser.task.dataset(split)
    scorer = WerScorer(WerScorerConfig())
    blank = recogniser.dictionary.bos()
    os.makedirs(results_path, exist_ok=True)
    with open(os.path.join(results_path, f"generate-{split}.txt"), "w",
              encoding="utf-8") as out:
        for i in range(len(dataset)):
            item = dataset[i]
            feats = item.source.float()
            utterance = recogniser.utterance()
            if offline:
                with torch.no_grad():
                    lprobs = recogniser.model.ctc_log_probs(
                        feats[None], torch.tensor([len(feats)]))[0][:, 0]
                utterance.decoder.push(lprobs)
            else:
                lprobs = torch.cat([utterance.push(chunk)[0]
                                    for chunk in feats.split(frames_per_chunk)])
            ids = utterance.finish()
            reference = recogniser.text(recogniser.dictionary.string(item.target,
                                                                     escape_unk=True))
            pieces = recogniser.pieces(ids)
            hypothesis = recogniser.text(pieces)
            score = ctc_score(lprobs, ids, blank)
            print(f"T-{item.index}\t{reference}", file=out)
            print(f"H-{item.index}\t{score}\t{pieces}", file=out)
            print(f"D-{item.index}\t{score}\t{hypothesis}", file=out)
            scorer.add_string(reference, hypothesis)
        total = f"Generate {split} with beam={recogniser.beam}: {scorer.result_string()}"
        print(total, file=out)
    return total


def split_of(args) -> Tuple[Optional[str], Optional[str]]:
    """``(data directory, split)`` of manifest mode, ``(args.data, None)`` without it;
    ValueError in one line for conflicting options."""
    if args.manifest:
        if args.gen_subset:
            raise ValueError("--manifest and --gen-subset: give one of them")
        if not args.manifest.endswith(".tsv") or not os.path.isfile(args.manifest):
            raise ValueError(f"--manifest {args.manifest!r}: no such .tsv file; must be a "
                             "split's manifest DATA/SPLIT.tsv")
        data = os.path.dirname(os.path.abspath(args.manifest))
        if args.data and os.path.abspath(args.data) != data:
            raise ValueError(f"--data {args.data!r} and --manifest {args.manifest!r}: the "
                             "manifest must lie in the data directory")
        return data, os.path.basename(args.manifest)[:-len(".tsv")]
    return args.data, args.gen_subset


def check_options(args) -> Tuple[Optional[str], Optional[str]]:
    """ValueError in one line for the first unusable option; returns :func:`split_of`."""
    check_chunk_ms(args.chunk_ms)
    if args.beam < 1:
        raise ValueError(f"--beam {args.beam}: must be 1 (best path) or more (beam search)")
    if args.lm_path and args.beam == 1:
        raise ValueError("--lm-path: fusion needs the beam search; must come with --beam 2 or "
                         "more")
    if args.lm_weight and not args.lm_path:
        raise ValueError(f"--lm-weight {args.lm_weight}: needs --lm-path")
    if args.threads < 1:
        raise ValueError(f"--threads {args.threads}: must be 1 or more")
    data, split = split_of(args)
    if split is None and args.audio is None:
        raise ValueError("AUDIO: missing; give a sound file, - for stdin, or --manifest")
    if split is not None and (args.audio is not None or not args.results_path):
        raise ValueError("--manifest/--gen-subset: decodes a split into --results-path DIR; "
                         "must come with --results-path and without AUDIO")
    for option, value, mode in (("--offline", args.offline, split is not None),
                                ("--results-path", args.results_path, split is not None),
                                ("--save-lprobs", args.save_lprobs, split is None)):
        if value and not mode:
            needs = "--manifest or --gen-subset" if option != "--save-lprobs" else "AUDIO"
            raise ValueError(f"{option}: belongs to the other mode; must come with {needs}")
    audio = [args.audio] if split is None and args.audio != STDIN else []
    check_inputs(audio, args.path, data, args.lm_path)
    return data, split


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("audio", nargs="?", metavar="AUDIO",
                    help="WAV or FLAC file, or - for raw 16-bit 16 kHz mono PCM on stdin")
    ap.add_argument("--path", required=True, help="s2t_durnn_ctc checkpoint")
    ap.add_argument("--data", default=None,
                    help="data directory with the config (default: the checkpoint's)")
    ap.add_argument("--chunk-ms", type=int, default=100,
                    help="audio per chunk, a positive multiple of 10 (default: %(default)s)")
    ap.add_argument("--beam", type=int, default=1,
                    help="1: best path (default); more: CTC prefix beam search")
    ap.add_argument("--lm-path", default=None,
                    help="language model checkpoint to fuse into the beam (train_speech_lm.py)")
    ap.add_argument("--lm-weight", type=float, default=0.0,
                    help="weight W of the LM's log-probabilities (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    ap.add_argument("--quiet", action="store_true", help="print the final line only")
    ap.add_argument("--save-lprobs", default=None, metavar="F.npy",
                    help="save the log-probabilities (T, V) of the audio's output frames")
    ap.add_argument("--manifest", default=None, metavar="DATA/SPLIT.tsv",
                    help="decode a split's rows into --results-path (manifest mode)")
    ap.add_argument("--gen-subset", default=None, metavar="SPLIT",
                    help="as --manifest DATA/SPLIT.tsv, DATA from --data or the checkpoint")
    ap.add_argument("--results-path", default=None, metavar="DIR",
                    help="manifest mode: write DIR/generate-SPLIT.txt")
    ap.add_argument("--offline", action="store_true",
                    help="manifest mode: one offline forward per row instead of the stream")
    args = ap.parse_args(argv)
    try:
        data, split = check_options(args)
        block = check_chunk_ms(args.chunk_ms)
        torch.set_num_threads(args.threads)
        recogniser = StreamingRecogniser(args.path, data, args.beam, args.lm_path,
                                         args.lm_weight)
        if split is not None:
            print(decode_manifest(recogniser, split, args.chunk_ms // FRAME_MS,
                                  args.results_path, args.offline), flush=True)
            return
        blocks = pcm_blocks(sys.stdin.buffer, block) if args.audio == STDIN \
            else file_blocks(args.audio, block)
        _, lprobs = stream_audio(recogniser, blocks, args.quiet)
    except (ValueError, OSError) as err:
        print(f"stream.py: error: {str(err).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    if args.save_lprobs:
        np.save(args.save_lprobs, lprobs.numpy())


if __name__ == "__main__":
    main()
