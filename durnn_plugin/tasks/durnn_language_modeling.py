"""``durnn_language_modeling``: stateful truncated-BPTT training and evaluation of ``durnn_lm``.

Reads the data of fairseq's ``language_modeling`` task (``dict.txt``, ``SPLIT.bin/.idx`` from
``fairseq-preprocess --only-source``). Each split becomes parallel streams cut into consecutive
segments of ``--tokens-per-sample`` tokens (:mod:`.streams`): ``--batch-size`` (``--batch-size-valid``
for validation; without them ``max_tokens // tokens_per_sample``) streams per data-parallel
worker, batch ``k`` = segment ``k`` of every stream, ``(B, T)`` source and target tokens. With
``--stream-groups M`` the training split has ``M`` groups of ``B`` streams per worker, taken in
turn (batch ``j`` = segment ``j // M`` of group ``j mod M``), so that consecutive updates do not
see the continuation of the same documents; with ``--shuffle-streams`` each training epoch
rotates the split by a random offset and deals the streams out in a random order. With
``--state-cache`` training takes shuffled blocks instead, each starting from the cached final
state of the block before it (:mod:`.state_cache`). Validation and eval-lm always read the split
as it is, in one group.

Every layer's state is carried from segment ``k`` to ``k + 1``, detached (:mod:`.state_carrier`):
``train_step``, ``valid_step`` and the eval-lm iterator put a box into
``sample["net_input"]["carried_state"]``, which fairseq's criterion and scorer pass on to the
model. Training and validation keep separate carriers (validation passes over several subsets
run one after the other, each from segment 0, so they share one); fairseq's dummy batches (the
``ignore_grad`` replays of the first batch) get a box of their own and never touch the state.

Checkpoints: fairseq stores ``get_checkpoint_dict()`` with every checkpoint and hands it back to
``set_checkpoint_dict`` when training resumes (after restoring the data iterator's position), so
a run resumed from a mid-epoch checkpoint continues with the training state the segment before
had left (with ``--state-cache``, with the cache as it was). fairseq saves on data-parallel
worker 0 only; with several workers, worker 0 keeps a copy of every worker's training state,
updated after each training batch (:mod:`.worker_states`), so a checkpoint holds one entry per
worker and on resume each worker takes back its own. A run resumed with another number of
workers has other streams: every worker then starts from zeros, with a warning.
"""
import logging
import os
from dataclasses import dataclass, field
from typing import Optional

import torch
from omegaconf import II

from fairseq import utils
from fairseq.data import Dictionary, data_utils, iterators
from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import FairseqTask, register_task

from ..errors import check, check_positive_int, check_range
from .state_cache import collate_blocks, worker_blocks
from .state_carrier import StateBox, StateCarrier
from .streams import collate_segment, concatenate_lines, worker_segments
from .worker_states import TrainingState, WorkerStates, batch_key


logger = logging.getLogger(__name__)


@dataclass
class DuRNNLanguageModelingConfig(FairseqDataclass):
    data: Optional[str] = field(default=None, metadata={
        "help": "data directory of fairseq-preprocess --only-source (dict.txt, SPLIT.bin/.idx)"})
    tokens_per_sample: int = field(default=128, metadata={
        "help": "segment length T: gradients are truncated after T steps, state is carried"})
    state_reset_prob: float = field(default=0.0, metadata={
        "help": "probability of starting a training segment from a zero state"})
    stream_groups: int = field(default=1, metadata={
        "help": "training only: M groups of --batch-size streams per worker, one group per "
                "batch in turn, each stream still read in order with its state carried"})
    shuffle_streams: bool = field(default=False, metadata={
        "help": "training only: each epoch, rotate the split by a random offset and deal the "
                "streams to rows and groups in a random order (seeded by --seed and the epoch)"})
    state_cache: bool = field(default=False, metadata={
        "help": "training only: shuffled blocks, as language_modeling takes them, each starting "
                "from the final state its preceding block reached when it was last trained "
                "(kept in a cache; zeros until then); replaces --stream-groups/--shuffle-streams"})
    seed: int = II("common.seed")
    train_subset: str = II("dataset.train_subset")


