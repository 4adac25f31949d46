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
had left (with ``--state-cache``, with the cache as it was). fairseq saves on rank 0 only: with
several data-parallel workers the other workers' streams (caches) restart from zeros after a resume.
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
from .state_cache import StateCache, collate_blocks, worker_blocks
from .state_carrier import StateBox, StateCarrier
from .streams import collate_segment, concatenate_lines, worker_segments


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
        self.carriers = {"train": StateCarrier(cfg.state_reset_prob, cfg.seed),
                         "valid": StateCarrier()}
        self.cache = StateCache() if cfg.state_cache else None
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

    def _attach(self, sample, mode: str) -> None:
        """Put the box of ``sample``'s segment (or blocks) into its ``net_input`` (``mode``:
        train / valid)."""
        if "blocks" in sample:
            box = self.cache.box_for(sample["blocks"])
        else:
            box = self.carriers[mode].box_for(sample["segment"], sample["group"])
        sample["net_input"]["carried_state"] = box.to(sample["net_input"]["src_tokens"].device)

    def get_checkpoint_dict(self):
        """What fairseq saves with a checkpoint: this worker's training carrier (stream
        position, carried state, reset generator), its state cache (``--state-cache``) and which
        worker they belong to."""
        cache = None if self.cache is None else self.cache.state_dict()
        return {type(self).__name__: {"shard": list(self.shard), "cache": cache,
                                      "train": self.carriers["train"].state_dict()}}

    def set_checkpoint_dict(self, saved):
        """Restore the training carrier when it belongs to this worker (the same shard of the
        same number of workers); other workers start from zeros."""
        if tuple(saved["shard"]) == self.shard:
            self.carriers["train"].load_state_dict(saved["train"])
            if self.cache is not None and saved.get("cache") is not None:
                self.cache.load_state_dict(saved["cache"])

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        if ignore_grad:  # a dummy batch: fairseq replays the first batch with zero weight
            sample["net_input"]["carried_state"] = StateBox()
        else:
            self._attach(sample, "train")
        result = super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)
        if "blocks" in sample and not ignore_grad:
            self.cache.store(sample["blocks"], sample["net_input"]["carried_state"])
        return result

    def valid_step(self, sample, model, criterion):
        self._attach(sample, "valid")
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
