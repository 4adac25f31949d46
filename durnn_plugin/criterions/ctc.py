"""``durnn_ctc``: CTC loss of a speech model's CTC output (``s2t_durnn_ctc``).

``lprobs, lengths = model.get_ctc_output(model(**net_input), sample)``: log-probabilities
``(T, B, V)`` and the encoder's lengths after subsampling ``(B,)``. Targets: each row of
``sample["target"]`` without padding and without the end-of-sentence symbol that fairseq's
``speech_to_text`` dataset appends. Loss::

    loss = Σ_b -log Σ_{π ∈ B⁻¹(y_b)} Π_t p_t(π_t)     (F.ctc_loss, blank = 0, sum)

with infinite losses (a target longer than its input allows) set to zero
(``zero_infinity``). Sample size: the number of target tokens without end-of-sentence
symbols; the logged ``loss`` is per token, in base 2 (as fairseq's ``ctc``).

Validation also decodes greedily (argmax per frame, repeats collapsed, blanks dropped) and logs
token and word error counts, and from them ``uer`` and ``wer`` (%) with fairseq's ``ctc``
criterion's ``reduce_metrics`` (so ``--best-checkpoint-metric wer`` works); words are the
sentencepiece pieces joined (``Dictionary.string(..., "sentencepiece")``).
"""
from dataclasses import dataclass

import editdistance
import torch
import torch.nn.functional as F

from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.criterions.ctc import CtcCriterion
from fairseq.dataclass import FairseqDataclass

BLANK = 0  # <s>: the blank of fairseq's speech CTC outputs


@dataclass
class DuRNNCTCCriterionConfig(FairseqDataclass):
    pass


@register_criterion("durnn_ctc", dataclass=DuRNNCTCCriterionConfig)
class DuRNNCTCCriterion(FairseqCriterion):
    def __init__(self, cfg: DuRNNCTCCriterionConfig, task):
        super().__init__(task)
        self.dictionary = task.target_dictionary

    def targets(self, sample):
        """Each row's tokens without padding and end-of-sentence: ``(targets (ΣU,),
        lengths (B,), mask (B, U))``."""
        target = sample["target"]
        mask = target.ne(self.dictionary.pad()) & target.ne(self.dictionary.eos())
        return target.masked_select(mask), mask.sum(1), mask

    def forward(self, model, sample, reduce=True):
        lprobs, input_lengths = model.get_ctc_output(model(**sample["net_input"]), sample)
        targets, target_lengths, mask = self.targets(sample)
        with torch.backends.cudnn.flags(enabled=False):
            loss = F.ctc_loss(lprobs, targets, input_lengths, target_lengths, blank=BLANK,
                              reduction="sum", zero_infinity=True)
        ntokens = int(target_lengths.sum())
        logging_output = {"loss": loss.data, "ntokens": ntokens,
                          "nsentences": sample["target"].size(0), "sample_size": ntokens}
        if not model.training:
            logging_output.update(self.error_counts(lprobs, input_lengths, sample["target"], mask))
        return loss, ntokens, logging_output

    def error_counts(self, lprobs, input_lengths, target, mask):
        """Greedy decoding's token and word errors against the targets (fairseq ``ctc``'s
        log keys: ``c_errors``/``c_total`` tokens, ``w_errors``/``wv_errors``/``w_total``
        words)."""
        counts = dict.fromkeys(("c_errors", "c_total", "w_errors", "wv_errors", "w_total"), 0)
        best = lprobs.argmax(-1).t().cpu()  # (B, T)
        for row, length, ref, ref_mask in zip(best, input_lengths.cpu(), target.cpu(),
                                              mask.cpu()):
            tokens = row[:length].unique_consecutive()
            hyp = tokens[tokens != BLANK].tolist()
            ref = ref[ref_mask].tolist()
            hyp_words = self.dictionary.string(hyp, "sentencepiece").split()
            ref_words = self.dictionary.string(ref, "sentencepiece").split()
            words = editdistance.eval(hyp_words, ref_words)
            counts["c_errors"] += editdistance.eval(hyp, ref)
            counts["c_total"] += len(ref)
            counts["w_errors"] += words
            counts["wv_errors"] += words
            counts["w_total"] += len(ref_words)
        return counts

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        CtcCriterion.reduce_metrics(logging_outputs)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
