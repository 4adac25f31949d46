"""``CausalSubsampler``: fairseq's convolutional subsampler without look-ahead, offline and in
chunks.

Layer ``l`` (odd kernel ``k_l``, stride 2, GLU) pads ``k_l - 1`` zero frames on the left and
none on the right::

    z_t = GLU(b + Σ_{j=0}^{k-1} W_j x_{2t-k+1+j})      x_i = 0 for i < 0

so output frame ``t`` reads input frames ``2t-k+1 .. 2t`` only, and a length ``L`` becomes
``ceil(L / 2)`` per layer. The weights have the layout of fairseq's ``Conv1dSubsampler``
(``conv_layers.<l>.weight``); only the padding differs.

Streaming (:meth:`CausalSubsampler.stream`): each layer keeps the input frames that its next
output still needs, ``k - 1`` zero frames at the start. A chunk is appended to them, every
output whose ``k`` frames are complete is computed, and the frames from the next output's
first one on are kept (``k - 1`` or ``k`` of them: the buffer's length holds the stride's
parity). Concatenated over any chunking the outputs equal the offline forward's.
"""
from typing import List, Sequence, Tuple

import torch
from torch import Tensor, nn

from fairseq.models.speech_to_text.modules.convolution import Conv1dSubsampler

from .recurrent_encoder import padding_mask

ConvState = List[Tensor]  # per layer, (B, C_l, n_l) input frames still needed


class CausalSubsampler(Conv1dSubsampler):
    """features ``(B, T_in, F)`` -> frames ``(T, B, E)``, ``T = ceil(T_in / 2^K)`` for K layers
    of odd kernels (module docstring)."""

    input_name = "src_tokens"

    def __init__(self, input_dim: int, channels: int, output_size: int,
                 kernel_sizes: Sequence[int]):
        super().__init__(input_dim, channels, output_size, list(kernel_sizes))
        for conv in self.conv_layers:
            conv.padding = (0,)  # the left padding is explicit, see _layer
        self.output_size = output_size

    @staticmethod
    def _layer(conv: nn.Conv1d, x: Tensor) -> Tensor:
        """``(B, C, n)`` already left-padded -> ``(B, C', floor((n - k) / 2) + 1)``."""
        return nn.functional.glu(conv(x), dim=1)

    def forward(self, src_tokens: Tensor, src_lengths: Tensor) -> Tuple[Tensor, Tensor]:
        """features ``(B, T_in, F)``, lengths ``(B,)`` -> ``(T, B, E)``, lengths ``(B,)``;
        positions past each length are zeroed before every convolution."""
        x = src_tokens.transpose(1, 2)  # (B, F, T_in)
        lengths = src_lengths
        for conv in self.conv_layers:
            x = x.masked_fill(padding_mask(lengths, x.shape[2]).unsqueeze(1), 0.0)
            x = self._layer(conv, nn.functional.pad(x, (conv.kernel_size[0] - 1, 0)))
            lengths = torch.div(lengths + 1, 2, rounding_mode="floor")
        return x.permute(2, 0, 1).contiguous(), lengths

    def start_stream(self, batch: int) -> ConvState:
        """Each layer's buffer: ``k - 1`` zero frames ``(batch, C_l, k - 1)``."""
        weight = self.conv_layers[0].weight
        return [weight.new_zeros(batch, conv.in_channels, conv.kernel_size[0] - 1)
                for conv in self.conv_layers]

    def stream(self, features: Tensor, state: ConvState) -> Tuple[Tensor, ConvState]:
        """The next frames ``(B, t, F)`` (t >= 0) -> the outputs they complete ``(t', B, E)``
        (t' >= 0) and the new buffers."""
        x = features.transpose(1, 2)
        new_state = []
        for conv, buffer in zip(self.conv_layers, state):
            x = torch.cat([buffer, x], dim=2)  # at least k - 1 frames
            n = (x.shape[2] - conv.kernel_size[0]) // 2 + 1  # outputs complete: 0 or more
            new_state.append(x[:, :, 2 * n:])
            x = self._windows(conv, x) if n else x.new_zeros(len(x), conv.out_channels // 2, 0)
        return x.permute(2, 0, 1).contiguous(), new_state

    @staticmethod
    def _windows(conv: nn.Conv1d, x: Tensor) -> Tensor:
        """:meth:`_layer` as one matrix product over the output windows, ``(B, C, n)`` ->
        ``(B, C', floor((n - k) / 2) + 1)``: the same sums, for the few frames of a chunk,
        where ``conv1d``'s set-up costs more than its work (10 frames of 80 features into 512
        channels, 1 thread: 0.18 ms by ``conv1d``, 0.05 ms by ``linear``)."""
        k = conv.kernel_size[0]
        windows = x.unfold(2, k, 2).transpose(1, 2)  # (B, n', C, k)
        z = nn.functional.linear(windows.reshape(*windows.shape[:2], -1),
                                 conv.weight.reshape(conv.out_channels, -1), conv.bias)
        return nn.functional.glu(z.transpose(1, 2), dim=1)
