"""``pixel_sequence``: image classification one pixel per time step (sequential / permuted MNIST).

Data: a directory with the four IDX files of MNIST's layout (plain or ``.gz``):
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte`` (Fashion-MNIST: ``/usr/share/datasets/fashion-mnist``). Images
``(N, H, W)`` become sequences ``x (H·W, 1)`` in row-major order; uint8 pixels are divided by
255, float pixels must already lie in [0, 1]. Splits: ``train`` = the training file without its
last ``--valid-size`` images, ``valid`` = those last images, ``test`` = the t10k files.

``--permute`` reorders the time steps of every image by one fixed permutation drawn from
numpy's generator seeded with ``--permute-seed`` (permuted MNIST). A NaN/inf or out-of-range
pixel, or a label outside ``[0, --num-classes)``, stops loading with one line naming the file
and row. Use with ``--arch durnn_classifier --criterion sentence_prediction`` (reports accuracy).
"""
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from omegaconf import II

from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import register_task

from ..errors import InvalidOptionError, check, check_positive_int
from .idx_files import read_idx
from .value_sequences import (InvalidDataRow, ValueSequenceDataset, ValueSequenceTask,
                              check_finite_rows)

FILES = {"train": "train", "valid": "train", "test": "t10k"}


def pixel_permutation(length: int, seed: int) -> np.ndarray:
    """The fixed time-step permutation of ``--permute``: same seed, same permutation."""
    return np.random.default_rng(seed).permutation(length)


def find_file(directory: str, stem: str) -> str:
    for name in (stem, stem + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise InvalidOptionError("data", directory, f"a directory holding {stem} or {stem}.gz")


def load_pixels(directory: str, prefix: str, num_classes: int):
    """``(images (N, H·W) uint8 or float32, labels (N,) int64)`` of ``prefix`` (train / t10k),
    checked row by row."""
    image_path = find_file(directory, f"{prefix}-images-idx3-ubyte")
    label_path = find_file(directory, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3:
        raise InvalidDataRow(image_path, 0, f"expected images (N, H, W), got shape {images.shape}")
    images = images.reshape(len(images), -1)
    if images.dtype != np.uint8:
        if images.dtype.kind != "f":
            raise InvalidDataRow(image_path, 0, f"pixels must be uint8 or float, not {images.dtype}")
        check_finite_rows(images, image_path)
        outside = ((images < 0) | (images > 1)).any(1)
        if outside.any():
            raise InvalidDataRow(image_path, int(np.argmax(outside)), "float pixels outside [0, 1]")
        images = images.astype(np.float32)
    if labels.ndim != 1 or len(labels) != len(images):
        raise InvalidDataRow(label_path, 0, f"expected {len(images)} labels (one per image), "
                                              f"got shape {labels.shape}")
    bad = (labels < 0) | (labels >= num_classes) | (labels != np.round(labels))
    if bad.any():
        row = int(np.argmax(bad))
        raise InvalidDataRow(label_path, row, f"label {labels[row]} outside 0..{num_classes - 1}")
    return images, labels.astype(np.int64)


class PixelDataset(ValueSequenceDataset):
    target_dtype = torch.long

    def __init__(self, images: np.ndarray, labels: np.ndarray, permutation: Optional[np.ndarray]):
        self.images, self.labels, self.permutation = images, labels, permutation
        self.seq_len = images.shape[1]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        pixels = self.images[index]
        values = pixels.astype(np.float32) / 255 if pixels.dtype == np.uint8 else pixels
        if self.permutation is not None:
            values = values[self.permutation]
        return {"id": index, "values": np.ascontiguousarray(values[:, None]),
                "target": int(self.labels[index])}


@dataclass
class PixelSequenceConfig(FairseqDataclass):
    data: Optional[str] = field(default=None, metadata={
        "help": "directory with the MNIST-layout IDX files (see the task docstring)"})
    valid_size: int = field(default=5000, metadata={
        "help": "the last N training images form the valid split"})
    permute: bool = field(default=False, metadata={
        "help": "permute the time steps by one fixed permutation (permuted MNIST)"})
    permute_seed: int = field(default=0, metadata={"help": "seed of the --permute permutation"})
    num_classes: int = field(default=10, metadata={"help": "number of classes"})
    classification_head_name: str = II("criterion.classification_head_name")


@register_task("pixel_sequence", dataclass=PixelSequenceConfig)
class PixelSequenceTask(ValueSequenceTask):
    input_features = 1

    def __init__(self, cfg: PixelSequenceConfig):
        super().__init__(cfg)
        check(cfg.data is not None and os.path.isdir(str(cfg.data)), "data", cfg.data,
              "an existing directory")
        check(isinstance(cfg.valid_size, int) and cfg.valid_size >= 0, "valid_size",
              cfg.valid_size, "a non-negative integer")
        check_positive_int("num_classes", cfg.num_classes)
        check(isinstance(cfg.permute_seed, int) and cfg.permute_seed >= 0, "permute_seed",
              cfg.permute_seed, "a non-negative integer")
        self.num_outputs = cfg.num_classes
        self._train = None

    @classmethod
    def setup_task(cls, cfg: PixelSequenceConfig, **kwargs):
        return cls(cfg)

    def training_sequence_length(self) -> int:
        """The pixel count ``H·W`` of the training images (read from the training file)."""
        return self.training_images()[0].shape[1]

    def training_images(self):
        """``(images (N, H·W), labels (N,))`` of the training file, loaded once."""
        if self._train is None:
            self._train = load_pixels(self.cfg.data, "train", self.cfg.num_classes)
            check(self.cfg.valid_size < len(self._train[1]), "valid_size", self.cfg.valid_size,
                  f"below the number of training images ({len(self._train[1])})")
        return self._train

    def load_dataset(self, split: str, epoch: int = 1, combine: bool = False, **kwargs):
        check(split in FILES, "valid_subset", split, "train, valid or test")
        if FILES[split] == "train":
            images, labels = self.training_images()
            cut = len(labels) - self.cfg.valid_size
            part = slice(0, cut) if split == "train" else slice(cut, None)
            images, labels = images[part], labels[part]
        else:
            images, labels = load_pixels(self.cfg.data, "t10k", self.cfg.num_classes)
        permutation = pixel_permutation(images.shape[1], self.cfg.permute_seed) \
            if self.cfg.permute else None
        self.datasets[split] = PixelDataset(images, labels, permutation)
