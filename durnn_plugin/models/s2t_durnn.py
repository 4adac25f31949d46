"""``s2t_durnn``: speech recognition / translation with fairseq's ``speech_to_text`` task.

features ``(B, T_in, 80)`` -> convolutional subsampler (stride 2 per layer) -> bidirectional
stack -> attention decoder (see :mod:`.seq2seq_base`, :mod:`.recurrent_encoder`,
:mod:`.recurrent_decoder`). The input size comes from the data's ``config.yaml``
(``input_feat_per_channel`` x ``input_channels``), which the task copies into the model config.

Named architectures: ``s2t_durnn`` and ``s2t_durnn_m`` (the defaults: encoder 4 x 320 per
direction, decoder 2 x 512), ``s2t_durnn_s`` (small, trains on a CPU: encoder 3 x 256,
decoder 1 x 256, 128-dim embeddings, 256 conv channels).

``--encoder-ctc`` adds a linear CTC output on the encoder states, ``log_softmax(W h_t + b)``
over the target dictionary (blank = index 0, ``<s>``), for fairseq's
``--criterion label_smoothed_cross_entropy_with_ctc --ctc-weight W``: loss = label-smoothed
cross-entropy of the decoder + W x CTC loss of the encoder (targets with their end-of-sentence
symbol, as fairseq's own speech models do). Decoding uses the decoder only.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch.nn as nn
from fairseq import utils
from fairseq.models import register_model, register_model_architecture
from fairseq.utils import safe_getattr
from torch import Tensor

from ..errors import check, check_positive_int
from .recurrent_encoder import SpeechFrontEnd
from .time_steps import task_option
from .seq2seq_base import DuRNNSeq2SeqConfig, DuRNNSeq2SeqModel, small_architecture


@dataclass
class SpeechInputConfig:
    """The speech input and its convolutional subsampler (``s2t_durnn``, ``s2t_durnn_ctc``)."""
    conv_kernel_sizes: str = field(default="5,5", metadata={
        "help": "comma-separated odd kernel sizes of the subsampler's 1-D convolutions "
                "(each halves the frame rate)"})
    conv_channels: int = field(default=512, metadata={
        "help": "channels of the subsampler's intermediate convolutions"})
    # the speech_to_text task sets these three from the data's config.yaml before building
    input_feat_per_channel: int = field(default=80, metadata={
        "help": "features per frame and channel (set by the task from config.yaml)"})
    input_channels: int = field(default=1, metadata={
        "help": "input channels (set by the task from config.yaml)"})
    speaker_to_id: Any = field(default=None, metadata={
        "help": "speaker ids (set by the task from config.yaml; not used by this model)"})

    def kernel_sizes(self) -> List[int]:
        return [int(k) for k in str(self.conv_kernel_sizes).split(",")]

    def input_size(self) -> int:
        """Features per input frame, ``input_feat_per_channel x input_channels``."""
        return self.input_feat_per_channel * self.input_channels

    def validate_speech_input(self) -> None:
        parts = str(self.conv_kernel_sizes).split(",")
        check(all(p.strip().isdigit() and int(p) % 2 == 1 for p in parts), "conv_kernel_sizes",
              self.conv_kernel_sizes, "comma-separated odd positive integers, e.g. 5,5")
        check_positive_int("conv_channels", self.conv_channels)


def subsampled_frame_bound(cfg, task) -> Tuple[Optional[int], str]:
    """The encoder's frame bound, ``--max-source-positions`` halved once per convolution (for
    ``encoder_u_time_steps``), and where it comes from."""
    halvings = len(str(cfg.conv_kernel_sizes).split(","))
    frames = task_option(task, "max_source_positions")
    return (None if frames is None else -(-int(frames) // 2 ** halvings),
            f"--max-source-positions {frames} after {halvings} halvings")


def ctc_output(ctc_proj: nn.Linear,
               encoder_out: Dict[str, List[Tensor]]) -> Tuple[Tensor, Tensor]:
    """``log_softmax(W h_t + b)`` ``(T, B, V)`` (fp32) of an encoder output dict's states and
    their lengths ``(B,)``."""
    lprobs = utils.log_softmax(ctc_proj(encoder_out["encoder_out"][0]).float(), dim=-1)
    mask = encoder_out["encoder_padding_mask"]
    lengths = lprobs.new_full((lprobs.size(1),), lprobs.size(0)).long()
    if mask:
        lengths -= mask[0].sum(dim=1)
    return lprobs, lengths


@dataclass
class S2TDuRNNConfig(DuRNNSeq2SeqConfig, SpeechInputConfig):
    encoder_ctc: bool = field(default=False, metadata={
        "help": "add a linear CTC output on the encoder states, trained by --criterion "
                "label_smoothed_cross_entropy_with_ctc --ctc-weight W (unused in decoding)"})

    def validate(self) -> None:
        super().validate()
        self.validate_speech_input()


@register_model("s2t_durnn", dataclass=S2TDuRNNConfig)
class S2TDuRNNModel(DuRNNSeq2SeqModel):
    config_class = S2TDuRNNConfig

    @classmethod
    def side_lengths(cls, cfg, task) -> Dict[str, Tuple[Optional[int], str]]:
        """Encoder: :func:`subsampled_frame_bound`; decoder: ``--max-target-positions``."""
        tokens = task_option(task, "max_target_positions")
        return {"encoder": subsampled_frame_bound(cfg, task),
                "decoder": (tokens, "--max-target-positions")}

    @classmethod
    def build_model(cls, cfg, task):
        model = super().build_model(cfg, task)
        if safe_getattr(cfg, "encoder_ctc", False):
            model.ctc_proj = nn.Linear(model.encoder.output_size, len(task.target_dictionary))
        return model

    def forward(self, src_tokens: Tensor, src_lengths: Tensor, prev_output_tokens: Tensor,
                **kwargs):
        """As fairseq's encoder-decoder forward; the decoder's extra output also holds
        ``encoder_out``, which :meth:`get_ctc_output` reads."""
        encoder_out = self.encoder(src_tokens, src_lengths=src_lengths, **kwargs)
        x, extra = self.decoder(prev_output_tokens, encoder_out=encoder_out, **kwargs)
        extra["encoder_out"] = encoder_out
        return x, extra

    def get_ctc_output(self, net_output, sample) -> Tuple[Tensor, Tensor]:
        """CTC log-probabilities ``(T, B, V)`` (fp32) of the encoder states and their lengths
        ``(B,)``."""
        return ctc_output(self.ctc_proj, net_output[1]["encoder_out"])

    def get_ctc_target(self, sample) -> Tuple[Tensor, Tensor]:
        return sample["target"], sample["target_lengths"]

    @classmethod
    def build_front_end(cls, cfg: S2TDuRNNConfig, task) -> SpeechFrontEnd:
        return SpeechFrontEnd(cfg.input_size(), cfg.conv_channels, cfg.encoder_embed_dim,
                              cfg.kernel_sizes())


@register_model_architecture("s2t_durnn", "s2t_durnn_m")
def s2t_durnn_m(cfg):
    """The defaults."""


@register_model_architecture("s2t_durnn", "s2t_durnn_s")
def s2t_durnn_s(cfg):
    cfg.conv_channels = safe_getattr(cfg, "conv_channels", 256)
    small_architecture(cfg, encoder_num_layers=3)
