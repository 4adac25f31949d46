"""``adding_problem``: the adding problem (Hochreiter & Schmidhuber 1997; as in the IRNN and
IndRNN papers), generated on the fly.

A sample is ``x (T, 2)``: channel 0 values ``v_t ~ U(0, 1)``, channel 1 a marker that is 1 at
two positions, ``i ~ U{0, …, ⌈T/2⌉ − 1}`` and ``j ~ U{⌈T/2⌉, …, T − 1}``, and 0 elsewhere.
The target is ``y = v_i + v_j``. Predicting the constant 1 gives MSE ``Var(v_i + v_j) = 1/6 ≈ 0.167``;
the problem counts as solved below MSE 0.01. Use with ``--arch durnn_classifier --criterion mse``
(one regression head; ``--pooling last`` reads the state after the whole sequence).

Seed policy: sample ``k`` of a split comes from numpy's generator seeded with
``(--seed, split, epoch, k)``; training uses the epoch number, so every epoch sees fresh
sequences (``--train-size`` per epoch) and a rerun with the same ``--seed`` sees the same ones;
``valid`` and ``test`` use epoch 0 and never change.
"""
from dataclasses import dataclass, field

import numpy as np
import torch
from omegaconf import II

from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import register_task

from ..errors import check_positive_int, check
from .value_sequences import ValueSequenceDataset, ValueSequenceTask

SPLITS = {"train": 0, "valid": 1, "test": 2}


def adding_sample(seq_len: int, rng: np.random.Generator):
    """``(x (T, 2) float32, y)`` as in the module docstring."""
    half = (seq_len + 1) // 2
    x = np.zeros((seq_len, 2), dtype=np.float32)
    x[:, 0] = rng.random(seq_len, dtype=np.float32)
    marked = [rng.integers(0, half), rng.integers(half, seq_len)]
    x[marked, 1] = 1.0
    return x, float(x[marked, 0].sum())


class AddingDataset(ValueSequenceDataset):
    target_dtype = torch.float32

    def __init__(self, size: int, seq_len: int, seed: int, split: str):
        self.count, self.seq_len, self.seed, self.split = size, seq_len, seed, split
        self.epoch = 1 if split == "train" else 0

    def set_epoch(self, epoch):
        if self.split == "train":
            self.epoch = epoch

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, SPLITS[self.split], self.epoch, index])
        values, target = adding_sample(self.seq_len, rng)
        return {"id": index, "values": values, "target": target}

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return False  # a new iterator per epoch, so loader workers see the new epoch too


@dataclass
class AddingProblemConfig(FairseqDataclass):
    seq_len: int = field(default=1000, metadata={"help": "sequence length T (at least 2)"})
    train_size: int = field(default=10000, metadata={"help": "training sequences per epoch"})
    valid_size: int = field(default=1000, metadata={"help": "validation sequences"})
    test_size: int = field(default=1000, metadata={"help": "test sequences"})
    seed: int = II("common.seed")
    classification_head_name: str = II("criterion.classification_head_name")


@register_task("adding_problem", dataclass=AddingProblemConfig)
class AddingProblemTask(ValueSequenceTask):
    input_features = 2
    num_outputs = 1

    def __init__(self, cfg: AddingProblemConfig):
        super().__init__(cfg)
        check(isinstance(cfg.seq_len, int) and cfg.seq_len >= 2, "seq_len", cfg.seq_len,
              "an integer of at least 2")
        for name in ("train_size", "valid_size", "test_size"):
            check_positive_int(name, getattr(cfg, name))

    @classmethod
    def setup_task(cls, cfg: AddingProblemConfig, **kwargs):
        return cls(cfg)

    def load_dataset(self, split: str, epoch: int = 1, combine: bool = False, **kwargs):
        check(split in SPLITS, "valid_subset", split, "train, valid or test")
        dataset = AddingDataset(getattr(self.cfg, f"{split}_size"), self.cfg.seq_len,
                                self.cfg.seed, split)
        dataset.set_epoch(epoch)
        self.datasets[split] = dataset
