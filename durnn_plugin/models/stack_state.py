"""Incremental decoding on a :class:`~durnn_plugin.modules.RecurrentStack`, shared by every
recurrent decoder (``durnn_lm``, the attention decoder of ``s2t_durnn`` / ``durnn``).

The stack state (one tuple per layer of tensors ``(d_l, B, C)``, batch on dim 1) is kept in
fairseq's ``incremental_state`` as a flat dict ``{"<layer>_<part>": tensor}``; beam search
reorders it with ``index_select`` on dim 1.
"""
from typing import Dict, List, Optional

from torch import Tensor

from fairseq.models import FairseqIncrementalDecoder

STATE_KEY = "stack_state"

IncrementalState = Dict[str, Dict[str, Optional[Tensor]]]


def right_padded_lengths(tokens: Tensor, padding_idx: int) -> Optional[Tensor]:
    """Lengths ``(B,)`` of right-padded ``tokens (B, T)``, or ``None`` when nothing is padded."""
    pad = tokens.eq(padding_idx)
    return (~pad).long().sum(1) if bool(pad.any()) else None


class StackStateDecoder(FairseqIncrementalDecoder):
    """A :class:`FairseqIncrementalDecoder` whose incremental state is one stack state."""

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
