"""What the encoder-decoder models (``s2t_durnn`` for speech, ``durnn`` for text) share: the
config and the model class that builds :class:`.recurrent_encoder.RecurrentEncoder` and the
attention decoder (:class:`.recurrent_decoder.RecurrentDecoder` with ``encoder_size``).

Every :class:`~durnn_plugin.modules.StackOptions` field exists twice, once per side, with the
prefix ``encoder_`` or ``decoder_`` (``--encoder-hidden-size``, ``--decoder-cell lstm``, ...),
except ``bidirectional``: the encoder stack is always bidirectional (output ``2N``), the
decoder stack never.
"""
from dataclasses import MISSING, dataclass, field, fields, make_dataclass
from typing import Dict, Optional, Tuple, Type

from torch import nn

from fairseq.dataclass import FairseqDataclass
from fairseq.models import FairseqEncoderDecoderModel
from fairseq.utils import safe_getattr

from ..modules import StackOptions
from ..errors import InvalidOptionError, check_positive_int, check_range
from .recurrent_encoder import RecurrentEncoder
from .model_config import config_of
from .recurrent_decoder import RecurrentDecoder
from .stack_updates import RecurrentStackModel
from .time_steps import resolve_time_steps

SIDES = ("encoder", "decoder")
PER_SIDE_DEFAULTS = {"encoder": {"num_layers": 4, "hidden_size": 320},
                     "decoder": {"num_layers": 2, "hidden_size": 512}}


def small_architecture(cfg, encoder_num_layers: int) -> None:
    """Defaults of the small named architectures (``durnn_s``, ``s2t_durnn_s``), where the
    command line leaves them unset: encoder ``encoder_num_layers`` x 256 per direction, decoder
    1 x 256, 128-dim embeddings, dropout 0.1."""
    small = {"encoder_embed_dim": 128, "encoder_num_layers": encoder_num_layers,
             "encoder_hidden_size": 256, "decoder_embed_dim": 128, "decoder_num_layers": 1,
             "decoder_hidden_size": 256, "dropout": 0.1}
    for name, value in small.items():
        setattr(cfg, name, safe_getattr(cfg, name, value))


def side_stack_options(side: str) -> Type:
    """A dataclass with every StackOptions field but ``bidirectional``, named ``<side>_<field>``."""
    specs = []
    for f in fields(StackOptions):
        if f.name == "bidirectional":
            continue
        default = PER_SIDE_DEFAULTS[side].get(f.name, f.default)
        assert default is not MISSING
        specs.append((f"{side}_{f.name}", f.type, field(
            default=default, metadata={"help": f"{side} stack: {f.metadata['help']}"})))
    return make_dataclass(f"{side.title()}StackOptions", specs)


def prefixed_stack_options(cfg, side: str, bidirectional: bool) -> StackOptions:
    """The :class:`StackOptions` held by ``cfg``'s ``<side>_*`` fields, validated; errors name
    the prefixed option."""
    opts = StackOptions(**{f.name: getattr(cfg, f"{side}_{f.name}") for f in fields(StackOptions)
                           if f.name != "bidirectional"}, bidirectional=bidirectional)
    try:
        opts.validate()
    except InvalidOptionError as error:
        raise InvalidOptionError(f"{side}_{error.option}", error.value, error.allowed) from None
    return opts


EncoderStackOptions = side_stack_options("encoder")
DecoderStackOptions = side_stack_options("decoder")


@dataclass
class DuRNNSeq2SeqConfig(FairseqDataclass, EncoderStackOptions, DecoderStackOptions):
    encoder_embed_dim: int = field(default=256, metadata={
        "help": "encoder input size E: token embedding size, or the speech subsampler's output"})
    decoder_embed_dim: int = field(default=256, metadata={
        "help": "decoder token embedding size, also the attention output size"})
    dropout: float = field(default=0.2, metadata={
        "help": "dropout on embeddings / subsampled frames, the encoder output and the "
                "attention output"})
    share_decoder_input_output_embed: bool = field(default=False, metadata={
        "help": "tie the decoder's input and output embeddings"})

    def stack_options(self, side: str) -> StackOptions:
        """The :class:`StackOptions` of one side (the encoder bidirectional), validated."""
        return prefixed_stack_options(self, side, bidirectional=side == "encoder")

    def validate(self) -> None:
        for side in SIDES:
            self.stack_options(side)
        check_positive_int("encoder_embed_dim", self.encoder_embed_dim)
        check_positive_int("decoder_embed_dim", self.decoder_embed_dim)
        check_range("dropout", self.dropout, 0, 1, hi_open=True)


class DuRNNSeq2SeqModel(RecurrentStackModel, FairseqEncoderDecoderModel):
    """Encoder (front-end + bidirectional stack) and attention decoder; subclasses give the
    config class and the front-end."""

    config_class = DuRNNSeq2SeqConfig

    @classmethod
    def build_front_end(cls, cfg: DuRNNSeq2SeqConfig, task) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def side_lengths(cls, cfg, task) -> Dict[str, Tuple[Optional[int], str]]:
        """Per side, the length of the task's training sequences that sets its
        ``<side>_u_time_steps`` when not given, and where it comes from: none by default
        (a text pair has no natural length)."""
        return {side: (None, "") for side in SIDES}

    @classmethod
    def build_model(cls, cfg, task):
        for side, (length, source) in cls.side_lengths(cfg, task).items():
            resolve_time_steps(cfg, f"{side}_u_time_steps", length, source)
        cfg = config_of(cls.config_class, cfg)
        cfg.validate()
        encoder = RecurrentEncoder(cls.build_front_end(cfg, task), cfg.stack_options("encoder"),
                                   cfg.dropout, cfg.dropout, task.source_dictionary)
        decoder = RecurrentDecoder(task.target_dictionary, cfg.decoder_embed_dim,
                                   cfg.stack_options("decoder"), embed_dropout=cfg.dropout,
                                   output_dropout=cfg.dropout,
                                   share_input_output_embed=cfg.share_decoder_input_output_embed,
                                   encoder_size=encoder.output_size)
        return cls(encoder, decoder)
