"""Every data-parallel worker's training state, kept up to date on worker 0 for its checkpoints.

One worker's training state (:class:`TrainingState`) is the carrier of its streams
(:mod:`.state_carrier`) or, with ``--state-cache``, the cache of its blocks (:mod:`.state_cache`).
A training batch is named by its *key*: ``{"segment": k, "group": g}`` for a stream batch,
``{"blocks": (B,), "num_blocks": K}`` for a batch of blocks.

fairseq writes checkpoints on data-parallel worker 0 only and asks the task for what to save
there alone (``get_checkpoint_dict``), so no collective may run at that point: the other
workers never reach it. The training batches are points that every worker passes in step
(fairseq gives each worker the same number per update, padding with dummy batches), so after
each one :class:`WorkerStates` all-gathers what the batch changed: its key and the final state
the model left, per layer a tuple of ``(d, B, C)`` tensors, moved to the CPU
(``torch.distributed.all_gather_object``; a dummy batch contributes ``None``). Worker 0 replays
each other worker's batch on a replica of that worker's state, kept on the CPU: it looks up the
key's box as that worker did (the same carrier logic, the same seeded reset draws) and puts the
gathered state in it, so at every checkpoint it holds each worker's position and carried state
exactly as that worker holds them. Cost per training batch: one ``all_gather_object`` of the
batch's final states; worker 0 keeps every worker's carrier (cache) in CPU memory.
"""
from typing import Callable, Dict, List, Optional

import torch
from fairseq import distributed_utils

from .state_cache import StateCache
from .state_carrier import StateBox, StateCarrier


def batch_key(sample: Dict, cache: Optional[StateCache]) -> Dict:
    """The key of a training ``sample`` (see the module docstring)."""
    if "blocks" in sample:
        return {"blocks": sample["blocks"].cpu(), "num_blocks": cache.filled.numel()}
    return {"segment": sample["segment"], "group": sample["group"]}


class TrainingState:
    """One worker's training state: ``carrier`` (stream batches) and, with ``--state-cache``,
    ``cache`` (batches of blocks)."""

    def __init__(self, reset_prob: float, seed: int, cached: bool):
        self.carrier = StateCarrier(reset_prob, seed)
        self.cache = StateCache() if cached else None

    def box_for(self, key: Dict) -> StateBox:
        """The box the batch ``key`` starts from (see :meth:`StateCarrier.box_for` and
        :meth:`StateCache.box_for`)."""
        if "blocks" in key:
            self.cache.ensure(key["num_blocks"])
            return self.cache.box_for(key["blocks"])
        return self.carrier.box_for(key["segment"], key["group"])

    def keep(self, key: Dict, box: StateBox) -> None:
        """Record the final state the model left in ``box`` for the batch ``key`` (the cache
        stores it; a carrier already holds the box)."""
        if "blocks" in key:
            self.cache.store(key["blocks"], box)

    def state_dict(self) -> Dict:
        return {"train": self.carrier.state_dict(),
                "cache": None if self.cache is None else self.cache.state_dict()}

    def load_state_dict(self, saved: Dict) -> None:
        self.carrier.load_state_dict(saved["train"])
        if self.cache is not None and saved.get("cache") is not None:
            self.cache.load_state_dict(saved["cache"])


class WorkerStates:
    """This worker's :class:`TrainingState` (``own``) and, on data-parallel worker 0, a replica
    of every other worker's (``replicas``), made by ``make``."""

    def __init__(self, make: Callable[[], TrainingState]):
        self.make = make
        self.own = make()
        self.replicas: Dict[int, TrainingState] = {}

    def after_batch(self, key: Optional[Dict], box: StateBox) -> None:
        """Called by every worker after each training batch (``key`` ``None`` for a dummy
        batch): keep the batch's final state, then share it with worker 0 (a collective)."""
        if key is not None:
            self.own.keep(key, box)
        if distributed_utils.get_data_parallel_world_size() == 1:
            return
        mine = None if key is None else (key, [tuple(t.cpu() for t in l) for l in box.state])
        group = distributed_utils.get_data_parallel_group()
        gathered = [None] * distributed_utils.get_world_size(group)
        torch.distributed.all_gather_object(gathered, mine, group=group)
        me = distributed_utils.get_rank(group)
        if me != 0:
            return
        for worker, item in enumerate(gathered):
            if worker != me and item is not None:
                replica = self.replicas.setdefault(worker, self.make())
                key, state = item
                replica_box = replica.box_for(key)
                replica_box.state = state
                replica.keep(key, replica_box)

    def state_dict(self, num_workers: int, me: int) -> List[Optional[Dict]]:
        """Entry ``r``: worker ``r``'s state where this worker knows it (its own, and on worker
        0 every worker that has trained a batch), else ``None``."""
        known = {**self.replicas, me: self.own}
        return [known[r].state_dict() if r in known else None for r in range(num_workers)]

    def load_state_dict(self, saved: List[Optional[Dict]], me: int) -> None:
        """Take back this worker's entry of ``saved`` (one per worker, as :meth:`state_dict`
        writes it); worker 0 also sets its replicas from the others."""
        for worker, entry in enumerate(saved):
            if entry is None:
                continue
            if worker == me:
                self.own.load_state_dict(entry)
            elif me == 0:
                self.replicas[worker] = self.make()
                self.replicas[worker].load_state_dict(entry)
