"""A split's token stream cut into parallel streams and consecutive segments (truncated BPTT).

The split's lines (each ending with eos, as fairseq-preprocess stores them) are concatenated in
order after one leading eos, giving a stream ``(N,)``. With ``S`` streams in all it is reshaped
to ``(S, L)``, ``L = N // S`` (the last ``N mod S`` tokens are dropped); stream ``i`` is the
``i``-th contiguous piece. A data-parallel worker ``r`` of ``R`` owns the whole streams
``[r B, (r + 1) B)`` with ``B = S / R``. Its batch ``k`` holds, for every owned stream, the
source tokens ``[k T, k T + T_k)`` and the target tokens one position later, where
``T_k = min(T, L - 1 - k T)``: the last segment is kept even when it is shorter than ``T``.
Row ``i`` of every batch is the same stream; nothing is padded, nor shuffled unless asked (below).

Interleaved groups (training only, ``--stream-groups M``): the worker owns ``M`` groups of ``B``
streams (``S = B M R``, worker ``r`` the streams ``[r B M, (r + 1) B M)``, group ``g`` every
``M``-th of those from its ``g``-th, so each group still spans the worker's whole share of the
split) and batch ``j`` is segment ``k = j // M`` of group ``g = j mod M``.
Each stream is still read in order with its state carried (segment ``k`` of a group comes ``M``
batches after its segment ``k - 1``), but consecutive updates see ``M`` different sets of
documents in turn instead of the continuation of the same ones.

Shuffled streams (training only, ``--shuffle-streams``): each epoch the split is rotated by a
random offset before it is cut into streams, and the streams are dealt to workers, groups and
rows in a random order (both drawn from ``--seed`` and the epoch), so segment boundaries and the
company a stream keeps in a batch change from epoch to epoch, as block shuffling does for the
stateless task; within an epoch every stream is still read in order with its state carried.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..errors import OneLineError


def concatenate_lines(lines: Sequence[Tensor], eos: int) -> Tensor:
    """lines: 1-D token tensors in order -> stream ``(N,)`` = ``[eos] + line_0 + line_1 + ...``."""
    return torch.cat([torch.tensor([eos], dtype=torch.long)] + [line.long() for line in lines])


def split_streams(tokens: Tensor, num_streams: int) -> Tensor:
    """stream ``(N,)`` -> ``(S, L)``, ``L = N // S``: row ``i`` is tokens ``[i L, (i + 1) L)``."""
    length = tokens.numel() // num_streams
    if length < 2:
        raise OneLineError(f"the split has {tokens.numel()} tokens, too few for {num_streams} "
                           "streams (--batch-size x --stream-groups x data-parallel workers; "
                           "each stream needs at least 2 tokens): use a smaller --batch-size "
                           "(--batch-size-valid), fewer --stream-groups or more data")
    return tokens[:num_streams * length].view(num_streams, length)


class StreamSegments(torch.utils.data.Dataset):
    """Item ``j`` of one worker's streams ``(M B, L)`` (global rows ``first_row ..``) in ``M``
    groups of ``B`` (group ``g``: rows ``g, g + M, g + 2M, ...``): the whole batch of segment
    ``k = j // M`` of group ``g = j mod M``, ``(k, g, source (B, T_k), target (B, T_k), stream
    ids (B,))``."""

    def __init__(self, streams: Tensor, tokens_per_sample: int, first_row: int = 0,
                 groups: int = 1):
        super().__init__()
        self.groups = groups
        self.streams = streams
        self.tokens_per_sample = tokens_per_sample
        self.ids = torch.arange(first_row, first_row + streams.shape[0])
        self.segments = -(-(streams.shape[1] - 1) // tokens_per_sample)

    def __len__(self) -> int:
        return self.segments * self.groups

    def __getitem__(self, j: int) -> Tuple[int, int, Tensor, Tensor, Tensor]:
        k, g = divmod(j, self.groups)
        rows = slice(g, None, self.groups)
        start = k * self.tokens_per_sample
        piece = self.streams[rows, start:start + self.tokens_per_sample + 1]
        return k, g, piece[:, :-1], piece[:, 1:], self.ids[rows]


def shuffled_streams(tokens: Tensor, num_streams: int, seed: int) -> Tensor:
    """``(S, L)`` streams of ``tokens`` rotated by a random offset (the split's end joins its
    start), in a random row order; the same ``seed`` gives the same streams on every worker."""
    generator = torch.Generator().manual_seed(seed)
    offset = int(torch.randint(tokens.numel(), (1,), generator=generator))
    rows = split_streams(tokens.roll(-offset), num_streams)
    return rows[torch.randperm(num_streams, generator=generator)]


def worker_segments(tokens: Tensor, streams_per_worker: int, tokens_per_sample: int,
                    num_shards: int = 1, shard_id: int = 0, groups: int = 1,
                    shuffle_seed: Optional[int] = None) -> StreamSegments:
    """The segments of worker ``shard_id``: its ``groups`` groups of ``B`` whole streams out of
    ``B * groups * num_shards``; with ``shuffle_seed``, of :func:`shuffled_streams`."""
    owned = streams_per_worker * groups
    if shuffle_seed is None:
        rows = split_streams(tokens, owned * num_shards)
    else:
        rows = shuffled_streams(tokens, owned * num_shards, shuffle_seed)
    first = shard_id * owned
    return StreamSegments(rows[first:first + owned], tokens_per_sample, first, groups)


def collate_segment(items) -> Dict:
    """One item (a whole segment batch, see :class:`StreamSegments`) -> a fairseq sample; its
    ``segment`` and ``group`` indices let the task check that the carried state belongs to the
    group's previous segment."""
    (k, g, source, target, ids), = items
    return language_model_sample(ids, source, target, segment=k, group=g)


def language_model_sample(ids: Tensor, source: Tensor, target: Tensor, **extra) -> Dict:
    """Rows ``ids (B,)`` of source and target tokens ``(B, T)``, none padded -> a fairseq
    sample, with the ``extra`` entries the task reads (which segment or blocks it holds)."""
    B, T = source.shape
    return {
        "id": ids,
        **extra,
        "nsentences": B,
        "ntokens": B * T,
        "net_input": {"src_tokens": source.contiguous(),
                      "src_lengths": torch.full((B,), T, dtype=torch.long)},
        "target": target.contiguous(),
    }
