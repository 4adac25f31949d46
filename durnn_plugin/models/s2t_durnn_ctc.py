"""``s2t_durnn_ctc``: streaming speech recognition, an encoder with a CTC output.

features ``(B, T_in, F)`` (normalised: the data's ``global_cmvn`` transform) ->
:class:`.causal_subsampler.CausalSubsampler` (stride 2 per layer, no look-ahead) ->
``Dropout`` -> unidirectional :class:`~durnn_plugin.modules.RecurrentStack` -> ``Dropout`` ->
``p_t = log_softmax(W h_t + b)`` ``(T, B, V)`` over the target dictionary, blank = index 0
(``<s>``), trained by ``--criterion durnn_ctc``. The stack options are the encoder's of
``s2t_durnn`` (``--encoder-num-layers``, ``--encoder-hidden-size``, ...); the input size comes
from the data's ``config.yaml`` as for ``s2t_durnn``.

Every part is causal, so the output frame ``t`` depends on input frames ``<= 4t`` only (two
convolutions; ``<= 2^K t`` for K), and the model runs on a stream in chunks of any size with
constant work per frame::

    lprobs, lengths = model.ctc_log_probs(src_tokens, src_lengths)  # offline: (T, B, V), (B,)
    state = model.start_stream(batch=1)
    lprobs, state = model.stream(features (B, t, F), state)  # (t', B, V), t' >= 0 new frames

The outputs of :meth:`~S2TDuRNNCTCModel.stream`, concatenated over any chunking, equal
:meth:`~S2TDuRNNCTCModel.ctc_log_probs` over the whole input (within fp32 rounding; in
``eval()`` mode, where dropout is off). ``stream_lookahead_frames`` is 0. Batch norm (statistics
over the batch and all of time) is refused.

Named architectures: ``s2t_durnn_ctc_s`` (256 conv channels, kernels 5,5, embed 256,
3 x 256 DuRNN, layer norm, dropout 0.1) and ``s2t_durnn_ctc`` = ``s2t_durnn_ctc_m`` (the
defaults: 512 conv channels, embed 256, 4 x 320, dropout 0.2).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from torch import Tensor, nn

from fairseq.dataclass import FairseqDataclass
from fairseq.models import FairseqEncoderModel, register_model, register_model_architecture
from fairseq.utils import safe_getattr

from ..errors import OneLineError, check, check_positive_int, check_range
from ..modules import StackOptions
from ..modules.cell_base import State
from .causal_subsampler import CausalSubsampler, ConvState
from .model_config import config_of
from .recurrent_encoder import RecurrentEncoder
from .s2t_durnn import SpeechInputConfig, ctc_output, subsampled_frame_bound
from .seq2seq_base import EncoderStackOptions, prefixed_stack_options
from .stack_updates import RecurrentStackModel
from .time_steps import resolve_time_steps


@dataclass
class S2TDuRNNCTCConfig(FairseqDataclass, EncoderStackOptions, SpeechInputConfig):
    encoder_embed_dim: int = field(default=256, metadata={
        "help": "output size E of the causal subsampler, the stack's input"})
    dropout: float = field(default=0.2, metadata={
        "help": "dropout on the subsampled frames and on the stack output"})

    def stack_options(self) -> StackOptions:
        """The unidirectional stack's options, validated (errors name ``--encoder-*``)."""
        return prefixed_stack_options(self, "encoder", bidirectional=False)

    def validate(self) -> None:
        check(self.encoder_norm != "batch", "encoder_norm", self.encoder_norm,
              "layer or none: batch norm's statistics span the batch and all of time, which a "
              "stream does not have")
        self.stack_options()
        self.validate_speech_input()
        check_positive_int("encoder_embed_dim", self.encoder_embed_dim)
        check_range("dropout", self.dropout, 0, 1, hi_open=True)


@dataclass
class StreamState:
    """Where a stream stands: the subsampler's buffers and the stack's states (``None``
    before the first output frame)."""
    conv: ConvState
    stack: Optional[List[State]] = None


