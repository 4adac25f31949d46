"""``durnn_speech_to_text``: fairseq's ``speech_to_text`` task, manifest rows checked at load time.

Identical to ``--task speech_to_text`` (same data directory, ``config.yaml``, options and
checkpoints), except that every ``SPLIT.tsv`` row is checked when the split is loaded
(:mod:`.s2t_manifest`): rows with an empty transcript or fewer feature frames than
``--min-source-frames`` are skipped with one warning line each; a row whose audio is missing or
unreadable, or whose ``n_frames`` is wrong, is an error (one line per row, then the command
stops with one line and exit status 2).

``--min-source-frames`` defaults to the receptive field of the model's convolutional subsampler
(``--conv-kernel-sizes``, stride 2 per layer: 13 frames for ``5,5``), read from the training
options (``fairseq-train``) or from the checkpoint's (``fairseq-generate``); 1 when the model
has no such option.

A CTC criterion (``--ctc-weight`` > 0) needs a model with a CTC output (``s2t_durnn
--encoder-ctc``, fairseq's ``s2t_transformer`` with ``--ctc-weight``), and a model with a CTC
output needs a CTC criterion (otherwise that output would never be trained); either mismatch
stops the command with one line before training.

``speech_to_text`` checkpoints store their configuration as an ``argparse.Namespace``; the
plugin allow-lists exactly that class (:mod:`durnn_plugin.safe_checkpoints`), so
``fairseq-generate --user-dir durnn_plugin`` loads them, whatever the model.
"""
from pathlib import Path

from fairseq.data.audio.speech_to_text_dataset import SpeechToTextDatasetCreator
from fairseq.tasks import register_task
from fairseq.tasks.speech_to_text import SpeechToTextTask

from ..errors import InvalidOptionError, check_positive_int
from .s2t_manifest import checked_rows, subsampler_receptive_field


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


def checked_creator(audio_root: str, min_frames: int):
    """A ``SpeechToTextDatasetCreator`` whose manifests pass through :func:`checked_rows`."""

    class CheckedCreator(SpeechToTextDatasetCreator):
        @classmethod
        def _load_samples_from_tsv(cls, root: str, split: str):
            rows = super()._load_samples_from_tsv(root, split)
            tsv = (Path(root) / f"{split}.tsv").as_posix()
            return checked_rows(tsv, rows, audio_root, min_frames)

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

    def __init__(self, args, tgt_dict):
        if getattr(args, "min_source_frames", None) is not None:
            check_positive_int("min_source_frames", args.min_source_frames)
        super().__init__(args, tgt_dict)

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        self.model_has_ctc = any(getattr(part, "ctc_proj", None) is not None
                                 for part in (model, getattr(model, "encoder", None)))
        return model

    def build_criterion(self, cfg):
        """fairseq's criterion, after checking that a CTC criterion and the model's CTC output
        go together (when this task built the model)."""
        has_ctc = getattr(self, "model_has_ctc", None)
        ctc_weight = getattr(cfg, "ctc_weight", 0.0) or 0.0
        if has_ctc is not None and (ctc_weight > 0) != has_ctc:
            if has_ctc:
                raise InvalidOptionError(
                    "criterion", getattr(cfg, "_name", None),
                    "label_smoothed_cross_entropy_with_ctc with --ctc-weight > 0 for a model "
                    "with a CTC output (--encoder-ctc), which nothing else trains")
            raise InvalidOptionError(
                "ctc_weight", ctc_weight, "0 for a model without a CTC output; add "
                "--encoder-ctc (s2t_durnn) to train one")
        return super().build_criterion(cfg)

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        """As ``speech_to_text``, after checking every row of ``split``'s manifests."""
        min_frames = min_source_frames(self.args, kwargs.get("task_cfg"))
        creator = checked_creator(self.data_cfg.audio_root, min_frames)
        self.datasets[split] = creator.from_tsv(
            root=self.args.data, cfg=self.data_cfg, splits=split, tgt_dict=self.tgt_dict,
            pre_tokenizer=self.build_tokenizer(self.args), bpe_tokenizer=self.build_bpe(self.args),
            is_train_split=split.startswith("train"), epoch=epoch, seed=self.args.seed,
            speaker_to_id=self.speaker_to_id, multitask=self.multitask_tasks)
