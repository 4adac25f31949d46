"""``DuRNNDecoder``: a unidirectional :class:`~durnn_plugin.modules.RecurrentStack` with global
attention over the encoder output.

    prev tokens (B, T) -> embedding (T, B, E) -> stack (T, B, N)
        -> attention over encoder_out (S, B, M): o_t = tanh(W_o [c_t ; q_t])  (T, B, E)
        -> logits (B, T, V) = o W^T  (W: the input embedding when tied, else its own)

Attention comes after the stack (no input feeding), so training runs the stack over the whole
target at once, and incremental decoding (one token per step, the stack state carried in
``incremental_state``, see :mod:`.stack_state`) gives the same logits.
"""
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from ..modules import RecurrentStack, StackOptions
from ..modules.attention import GlobalAttention
from .stack_state import IncrementalState, StackStateDecoder, right_padded_lengths


class DuRNNDecoder(StackStateDecoder):
    def __init__(self, dictionary, embed_dim: int, opts: StackOptions, encoder_size: int,
                 dropout: float, share_input_output_embed: bool):
        super().__init__(dictionary)
        self.padding_idx = dictionary.pad()
        self.embed_tokens = nn.Embedding(len(dictionary), embed_dim, self.padding_idx)
        nn.init.normal_(self.embed_tokens.weight, mean=0, std=embed_dim ** -0.5)
        nn.init.zeros_(self.embed_tokens.weight[self.padding_idx])
        self.embed_dropout = nn.Dropout(dropout)
        self.stack = RecurrentStack(opts, embed_dim)
        self.attention = GlobalAttention(self.stack.output_size, encoder_size, embed_dim)
        self.output_dropout = nn.Dropout(dropout)
        self.output_weight = None
        if not share_input_output_embed:
            self.output_weight = nn.Parameter(torch.empty(len(dictionary), embed_dim))
            nn.init.normal_(self.output_weight, mean=0, std=embed_dim ** -0.5)

    def forward(self, prev_output_tokens: Tensor, encoder_out: Dict[str, List[Tensor]],
                incremental_state: Optional[IncrementalState] = None,
                features_only: bool = False, **unused):
        x, extra = self.extract_features(prev_output_tokens, encoder_out, incremental_state)
        if not features_only:
            x = self.output_layer(x)
        return x, extra

    def extract_features(self, prev_output_tokens: Tensor, encoder_out: Dict[str, List[Tensor]],
                         incremental_state: Optional[IncrementalState] = None, **unused):
        """tokens ``(B, T)`` (only the last one when incremental) -> features ``(B, T, E)`` and
        ``{"attn": [weights (B, T, S)]}``."""
        state = None
        lengths = None
        if incremental_state is not None:
            prev_output_tokens = prev_output_tokens[:, -1:]
            state = self.get_stack_state(incremental_state)
        else:
            lengths = right_padded_lengths(prev_output_tokens, self.padding_idx)
        x = self.embed_dropout(self.embed_tokens(prev_output_tokens)).transpose(0, 1)
        y, state = self.stack(x, lengths, state)
        if incremental_state is not None:
            self.set_stack_state(incremental_state, state)
        mask = encoder_out["encoder_padding_mask"]
        y, attn = self.attention(y, encoder_out["encoder_out"][0], mask[0] if mask else None)
        y = self.output_dropout(y).transpose(0, 1)
        return y, {"attn": [attn], "inner_states": [y]}

    def output_layer(self, features: Tensor) -> Tensor:
        weight = self.embed_tokens.weight if self.output_weight is None else self.output_weight
        return nn.functional.linear(features, weight)

    def max_positions(self):
        return int(1e6)
