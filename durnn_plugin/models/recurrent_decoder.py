"""``RecurrentDecoder``: the one recurrent decoder, of ``durnn_lm`` (no attention) and of the
encoder-decoder models ``s2t_durnn`` and ``durnn`` (global attention over the encoder output)::

    prev tokens (B, T) -> embedding (T, B, E) -> dropout -> stack (T, B, N)
        [-> attention over encoder_out (S, B, M): o_t = tanh(W_o [c_t ; q_t])    (T, B, E)]
        -> dropout [-> projection to E where the output embedding is tied to a wider input]
        -> logits (B, T, V) = o Wᵀ (W: the input embedding when tied, else its own),
           or the features of an adaptive softmax

Attention comes after the stack (no input feeding), so training runs the stack over the whole
target at once, and incremental decoding (one token per step) gives the same logits. Right-padded
batches are handled by lengths, so padding never changes the scores of real tokens.

Incremental decoding keeps the stack state (one tuple per layer of tensors ``(d_l, B, C)``, batch
on dim 1) in fairseq's ``incremental_state`` as a flat dict ``{"<layer>_<part>": tensor}``;
``reorder_incremental_state`` selects beam rows with ``index_select`` on dim 1. Stateful
truncated BPTT (task ``durnn_language_modeling``) passes ``carried_state``, a box whose ``state``
(``None``: zeros) the stack starts from and which receives the final state, detached.
"""
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from fairseq.models import FairseqIncrementalDecoder
from fairseq.models.transformer import Embedding
from fairseq.modules import AdaptiveSoftmax

from ..modules import RecurrentStack, StackOptions
from ..modules.attention import GlobalAttention

STATE_KEY = "stack_state"
IncrementalState = Dict[str, Dict[str, Optional[Tensor]]]


def right_padded_lengths(tokens: Tensor, padding_idx: int) -> Optional[Tensor]:
    """Lengths ``(B,)`` of right-padded ``tokens (B, T)``, or ``None`` when nothing is padded."""
    pad = tokens.eq(padding_idx)
    return (~pad).long().sum(1) if bool(pad.any()) else None


class RecurrentDecoder(FairseqIncrementalDecoder):
    """See the module docstring. ``encoder_size``: the encoder output size M (``None``: no
    attention); ``adaptive_softmax_cutoff``: the bands of an adaptive softmax (``None``: a full
    softmax, its weight tied to the input embedding with ``share_input_output_embed``)."""

    def __init__(self, dictionary, embed_dim: int, opts: StackOptions, *, embed_dropout: float,
                 output_dropout: float, share_input_output_embed: bool = False,
                 encoder_size: Optional[int] = None,
                 adaptive_softmax_cutoff: Optional[List[int]] = None,
                 adaptive_softmax_dropout: float = 0.0, adaptive_softmax_factor: float = 4.0):
        super().__init__(dictionary)
        self.padding_idx = dictionary.pad()
        self.embed_tokens = Embedding(len(dictionary), embed_dim, self.padding_idx)
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.stack = RecurrentStack(opts, embed_dim)
        self.attention = None
        size = self.stack.output_size
        if encoder_size is not None:
            self.attention = GlobalAttention(size, encoder_size, embed_dim)
            size = embed_dim
        self.output_dropout = nn.Dropout(output_dropout)
        self.adaptive_softmax = self.project_out = self.output_weight = None
        if adaptive_softmax_cutoff:
            self.adaptive_softmax = AdaptiveSoftmax(len(dictionary), size, adaptive_softmax_cutoff,
                                                    adaptive_softmax_dropout,
                                                    factor=adaptive_softmax_factor)
        elif share_input_output_embed:
            if size != embed_dim:
                self.project_out = nn.Linear(size, embed_dim, bias=False)
        else:
            self.output_weight = nn.Parameter(torch.empty(len(dictionary), size))
            nn.init.normal_(self.output_weight, mean=0, std=size ** -0.5)

    def forward(self, prev_output_tokens: Tensor,
                encoder_out: Optional[Dict[str, List[Tensor]]] = None,
                incremental_state: Optional[IncrementalState] = None,
                features_only: bool = False, carried_state=None, **unused):
        x, extra = self.extract_features(prev_output_tokens, encoder_out, incremental_state,
                                         carried_state)
        if not features_only:
            x = self.output_layer(x)
        return x, extra

    def extract_features(self, prev_output_tokens: Tensor,
                         encoder_out: Optional[Dict[str, List[Tensor]]] = None,
                         incremental_state: Optional[IncrementalState] = None,
                         carried_state=None, **unused):
        """tokens ``(B, T)`` (only the last one is read when incremental) -> features
        ``(B, T, N or E)`` and ``{"attn": [weights (B, T, S) or None]}``. ``carried_state``: an
        object with a ``state`` attribute (per-layer tuples of ``(d, B, C)`` tensors or
        ``None``) to start from; the final state is stored back there, detached and copied into
        its own memory."""
        state, lengths = None, None
        if incremental_state is not None:
            prev_output_tokens = prev_output_tokens[:, -1:]
            state = self.get_stack_state(incremental_state)
        else:
            lengths = right_padded_lengths(prev_output_tokens, self.padding_idx)
            if carried_state is not None:
                state = carried_state.state
        x = self.embed_dropout(self.embed_tokens(prev_output_tokens)).transpose(0, 1)
        y, state = self.stack(x, lengths, state)
        if incremental_state is not None:
            self.set_stack_state(incremental_state, state)
        elif carried_state is not None:
            # clone: a slice of the output would keep the whole (T, B, C) storage alive
            carried_state.state = [tuple(t.detach().clone() for t in layer) for layer in state]
        attn = None
        if self.attention is not None:
            mask = encoder_out["encoder_padding_mask"]
            y, attn = self.attention(y, encoder_out["encoder_out"][0], mask[0] if mask else None)
        y = self.output_dropout(y).transpose(0, 1)
        if self.project_out is not None:
            y = self.project_out(y)
        return y, {"attn": [attn], "inner_states": [y]}

    def output_layer(self, features: Tensor) -> Tensor:
        if self.adaptive_softmax is not None:
            return features
        weight = self.embed_tokens.weight if self.output_weight is None else self.output_weight
        return nn.functional.linear(features, weight)

    def max_positions(self):
        """A recurrent model has no position limit: fairseq must not drop samples longer than the
        training blocks (eval-lm with longer ``--tokens-per-sample`` scores every token)."""
        return int(1e6)

    def get_stack_state(self, incremental_state: IncrementalState) -> Optional[List[tuple]]:
        """The stored state (``None`` before the first step)."""
        flat = self.get_incremental_state(incremental_state, STATE_KEY)
        if flat is None:
            return None
        layers: Dict[int, Dict[int, Tensor]] = {}
        for key, tensor in flat.items():
            layer, part = map(int, key.split("_"))
            layers.setdefault(layer, {})[part] = tensor
        return [tuple(layers[i][j] for j in sorted(layers[i])) for i in sorted(layers)]

    def set_stack_state(self, incremental_state: IncrementalState, state: List[tuple]) -> None:
        flat = {f"{i}_{j}": t for i, layer in enumerate(state) for j, t in enumerate(layer)}
        self.set_incremental_state(incremental_state, STATE_KEY, flat)

    def reorder_incremental_state(self, incremental_state: IncrementalState, new_order: Tensor):
        flat = self.get_incremental_state(incremental_state, STATE_KEY)
        if flat is None:
            return
        flat = {k: v.index_select(1, new_order) for k, v in flat.items()}
        self.set_incremental_state(incremental_state, STATE_KEY, flat)
