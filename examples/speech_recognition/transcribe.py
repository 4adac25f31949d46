#!/usr/bin/env python3
"""Transcribe sound files with a speech-to-text checkpoint: one line per file, ``PATH<TAB>text``.

    python -m examples.speech_recognition.transcribe --path CKPT [--data DATA] AUDIO...

``AUDIO``: WAV or FLAC (anything soundfile reads), any sample rate, mono or stereo -- record
yourself and try. Each file goes through the training pipeline: channels averaged, resampled to
16 kHz, peak at -1 dBFS (:func:`features.load_audio`, as ``synthesize.py`` writes training
audio), 80-dim Kaldi filterbanks (:func:`features.fbank`), then the feature transforms that
``config.yaml`` names for a non-training split (utterance CMVN); decoded with fairseq's beam
search (``--beam``, output length at most ``--max-len-a * frames + --max-len-b`` pieces) and
the sentencepiece model of ``config.yaml``.

``--data``: the data directory with ``config.yaml``, the dictionary and the sentencepiece model
(default: the one the checkpoint was trained on). ``--lm-path L --lm-weight W``: language model
fusion as in ``fairseq-generate``: the generator adds ``W * log p_LM`` of the LM checkpoint
``L`` (``train_speech_lm.py``; its dictionary must be the recogniser's, index for index, and is
loaded from ``DATA/dict.txt``) to the recogniser's log-probabilities at every step. Every file
is checked before the model is loaded; an unreadable one stops the command with one line naming
it (exit status 2).
"""
import argparse
import os
import sys
from argparse import Namespace
from typing import List

import soundfile as sf
import torch

import durnn_plugin  # noqa: F401  (registers the plugin's models and tasks, allow-lists Namespace)
from examples.speech_recognition import features
from fairseq import checkpoint_utils
from fairseq.data import Dictionary
from fairseq.data.audio.feature_transforms import CompositeAudioFeatureTransform


def check_inputs(paths: List[str], checkpoint: str, data: str, lm_path: str = None) -> None:
    """ValueError with one line for the first unusable argument."""
    for path in paths:
        try:
            info = sf.info(path)
        except (RuntimeError, OSError) as err:  # soundfile: missing, unreadable or not audio
            reason = "no such file" if not os.path.exists(path) else str(err).splitlines()[0]
            raise ValueError(f"AUDIO {path!r}: {reason}; must be a readable WAV or FLAC file "
                             "(any sample rate, mono or stereo)") from None
        if info.frames == 0:
            raise ValueError(f"AUDIO {path!r}: no samples; must hold some speech")
    if not os.path.isfile(checkpoint):
        raise ValueError(f"--path {checkpoint!r}: no such file; must be a checkpoint (.pt)")
    if data and not os.path.isfile(os.path.join(data, "config.yaml")):
        raise ValueError(f"--data {data!r}: no config.yaml; must be the data directory of "
                         "prepare_speech.py")
    if lm_path and not os.path.isfile(lm_path):
        raise ValueError(f"--lm-path {lm_path!r}: no such file; must be a language model "
                         "checkpoint (.pt) of train_speech_lm.py")


def load_language_model(lm_path: str, data: str, dictionary: Dictionary) -> torch.nn.Module:
    """The LM checkpoint, loaded as ``fairseq-generate --lm-path`` loads it (its task's data:
    the recogniser's data directory ``data``, whose ``dict.txt`` it reads), in eval mode;
    ValueError naming ``--lm-path`` if the dictionary it was trained with, or ``dict.txt``, is
    not the recogniser's ``dictionary`` index for index."""
    trained = checkpoint_utils.load_checkpoint_to_cpu(lm_path)["cfg"]["task"]["data"]
    for path in (os.path.join(trained, "dict.txt"), os.path.join(data, "dict.txt")):
        symbols = Dictionary.load(path).symbols if os.path.isfile(path) else None
        if symbols != dictionary.symbols:
            found = f"{len(symbols)} symbols" if symbols else "no such file"
            raise ValueError(
                f"--lm-path {lm_path!r}: dictionary {path} ({found}) is not the "
                f"recogniser's ({len(dictionary)} symbols) index for index; train the LM "
                "with train_speech_lm.py on this data directory")
    lms, _ = checkpoint_utils.load_model_ensemble([lm_path], arg_overrides={"data": data})
    return lms[0].eval()


class Transcriber:
    """A checkpoint with its task's feature transforms, dictionary, sentencepiece model and a
    beam-search generator (fused with the language model ``lm_path`` at ``lm_weight``)."""

    def __init__(self, checkpoint: str, data: str = None, beam: int = 5,
                 max_len_a: float = 0.1, max_len_b: int = 10, lm_path: str = None,
                 lm_weight: float = 0.0):
        overrides = {"data": os.path.abspath(data)} if data else {}
        models, _, self.task = checkpoint_utils.load_model_ensemble_and_task(
            [checkpoint], arg_overrides=overrides)
        self.models = [m.eval() for m in models]
        self.transforms = CompositeAudioFeatureTransform.from_config_dict(
            self.task.data_cfg.get_feature_transforms("test", False))
        self.bpe = self.task.build_bpe(self.task.args)
        fusion = {"lm_model": load_language_model(lm_path, self.task.args.data,
                                                  self.task.target_dictionary),
                  "lm_weight": lm_weight} if lm_path else None
        self.generator = self.task.build_generator(
            self.models, Namespace(beam=beam, max_len_a=max_len_a, max_len_b=max_len_b),
            extra_gen_cls_kwargs=fusion)

    def features(self, path: str) -> torch.Tensor:
        """``(T, 80)`` model input of a sound file."""
        return torch.from_numpy(self.transforms(features.fbank(features.load_audio(path))))

    @torch.no_grad()
    def __call__(self, path: str) -> str:
        feats = self.features(path)
        sample = {"net_input": {"src_tokens": feats[None], "src_lengths":
                                torch.tensor([feats.shape[0]])}}
        best = self.task.inference_step(self.generator, self.models, sample)[0][0]
        pieces = self.task.target_dictionary.string(
            best["tokens"].int().cpu(),
            extra_symbols_to_ignore=self.generator.symbols_to_strip_from_output)
        return self.bpe.decode(pieces)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("audio", nargs="+", metavar="AUDIO", help="WAV or FLAC files")
    ap.add_argument("--path", required=True, help="checkpoint (checkpoint_best.pt)")
    ap.add_argument("--data", default=None,
                    help="data directory with config.yaml (default: the checkpoint's)")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--max-len-a", type=float, default=0.1)
    ap.add_argument("--max-len-b", type=int, default=10)
    ap.add_argument("--lm-path", default=None,
                    help="language model checkpoint to fuse into the beam (train_speech_lm.py)")
    ap.add_argument("--lm-weight", type=float, default=0.0,
                    help="weight W of the LM's log-probabilities (default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        check_inputs(args.audio, args.path, args.data, args.lm_path)
        transcribe = Transcriber(args.path, args.data, args.beam, args.max_len_a,
                                 args.max_len_b, args.lm_path, args.lm_weight)
    except ValueError as err:
        print(f"transcribe.py: error: {err}", file=sys.stderr)
        sys.exit(2)
    for path in args.audio:
        print(f"{path}\t{transcribe(path)}", flush=True)


if __name__ == "__main__":
    main()
