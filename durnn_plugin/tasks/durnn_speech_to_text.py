"""``durnn_speech_to_text``: fairseq's ``speech_to_text`` task, manifest rows checked at load time.

Identical to ``--task speech_to_text`` (same data directory, ``config.yaml``, options and
checkpoints), except that every ``SPLIT.tsv`` row is checked when the split is loaded
(:mod:`.s2t_manifest`): rows with an empty transcript or fewer feature frames than
``--min-source-frames`` are skipped with one warning line each; a row whose audio is missing or
unreadable, or whose ``n_frames`` is wrong, is an error (one line per row, then the command
stops with one line and exit status 2). The splits that ``config.yaml`` lists under
``allow_empty_tgt_text`` may hold rows with an empty transcript (noise or silence, whose right
answer is no words); their target is ``</s>`` alone.

An empty hypothesis is a possible answer: the task's default ``--min-len`` is 0 (fairseq's is
1, which forbids ``</s>`` as the first output), in ``fairseq-generate`` and in a generator
built from options that do not set ``min_len``; an explicit ``--min-len`` is kept.

``--min-source-frames`` defaults to the receptive field of the model's convolutional subsampler
(``--conv-kernel-sizes``, stride 2 per layer: 13 frames for ``5,5``), read from the training
options (``fairseq-train``) or from the checkpoint's (``fairseq-generate``); 1 when the model
has no such option.

A CTC criterion (``--ctc-weight`` > 0, or ``--criterion durnn_ctc``) needs a model with a CTC
output (``s2t_durnn_ctc``, ``s2t_durnn --encoder-ctc``, fairseq's ``s2t_transformer`` with
``--ctc-weight``), and a model with a CTC output needs a CTC criterion (otherwise that output
would never be trained); either mismatch stops the command with one line before training.

``speech_to_text`` checkpoints store their configuration as an ``argparse.Namespace``; the
plugin allow-lists exactly that class (:mod:`durnn_plugin.safe_checkpoints`), so
``fairseq-generate --user-dir durnn_plugin`` loads them, whatever the model.
"""
from argparse import Namespace
from pathlib import Path

from fairseq.data.audio.speech_to_text_dataset import SpeechToTextDatasetCreator
from fairseq.tasks import register_task
from fairseq.tasks.speech_to_text import SpeechToTextTask

from ..errors import InvalidDataError, InvalidOptionError, check_positive_int
from .s2t_manifest import ALLOW_EMPTY_KEY, checked_rows, subsampler_receptive_field

MIN_LEN = 0  # output pieces before </s>: none, so that noise and silence can decode to nothing


def min_source_frames(*arg_sources) -> int:
    """``--min-source-frames`` from the first namespace that sets it, else the receptive field
    of the first ``conv_kernel_sizes`` found, else 1."""
    for args in arg_sources:
        value = getattr(args, "min_source_frames", None)
        if value is not None:
            check_positive_int("min_source_frames", value)
            return value
    for args in arg_sources:
        kernels = getattr(args, "conv_kernel_sizes", None)
        if kernels:
            return subsampler_receptive_field([int(k) for k in str(kernels).split(",")])
    return 1


def checked_creator(audio_root: str, min_frames: int, allow_empty=()):
    """A ``SpeechToTextDatasetCreator`` whose manifests pass through :func:`checked_rows`; the
    splits named in ``allow_empty`` may have rows with an empty ``tgt_text``."""

    class CheckedCreator(SpeechToTextDatasetCreator):
        @classmethod
        def _load_samples_from_tsv(cls, root: str, split: str):
            rows = super()._load_samples_from_tsv(root, split)
            tsv = (Path(root) / f"{split}.tsv").as_posix()
            return checked_rows(tsv, rows, audio_root, min_frames, split in allow_empty)

    return CheckedCreator


@register_task("durnn_speech_to_text")
class DuRNNSpeechToTextTask(SpeechToTextTask):
    @classmethod
    def add_args(cls, parser):
        super().add_args(parser)
        parser.add_argument(
            "--min-source-frames", type=int, default=None, metavar="N",
            help="skip manifest rows with fewer feature frames (default: the receptive field "
                 "of --conv-kernel-sizes, else 1)")
        parser.set_defaults(min_len=MIN_LEN)  # fairseq-generate's --min-len

    def __init__(self, args, tgt_dict):
        if getattr(args, "min_source_frames", None) is not None:
            check_positive_int("min_source_frames", args.min_source_frames)
        super().__init__(args, tgt_dict)

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        self.model_has_ctc = any(getattr(part, "ctc_proj", None) is not None
                                 for part in (model, getattr(model, "encoder", None)))
        return model

    def build_generator(self, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None):
        """fairseq's generator, with ``min_len`` :data:`MIN_LEN` unless ``args`` sets it."""
        if getattr(args, "min_len", None) is None:
            args = Namespace(**{**vars(args), "min_len": MIN_LEN})
        return super().build_generator(models, args, seq_gen_cls, extra_gen_cls_kwargs)

    def build_criterion(self, cfg):
        """fairseq's criterion, after checking that a CTC criterion and the model's CTC output
        go together (when this task built the model)."""
        has_ctc = getattr(self, "model_has_ctc", None)
        ctc_weight = getattr(cfg, "ctc_weight", 0.0) or 0.0
        name = getattr(cfg, "_name", None)
        if has_ctc is not None and (ctc_weight > 0 or name == "durnn_ctc") != has_ctc:
            if has_ctc:
                raise InvalidOptionError(
                    "criterion", name, "durnn_ctc, or label_smoothed_cross_entropy_with_ctc "
                    "with --ctc-weight > 0, for a model with a CTC output (s2t_durnn_ctc, "
                    "--encoder-ctc), which nothing else trains")
            if name == "durnn_ctc":
                raise InvalidOptionError(
                    "criterion", name, "a criterion of this model's outputs: durnn_ctc "
                    "needs a model with a CTC output (e.g. --arch s2t_durnn_ctc_s)")
            raise InvalidOptionError(
                "ctc_weight", ctc_weight, "0 for a model without a CTC output; add "
                "--encoder-ctc (s2t_durnn) to train one")
        return super().build_criterion(cfg)

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        """As ``speech_to_text``, after checking every row of ``split``'s manifests."""
        min_frames = min_source_frames(self.args, kwargs.get("task_cfg"))
        allow_empty = self.data_cfg.config.get(ALLOW_EMPTY_KEY) or []
        if not isinstance(allow_empty, list) or not all(isinstance(s, str) for s in allow_empty):
            raise InvalidDataError(f"{self.args.config_yaml}: {ALLOW_EMPTY_KEY} {allow_empty!r}; "
                                   "must be a list of split names")
        creator = checked_creator(self.data_cfg.audio_root, min_frames, allow_empty)
        self.datasets[split] = creator.from_tsv(
            root=self.args.data, cfg=self.data_cfg, splits=split, tgt_dict=self.tgt_dict,
            pre_tokenizer=self.build_tokenizer(self.args), bpe_tokenizer=self.build_bpe(self.args),
            is_train_split=split.startswith("train"), epoch=epoch, seed=self.args.seed,
            speaker_to_id=self.speaker_to_id, multitask=self.multitask_tasks)