@register_task("durnn_language_modeling", dataclass=DuRNNLanguageModelingConfig)
class DuRNNLanguageModelingTask(FairseqTask):
    def __init__(self, cfg: DuRNNLanguageModelingConfig, dictionary: Dictionary):
        super().__init__(cfg)
        check_range("state_reset_prob", cfg.state_reset_prob, 0, 1)
        check_positive_int("stream_groups", cfg.stream_groups)
        check(not cfg.state_cache or (cfg.stream_groups == 1 and not cfg.shuffle_streams
                                      and cfg.state_reset_prob == 0), "state_cache", True,
              "only without --stream-groups, --shuffle-streams and --state-reset-prob (it "
              "replaces them)")
        self.dictionary = dictionary
        self.workers = WorkerStates(
            lambda: TrainingState(cfg.state_reset_prob, cfg.seed, cfg.state_cache))
        self.carriers = {"train": self.workers.own.carrier, "valid": StateCarrier()}
        self.cache = self.workers.own.cache
        self.shard = (1, 0)  # (data-parallel workers, this worker), from get_batch_iterator

    @classmethod
    def setup_task(cls, cfg: DuRNNLanguageModelingConfig, **kwargs):
        path = utils.split_paths(cfg.data)[0]
        return cls(cfg, Dictionary.load(os.path.join(path, "dict.txt")))

    def build_model(self, cfg, from_checkpoint=False):
        """Training refuses a recurrent bound above 1: a state carried along a whole stream grows
        like ``|u|^t`` (a run with the default ``--u-gamma 2`` overflowed after ~100 updates).
        A trained checkpoint (``from_checkpoint``: eval-lm, generation) is evaluated as it is,
        with a warning: whether its state stays finite depends on the learned ``u``."""
        if getattr(cfg, "cell", None) in ("durnn", "indrnn") and cfg.u_gamma > 1:
            if from_checkpoint:
                logger.warning("carrying state with a model trained with --u-gamma=%s > 1: "
                               "its state can grow like |u|^t along a stream", cfg.u_gamma)
            else:
                check(False, "u_gamma", cfg.u_gamma, "at most 1 with --task "
                      "durnn_language_modeling (a carried state grows like |u|^t along a stream)")
        return super().build_model(cfg, from_checkpoint)

    def load_dataset(self, split: str, epoch: int = 1, combine: bool = False, **kwargs):
        """The split's whole token stream ``(N,)``, lines in file order (see :mod:`.streams`)."""
        paths = utils.split_paths(self.cfg.data)
        path = os.path.join(paths[(epoch - 1) % len(paths)], split)
        lines = data_utils.load_indexed_dataset(path, self.dictionary, combine=combine)
        if lines is None:
            raise FileNotFoundError(f"Dataset not found: {split} ({path})")
        self.datasets[split] = concatenate_lines([lines[i] for i in range(len(lines))],
                                                 self.dictionary.eos())

    def dataset(self, split: str) -> torch.Tensor:
        return self.datasets[split]

    def get_batch_iterator(self, dataset, max_tokens=None, max_sentences=None, num_shards=1,
                           shard_id=0, num_workers=0, epoch=1, data_buffer_size=0, **unused):
        """Segment batches of this worker's streams, in order: ``max_sentences`` (fairseq's
        batch size) streams per worker, else ``max_tokens // tokens_per_sample``; for the
        training split in ``--stream-groups`` groups taken in turn, and with
        ``--shuffle-streams`` rotated and dealt out anew for each ``epoch``; with
        ``--state-cache``, the training split's blocks of this worker in ``epoch``'s order."""
        T = self.cfg.tokens_per_sample
        self.shard = (num_shards, shard_id)
        B = max_sentences or max(1, (max_tokens or T) // T)
        train = dataset is self.datasets.get(self.cfg.train_subset)
        epoch_seed = self.cfg.seed * 100_003 + epoch
        if train and self.cache is not None:
            blocks = worker_blocks(dataset, B, T, num_shards, shard_id, epoch_seed)
            self.cache.ensure(blocks.num_blocks)
            return self._batches(blocks, collate_blocks, num_workers, epoch, data_buffer_size)
        shuffle_seed = epoch_seed if train and self.cfg.shuffle_streams else None
        segments = worker_segments(dataset, B, T, num_shards, shard_id,
                                   self.cfg.stream_groups if train else 1, shuffle_seed)
        return self._batches(segments, collate_segment, num_workers, epoch, data_buffer_size)

    @staticmethod
    def _batches(dataset, collate, num_workers, epoch, data_buffer_size):
        """fairseq's iterator over ``dataset``, whose items are whole batches, in order."""
        return iterators.EpochBatchIterator(
            dataset=dataset, collate_fn=collate, batch_sampler=[[k] for k in range(len(dataset))],
            num_workers=num_workers, epoch=epoch, buffer_size=data_buffer_size,
            disable_shuffling=True, persistent_workers=False)

    @staticmethod
    def _attach(sample, box: StateBox) -> None:
        """Put ``box`` into ``sample``'s ``net_input``, on the device of its tokens."""
        sample["net_input"]["carried_state"] = box.to(sample["net_input"]["src_tokens"].device)

    def get_checkpoint_dict(self):
        """What fairseq saves with a checkpoint (on data-parallel worker 0): per worker its
        training carrier (stream positions, carried state, reset generator) or its state cache
        (``--state-cache``), see :meth:`WorkerStates.state_dict`."""
        num_workers, me = self.shard
        return {type(self).__name__: {"workers": self.workers.state_dict(num_workers, me)}}

    def set_checkpoint_dict(self, saved):
        """Each worker takes back its own training state, when the checkpoint was written by
        as many workers as this run has; otherwise every worker starts from zeros. A checkpoint
        of the single-entry format (``shard``, ``train``, ``cache``) restores the worker it
        names."""
        num_workers, me = self.shard
        workers = saved.get("workers")
        if workers is None:
            workers = [saved if tuple(saved["shard"]) == (num_workers, r) else None
                       for r in range(num_workers)]
        if len(workers) != num_workers:
            logger.warning("the checkpoint holds the training state of %d data-parallel "
                           "workers and this run has %d, whose streams differ: every worker "
                           "starts from a zero state", len(workers), num_workers)
            return
        self.workers.load_state_dict(workers, me)

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        """Train on ``sample`` from the state its segment (blocks) starts from; a dummy batch
        (``ignore_grad``: fairseq replays the first batch with zero weight) gets a box of its
        own. Every worker then shares what the batch changed (:class:`WorkerStates`)."""
        key = None if ignore_grad else batch_key(sample, self.cache)
        self._attach(sample, StateBox() if key is None else self.workers.own.box_for(key))
        result = super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)
        self.workers.after_batch(key, sample["net_input"]["carried_state"])
        return result

    def valid_step(self, sample, model, criterion):
        self._attach(sample, self.carriers["valid"].box_for(sample["segment"], sample["group"]))
        return super().valid_step(sample, model, criterion)

    def eval_lm_dataloader(self, dataset, max_tokens: Optional[int] = 36000,
                           batch_size: Optional[int] = None, num_shards: int = 1,
                           shard_id: int = 0, num_workers: int = 1, data_buffer_size: int = 10,
                           **unused):
        """fairseq-eval-lm's batches over the whole split, each with the state its stream
        reached at the end of the previous segment (``--context-window`` is not needed)."""
        itr = self.get_batch_iterator(dataset, max_tokens, batch_size, num_shards, shard_id,
                                      num_workers, data_buffer_size=data_buffer_size)
        batches = itr.next_epoch_itr(shuffle=False)
        carrier = StateCarrier()

        def with_state():
            for sample in batches:
                sample["net_input"]["carried_state"] = carrier.box_for(sample["segment"],
                                                                       sample["group"])
                yield sample

        return iterators.CountingIterator(with_state(), total=len(batches))

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary
