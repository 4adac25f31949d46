"""Shared parts of the tasks with real-valued input sequences (``adding_problem``, ``pixel_sequence``).

A sample is ``values (T, F)`` float32 and a target (a float for regression, a class index).
Batches (fixed T, no padding): ``net_input = {src_values (B, T, F), src_lengths (B,)}``,
``target (B,)``, ``ntokens = B·T``. The task builds ``durnn_classifier`` with a Linear front-end
(``input_features = F``) and registers one head named ``--classification-head-name`` with the
task's number of outputs.
"""
import numpy as np
import torch

from fairseq.data import FairseqDataset
from fairseq.tasks import FairseqTask

from ..errors import InvalidDataError, InvalidOptionError


class InvalidDataRow(InvalidDataError):
    """Bad input data, one line naming the source and row: ``invalid data in FILE, row 17: ...``
    (fairseq commands print it as that one line, exit 2)."""

    def __init__(self, source: str, row: int, problem: str):
        self.source, self.row, self.problem = source, row, problem
        super().__init__(f"invalid data in {source}, row {row}: {problem}")


def check_finite_rows(values: np.ndarray, source: str) -> None:
    """Raise :class:`InvalidDataRow` naming the first row of ``values (N, ...)`` with NaN/inf."""
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(1)
    if bad.any():
        raise InvalidDataRow(source, int(np.argmax(bad)), "contains NaN or inf")


class ValueSequenceDataset(FairseqDataset):
    """Fixed-length real-valued sequences; subclasses give :meth:`__getitem__` ->
    ``(values (T, F) float32 array, target)`` and set ``seq_len`` and ``target_dtype``."""

    seq_len: int
    target_dtype: torch.dtype

    def collater(self, samples):
        if not samples:
            return {}
        values = torch.from_numpy(np.stack([s["values"] for s in samples]))
        B, T = values.shape[:2]
        return {
            "id": torch.tensor([s["id"] for s in samples]),
            "net_input": {"src_values": values,
                          "src_lengths": torch.full((B,), T, dtype=torch.long)},
            "target": torch.tensor([s["target"] for s in samples], dtype=self.target_dtype),
            "nsentences": B,
            "ntokens": B * T,
        }

    @property
    def sizes(self):
        return np.full(len(self), self.seq_len, dtype=np.int64)

    def num_tokens(self, index):
        return self.seq_len

    def size(self, index):
        return self.seq_len


class ValueSequenceTask(FairseqTask):
    """Base of tasks whose inputs are values: ``input_features`` selects the classifier's Linear
    front-end; ``num_outputs`` is the size of the head the task registers."""

    input_features: int
    num_outputs: int

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        if not hasattr(model, "register_classification_head"):
            raise InvalidOptionError("arch", getattr(cfg, "_name", None),
                                     "a model with classification heads (durnn_classifier)")
        model.register_classification_head(self.cfg.classification_head_name,
                                           num_classes=self.num_outputs)
        return model

    def max_positions(self):
        return None

    @property
    def source_dictionary(self):
        return None

    @property
    def target_dictionary(self):
        return None

    @property
    def label_dictionary(self):  # read by fairseq's sentence_prediction criterion
        return None

