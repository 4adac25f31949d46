"""``DuRNNEncoder``: a front-end then a bidirectional :class:`~durnn_plugin.modules.RecurrentStack`.

Front-ends map ``(src_tokens, src_lengths)`` to right-padded frames ``x (T, B, E)`` and their
lengths ``(B,)``:

* :class:`SpeechFrontEnd`: features ``(B, T_in, C·D)`` -> fairseq's convolutional subsampler
  (1-D convolutions of stride 2, each followed by a GLU), ``T = ceil(T_in / 2^K)`` for K layers;
  positions past each utterance's length are zeroed before every convolution, so padding
  never reaches a valid output frame.
* :class:`TokenFrontEnd`: token ids ``(B, T)`` (left- or right-padded) -> embeddings.

Encoder output (the dict fairseq's decoders and ``SequenceGenerator`` use)::

    encoder_out           [ y (T, B, 2N) ]   stack output, zero at padding
    encoder_padding_mask  [ (B, T) bool ]    True at padding (t >= length)
    src_lengths           [ (B,) ]           lengths after the front-end
"""
from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor, nn

from fairseq import utils
from fairseq.models import FairseqEncoder
from fairseq.models.transformer import Embedding
from fairseq.models.speech_to_text.modules.convolution import Conv1dSubsampler

from ..modules import RecurrentStack, StackOptions


def padding_mask(lengths: Tensor, max_len: int) -> Tensor:
    """``(B, T)`` bool, True where ``t >= lengths[b]``."""
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) >= lengths.unsqueeze(1)


class SpeechFrontEnd(Conv1dSubsampler):
    """fairseq's :class:`Conv1dSubsampler` with padding zeroed before each convolution.
    Kernel sizes must be odd (then a length L becomes ``(L - 1) // 2 + 1`` per layer)."""

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


class DuRNNEncoder(FairseqEncoder):
    def __init__(self, front_end: nn.Module, opts: StackOptions, dropout: float, dictionary=None):
        super().__init__(dictionary)
        self.front_end = front_end
        self.input_dropout = nn.Dropout(dropout)
        self.stack = RecurrentStack(opts, front_end.output_size)
        self.output_dropout = nn.Dropout(dropout)
        self.output_size = self.stack.output_size

    def forward(self, src_tokens: Tensor, src_lengths: Tensor, **unused) -> Dict[str, List[Tensor]]:
        x, lengths = self.front_end(src_tokens, src_lengths)
        y, _ = self.stack(self.input_dropout(x), lengths)
        mask = padding_mask(lengths, y.shape[0])
        y = self.output_dropout(y).masked_fill(mask.t().unsqueeze(-1), 0.0)
        return {
            "encoder_out": [y],  # (T, B, 2N)
            "encoder_padding_mask": [mask],  # (B, T)
            "encoder_embedding": [],
            "encoder_states": [],
            "src_tokens": [],
            "src_lengths": [lengths],  # (B,)
        }

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
        return int(1e6)
