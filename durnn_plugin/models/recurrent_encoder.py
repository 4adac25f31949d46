"""``RecurrentEncoder``: a front-end, then a :class:`~durnn_plugin.modules.RecurrentStack`, the
one encoder of the classifier (``durnn_classifier``) and the encoder-decoder models (``durnn``,
``s2t_durnn``).

Front-ends map their input and lengths ``(B,)`` to right-padded frames ``x (T, B, E)`` and the
lengths after them; each names the ``net_input`` entry it reads (``input_name``):

* :class:`SpeechFrontEnd` (``src_tokens``): features ``(B, T_in, C·D)`` -> fairseq's
  convolutional subsampler (1-D convolutions of stride 2, each followed by a GLU),
  ``T = ceil(T_in / 2^K)`` for K layers; positions past each utterance's length are zeroed
  before every convolution, so padding never reaches a valid output frame.
* :class:`TokenFrontEnd` (``src_tokens``): token ids ``(B, T)`` (left- or right-padded) ->
  embeddings; lengths are the non-padding counts.
* :class:`ValueFrontEnd` (``src_values``): real values ``(B, T, F)`` -> ``Linear(F, E)``.

Encoder: ``y = dropout_out(stack(dropout_in(x), lengths))``, zero at padding; the stack is
bidirectional (output ``2N``) when its options say so. Output (the dict fairseq's decoders and
``SequenceGenerator`` use)::

    encoder_out           [ y (T, B, N or 2N) ]  stack output, zero at padding
    encoder_padding_mask  [ (B, T) bool ]        True at padding (t >= length)
    src_lengths           [ (B,) ]               lengths after the front-end

Checkpoints of the classifier saved before it shared this encoder keep the token embedding at
``encoder.embed_tokens`` and the value projection at ``encoder.embed_values``; loading renames
them to ``encoder.front_end.*``.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from fairseq import utils
from fairseq.models import FairseqEncoder
from fairseq.models.transformer import Embedding
from fairseq.models.speech_to_text.modules.convolution import Conv1dSubsampler

from ..errors import OneLineError
from ..modules import RecurrentStack, StackOptions

OLD_FRONT_END_KEYS = ("embed_tokens.", "embed_values.")  # directly on the classifier's encoder


def padding_mask(lengths: Tensor, max_len: int) -> Tensor:
    """``(B, T)`` bool, True where ``t >= lengths[b]``."""
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) >= lengths.unsqueeze(1)


class SpeechFrontEnd(Conv1dSubsampler):
    """fairseq's :class:`Conv1dSubsampler` with padding zeroed before each convolution.
    Kernel sizes must be odd (then a length L becomes ``(L - 1) // 2 + 1`` per layer)."""

    input_name = "src_tokens"

    def __init__(self, input_dim: int, channels: int, output_size: int,
                 kernel_sizes: Sequence[int]):
        super().__init__(input_dim, channels, output_size, list(kernel_sizes))
        self.output_size = output_size

    def forward(self, src_tokens: Tensor, src_lengths: Tensor) -> Tuple[Tensor, Tensor]:
        """features ``(B, T_in, C·D)``, lengths ``(B,)`` -> ``(T, B, E)``, lengths ``(B,)``."""
        x = src_tokens.transpose(1, 2)  # (B, C·D, T_in)
        lengths = src_lengths
        for conv in self.conv_layers:
            x = x.masked_fill(padding_mask(lengths, x.shape[2]).unsqueeze(1), 0.0)
            x = nn.functional.glu(conv(x), dim=1)
            lengths = torch.div(lengths - 1, 2, rounding_mode="floor") + 1
        return x.permute(2, 0, 1).contiguous(), lengths


class TokenFrontEnd(nn.Module):
    """Token embedding (scaled init, zero padding row); left padding is moved to the right."""

    input_name = "src_tokens"

    def __init__(self, dictionary, embed_dim: int):
        super().__init__()
        self.padding_idx = dictionary.pad()
        self.embed_tokens = Embedding(len(dictionary), embed_dim, self.padding_idx)
        self.output_size = embed_dim

    def forward(self, src_tokens: Tensor, src_lengths: Tensor) -> Tuple[Tensor, Tensor]:
        """tokens ``(B, T)`` -> ``(T, B, E)``, lengths ``(B,)``."""
        tokens = utils.convert_padding_direction(src_tokens, self.padding_idx, left_to_right=True)
        lengths = tokens.ne(self.padding_idx).long().sum(1)
        return self.embed_tokens(tokens).transpose(0, 1), lengths


class ValueFrontEnd(nn.Module):
    """Real-valued inputs: ``Linear(F, E)`` per position."""

    input_name = "src_values"

    def __init__(self, input_features: int, embed_dim: int):
        super().__init__()
        self.embed_values = nn.Linear(input_features, embed_dim)
        self.output_size = embed_dim

    def forward(self, src_values: Tensor, src_lengths: Tensor) -> Tuple[Tensor, Tensor]:
        """values ``(B, T, F)`` -> ``(T, B, E)``, lengths ``(B,)``."""
        return self.embed_values(src_values).transpose(0, 1), src_lengths


class RecurrentEncoder(FairseqEncoder):
    """``front_end`` (reads ``net_input[front_end.input_name]``) -> ``Dropout(input_dropout)`` ->
    :class:`RecurrentStack` of ``opts`` -> ``Dropout(output_dropout)``; ``max_positions``: the
    longest input accepted (``None``: no limit of its own, ``10^6``)."""

    def __init__(self, front_end: nn.Module, opts: StackOptions, input_dropout: float,
                 output_dropout: float, dictionary=None, max_positions: Optional[int] = None):
        super().__init__(dictionary)
        self.front_end = front_end
        self.padding_idx = getattr(front_end, "padding_idx", None)
        self.input_dropout = nn.Dropout(input_dropout)
        self.stack = RecurrentStack(opts, front_end.output_size)
        self.output_dropout = nn.Dropout(output_dropout)
        self.output_size = self.stack.output_size
        self.max_source_positions = max_positions

    def forward(self, src_tokens: Optional[Tensor] = None, src_lengths: Optional[Tensor] = None,
                src_values: Optional[Tensor] = None, **unused) -> Dict[str, List[Tensor]]:
        """The front-end's input ``(B, T_in, ...)`` and ``src_lengths (B,)`` (``None``: no
        padding) -> the dict of the module docstring."""
        source = {"src_tokens": src_tokens, "src_values": src_values}[self.front_end.input_name]
        if source is None:
            reads = ("real-valued inputs: net_input needs src_values (B, T, F), not src_tokens"
                     if self.front_end.input_name == "src_values" else
                     "tokens or features: net_input needs src_tokens (B, T, ...)")
            raise OneLineError(f"this model reads {reads}")
        if src_lengths is None:
            src_lengths = torch.full(source.shape[:1], source.shape[1], dtype=torch.long,
                                     device=source.device)
        x, lengths = self.front_end(source, src_lengths)
        y, _ = self.run_stack(x, lengths)
        mask = padding_mask(lengths, y.shape[0])
        y = y.masked_fill(mask.t().unsqueeze(-1), 0.0)
        return {
            "encoder_out": [y],  # (T, B, N or 2N)
            "encoder_padding_mask": [mask],  # (B, T)
            "encoder_embedding": [],
            "encoder_states": [],
            "src_tokens": [],
            "src_lengths": [lengths],  # (B,)
        }

    def run_stack(self, x: Tensor, lengths: Optional[Tensor],
                  state: Optional[List] = None) -> Tuple[Tensor, List]:
        """Front-end frames ``x (T, B, E)`` -> ``dropout_out(stack(dropout_in(x)))`` ``(T, B, N
        or 2N)`` and the stack's final states (``state``: the states to start from)."""
        y, state = self.stack(self.input_dropout(x), lengths, state)
        return self.output_dropout(y), state

    def reorder_encoder_out(self, encoder_out: Dict[str, List[Tensor]], new_order: Tensor):
        """Select beam rows: batch is dim 1 of ``encoder_out``, dim 0 of the others."""
        return {
            "encoder_out": [x.index_select(1, new_order) for x in encoder_out["encoder_out"]],
            "encoder_padding_mask": [x.index_select(0, new_order)
                                     for x in encoder_out["encoder_padding_mask"]],
            "encoder_embedding": [],
            "encoder_states": [],
            "src_tokens": [],
            "src_lengths": [x.index_select(0, new_order) for x in encoder_out["src_lengths"]],
        }

    def max_positions(self):
        return self.max_source_positions or int(1e6)

    def upgrade_state_dict_named(self, state_dict, name):
        """Rename the front-end keys of older classifier checkpoints (module docstring)."""
        prefix = name + "." if name else ""
        for key in [k for k in state_dict if k.startswith(prefix)]:
            local = key[len(prefix):]
            if local.startswith(OLD_FRONT_END_KEYS):
                state_dict[f"{prefix}front_end.{local}"] = state_dict.pop(key)
        return state_dict
