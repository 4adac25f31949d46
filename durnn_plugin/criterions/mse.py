"""``mse``: mean squared error of a regression head.

``pred = model(**net_input, features_only=True, classification_head_name=name)`` ``(B, K)``,
``target`` with ``B·K`` values; loss ``Σ_b Σ_k (pred_bk − target_bk)²`` summed over the batch,
sample size ``B·K``. Logged: ``loss`` and ``mse``, both ``Σ (pred − target)² / (B·K)`` in the
target's own units (fairseq's ``sentence_prediction --regression-target`` logs the same sum
divided by ln 2, not an MSE).
"""
from dataclasses import dataclass, field

import torch.nn.functional as F

from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics


@dataclass
class MSECriterionConfig(FairseqDataclass):
    classification_head_name: str = field(default="regression_head", metadata={
        "help": "name of the model head whose output is compared with the target"})


@register_criterion("mse", dataclass=MSECriterionConfig)
class MSECriterion(FairseqCriterion):
    def __init__(self, cfg: MSECriterionConfig, task):
        super().__init__(task)
        self.head = cfg.classification_head_name

    def forward(self, model, sample, reduce=True):
        pred, _ = model(**sample["net_input"], features_only=True,
                        classification_head_name=self.head)
        target = sample["target"].view_as(pred)
        loss = F.mse_loss(pred.float(), target.float(), reduction="sum")
        sample_size = pred.numel()
        return loss, sample_size, {"loss": loss.data, "ntokens": sample["ntokens"],
                                   "nsentences": sample["nsentences"], "sample_size": sample_size}

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        loss = sum(log.get("loss", 0) for log in logging_outputs)
        size = sum(log.get("sample_size", 0) for log in logging_outputs)
        metrics.log_scalar("loss", loss / max(size, 1), size, round=5)
        metrics.log_scalar("mse", loss / max(size, 1), size, round=5)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
