"""Shuffled blocks that start from a cached state (``--state-cache``, training only).

Stream groups (:mod:`.streams`) keep every stream in order so that its state can be carried,
which makes consecutive batches correlated. This mode keeps the order of the stateless task
instead and carries the state through a cache:

* Blocks: a data-parallel worker ``r`` of ``R`` owns the ``r``-th contiguous piece ``(L,)`` of the
  split (:func:`~.streams.split_streams` with one stream per worker). It is cut into
  ``K = (L - 1) // T`` blocks: block ``n`` has source tokens ``[n T, n T + T)`` and targets one
  position later (the last ``(L - 1) mod T`` tokens are not used). Each epoch the ``K`` blocks are
  put in a random order (drawn from ``--seed`` and the epoch) and taken ``B`` at a time, so a batch
  is ``(B, T)``; the last ``K mod B`` blocks of the order wait for a later epoch.
* State: block ``n`` starts from the final state that block ``n - 1`` reached the last time it was
  trained, in this epoch or an earlier one, computed by the weights of that time and detached; from
  zeros while block ``n - 1`` has not been trained yet, and always for block 0. Every trained
  block's final state replaces its entry. So each block is read with (slightly stale) context from
  the text before it, while consecutive updates see unrelated blocks, as in ``language_modeling``.

:class:`StateCache` holds one entry per block, per layer and state tensor ``(d, K, C)`` (the
stack's ``(d, B, C)`` with blocks for batch), on the device of the states it is given.
"""
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from ..errors import OneLineError
from .state_carrier import StateBox
from .streams import language_model_sample, split_streams


class ShuffledBlocks(torch.utils.data.Dataset):
    """Item ``j`` of one epoch: the whole batch ``(blocks (B,), source (B, T), target (B, T))``
    of the blocks at positions ``[j B, (j + 1) B)`` of the epoch's order."""

    def __init__(self, piece: Tensor, tokens_per_sample: int, batch_size: int, seed: int):
        super().__init__()
        T = tokens_per_sample
        self.num_blocks = (piece.numel() - 1) // T
        if self.num_blocks < batch_size:
            raise OneLineError(f"--state-cache: a worker's piece of the split has "
                               f"{self.num_blocks} blocks of {T} tokens, fewer than the batch "
                               f"size {batch_size}: use a smaller --batch-size or "
                               "--tokens-per-sample, or more data")
        used = piece[:self.num_blocks * T + 1]
        self.source = used[:-1].view(self.num_blocks, T)
        self.target = used[1:].view(self.num_blocks, T)
        order = torch.randperm(self.num_blocks, generator=torch.Generator().manual_seed(seed))
        self.batches = order[:self.num_blocks // batch_size * batch_size].view(-1, batch_size)

    def __len__(self) -> int:
        return self.batches.shape[0]

    def __getitem__(self, j: int) -> Tuple[Tensor, Tensor, Tensor]:
        blocks = self.batches[j]
        return blocks, self.source[blocks], self.target[blocks]


def worker_blocks(tokens: Tensor, batch_size: int, tokens_per_sample: int, num_shards: int = 1,
                  shard_id: int = 0, seed: int = 1) -> ShuffledBlocks:
    """The shuffled blocks of worker ``shard_id``'s contiguous piece of ``tokens`` ``(N,)``."""
    piece = split_streams(tokens, num_shards)[shard_id]
    return ShuffledBlocks(piece, tokens_per_sample, batch_size, seed)


def collate_blocks(items) -> Dict:
    """One item of :class:`ShuffledBlocks` -> a fairseq sample whose ``blocks`` name its rows."""
    (blocks, source, target), = items
    return language_model_sample(blocks, source, target, blocks=blocks)


class StateCache:
    """The last final state of every block of one worker's piece (see the module docstring)."""

    def __init__(self):
        self.filled: Optional[Tensor] = None  # (K,) bool: the block's entry holds a state
        self.states: Optional[List[Tuple[Tensor, ...]]] = None  # per layer, tensors (d, K, C)

    def ensure(self, num_blocks: int) -> None:
        """Start empty unless the cache already has ``num_blocks`` entries (a resumed run)."""
        if self.filled is None or self.filled.numel() != num_blocks:
            self.filled = torch.zeros(num_blocks, dtype=torch.bool)
            self.states = None

    def box_for(self, blocks: Tensor) -> StateBox:
        """A box holding, for row ``i``, the entry of block ``blocks[i] - 1`` (zeros where
        there is none); an empty box (the stack's zeros) when no row has one."""
        box = StateBox()
        previous = blocks.cpu() - 1
        rows = previous.clamp(min=0)
        has = (previous >= 0) & self.filled[rows]
        if self.states is not None and bool(has.any()):
            device = self.states[0][0].device
            missing, rows = ~has.to(device).view(1, -1, 1), rows.to(device)
            box.state = [tuple(t[:, rows].masked_fill(missing, 0) for t in layer)
                         for layer in self.states]
        return box

    def store(self, blocks: Tensor, box: StateBox) -> None:
        """Write the final state the model left in ``box`` as the entries of ``blocks``."""
        blocks = blocks.cpu()
        if self.states is None:
            K = self.filled.numel()
            self.states = [tuple(t.new_zeros(t.shape[0], K, t.shape[2]) for t in layer)
                           for layer in box.state]
        device = self.states[0][0].device
        index = blocks.to(device)
        for entries, final in zip(self.states, box.state):
            for entry, t in zip(entries, final):
                entry[:, index] = t.to(device)
        self.filled[blocks] = True

    def state_dict(self) -> Optional[Dict]:
        """Tensors on the CPU and lists only (torch's weights-only loader reads them back);
        ``None`` before :meth:`ensure` sized the cache."""
        if self.filled is None:
            return None
        states = None if self.states is None else [[t.cpu() for t in l] for l in self.states]
        return {"filled": self.filled, "states": states}

    def load_state_dict(self, saved: Dict) -> None:
        self.filled = saved["filled"].clone()
        self.states = None if saved["states"] is None else [tuple(l) for l in saved["states"]]
