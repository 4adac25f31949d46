"""``s2t_durnn``: speech recognition / translation with fairseq's ``speech_to_text`` task.

features ``(B, T_in, 80)`` -> convolutional subsampler (stride 2 per layer) -> bidirectional
stack -> attention decoder (see :mod:`.seq2seq_base`, :mod:`.durnn_encoder`,
:mod:`.recurrent_decoder`). The input size comes from the data's ``config.yaml``
(``input_feat_per_channel`` x ``input_channels``), which the task copies into the model config.

Named architectures: ``s2t_durnn`` and ``s2t_durnn_m`` (the defaults: encoder 4 x 320 per
direction, decoder 2 x 512), ``s2t_durnn_s`` (small, trains on a CPU: encoder 3 x 256,
decoder 1 x 256, 128-dim embeddings, 256 conv channels).
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple


from fairseq.models import register_model, register_model_architecture
from fairseq.utils import safe_getattr

from ..errors import check, check_positive_int
from .durnn_encoder import SpeechFrontEnd
from .time_steps import task_option
from .seq2seq_base import DuRNNSeq2SeqConfig, DuRNNSeq2SeqModel, small_architecture


@dataclass
class S2TDuRNNConfig(DuRNNSeq2SeqConfig):
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

    def validate(self) -> None:
        super().validate()
        parts = str(self.conv_kernel_sizes).split(",")
        check(all(p.strip().isdigit() and int(p) % 2 == 1 for p in parts), "conv_kernel_sizes",
              self.conv_kernel_sizes, "comma-separated odd positive integers, e.g. 5,5")
        check_positive_int("conv_channels", self.conv_channels)


@register_model("s2t_durnn", dataclass=S2TDuRNNConfig)
class S2TDuRNNModel(DuRNNSeq2SeqModel):
    config_class = S2TDuRNNConfig

    @classmethod
    def side_lengths(cls, cfg, task) -> Dict[str, Tuple[Optional[int], str]]:
        """Encoder: the subsampled frame bound, ``--max-source-positions`` halved once per
        convolution; decoder: ``--max-target-positions``."""
        halvings = len(str(cfg.conv_kernel_sizes).split(","))
        frames = task_option(task, "max_source_positions")
        tokens = task_option(task, "max_target_positions")
        return {"encoder": (None if frames is None else -(-int(frames) // 2 ** halvings),
                            f"--max-source-positions {frames} after {halvings} halvings"),
                "decoder": (tokens, "--max-target-positions")}

    @classmethod
    def build_front_end(cls, cfg: S2TDuRNNConfig, task) -> SpeechFrontEnd:
        return SpeechFrontEnd(cfg.input_feat_per_channel * cfg.input_channels,
                              cfg.conv_channels, cfg.encoder_embed_dim, cfg.kernel_sizes())


@register_model_architecture("s2t_durnn", "s2t_durnn_m")
def s2t_durnn_m(cfg):
    """The defaults."""


@register_model_architecture("s2t_durnn", "s2t_durnn_s")
def s2t_durnn_s(cfg):
    cfg.conv_channels = safe_getattr(cfg, "conv_channels", 256)
    small_architecture(cfg, encoder_num_layers=3)