@register_model("s2t_durnn_ctc", dataclass=S2TDuRNNCTCConfig)
class S2TDuRNNCTCModel(RecurrentStackModel, FairseqEncoderModel):
    """Encoder (:class:`RecurrentEncoder` of a :class:`CausalSubsampler`) and ``ctc_proj``
    ``Linear(N, V)``; module docstring."""

    stream_lookahead_frames = 0  # input frames a stream output waits for beyond its own

    def __init__(self, encoder: RecurrentEncoder, ctc_proj: nn.Linear):
        super().__init__(encoder)
        self.ctc_proj = ctc_proj

    @classmethod
    def build_model(cls, cfg, task):
        resolve_time_steps(cfg, "encoder_u_time_steps", *subsampled_frame_bound(cfg, task))
        cfg = config_of(S2TDuRNNCTCConfig, cfg)
        cfg.validate()
        front_end = CausalSubsampler(cfg.input_size(), cfg.conv_channels, cfg.encoder_embed_dim,
                                     cfg.kernel_sizes())
        encoder = RecurrentEncoder(front_end, cfg.stack_options(), cfg.dropout, cfg.dropout,
                                   task.source_dictionary)
        return cls(encoder, nn.Linear(encoder.output_size, len(task.target_dictionary)))

    def get_ctc_output(self, net_output: Dict[str, List[Tensor]],
                       sample=None) -> Tuple[Tensor, Tensor]:
        """The encoder's output dict (this model's ``forward``) -> CTC log-probabilities
        ``(T, B, V)`` (fp32) and lengths ``(B,)``."""
        return ctc_output(self.ctc_proj, net_output)

    def ctc_log_probs(self, src_tokens: Tensor, src_lengths: Tensor) -> Tuple[Tensor, Tensor]:
        """The offline forward: features ``(B, T_in, F)``, lengths ``(B,)`` -> ``(T, B, V)``
        log-probabilities (``T = ceil(T_in / 4)`` for two convolutions), lengths ``(B,)``."""
        return self.get_ctc_output(self(src_tokens, src_lengths))

    def start_stream(self, batch: int = 1) -> StreamState:
        """A new stream of ``batch`` sequences: zero subsampler buffers, no stack state."""
        check_positive_int("batch", batch)
        return StreamState(self.encoder.front_end.start_stream(batch))

    def stream(self, features: Tensor, state: StreamState) -> Tuple[Tensor, StreamState]:
        """The next normalised frames ``(B, t, F)``, t >= 1 -> the log-probabilities of the
        output frames they complete ``(t', B, V)`` (t' >= 0: none while a stride waits for
        input) and the new state."""
        batch, size = state.conv[0].shape[:2]
        if features.dim() != 3 or features.shape[0] != batch or features.shape[2] != size \
                or features.shape[1] == 0:
            raise OneLineError(f"stream features are {tuple(features.shape)}; must be (B, t, F) "
                               f"with B = {batch} (the stream's batch), t >= 1, F = {size}")
        x, conv = self.encoder.front_end.stream(features, state.conv)
        if x.shape[0] == 0:
            return x.new_zeros(0, batch, self.ctc_proj.out_features), StreamState(conv,
                                                                                   state.stack)
        y, stack = self.encoder.run_stack(x, None, state.stack)
        lprobs, _ = ctc_output(self.ctc_proj, {"encoder_out": [y], "encoder_padding_mask": []})
        return lprobs, StreamState(conv, stack)


@register_model_architecture("s2t_durnn_ctc", "s2t_durnn_ctc_m")
def s2t_durnn_ctc_m(cfg):
    """The defaults."""


@register_model_architecture("s2t_durnn_ctc", "s2t_durnn_ctc_s")
def s2t_durnn_ctc_s(cfg):
    small = {"conv_channels": 256, "encoder_embed_dim": 256, "encoder_num_layers": 3,
             "encoder_hidden_size": 256, "dropout": 0.1}
    for name, value in small.items():
        setattr(cfg, name, safe_getattr(cfg, name, value))
