"""The ``durnn_ctc`` criterion on a hand-made batch, and the speech task's check that a CTC
criterion and a model with a CTC output go together."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from fairseq.data import Dictionary
from fairseq.logging import metrics

from durnn_plugin.criterions.ctc import DuRNNCTCCriterion, DuRNNCTCCriterionConfig
from durnn_plugin.errors import InvalidOptionError
from durnn_plugin.tasks.durnn_speech_to_text import DuRNNSpeechToTextTask

PIECES = ["▁one", "▁two", "▁thr", "ee"]


def dictionary() -> Dictionary:
    d = Dictionary()
    for piece in PIECES:
        d.add_symbol(piece)
    return d


class FixedOutputModel:
    """Stands in for a model: ``get_ctc_output`` returns the given log-probabilities."""

    def __init__(self, lprobs, lengths, training):
        self.lprobs, self.lengths, self.training = lprobs, lengths, training

    def __call__(self, **net_input):
        return net_input

    def get_ctc_output(self, net_output, sample):
        return self.lprobs, self.lengths


def batch(d: Dictionary):
    """Three rows as fairseq's speech_to_text dataset makes them: pieces, then </s>, then
    padding; the third row's target is longer than its single input frame allows."""
    one, two, thr, ee = (d.index(p) for p in PIECES)
    eos, pad = d.eos(), d.pad()
    target = torch.tensor([[one, two, eos, pad], [thr, ee, one, eos], [two, one, eos, pad]])
    return {"net_input": {}, "target": target, "target_lengths": torch.tensor([3, 4, 3])}, \
        [[one, two], [thr, ee, one], [two, one]]


def test_loss_is_torch_ctc_loss_without_eos_and_padding():
    d = dictionary()
    sample, stripped = batch(d)
    torch.manual_seed(0)
    lprobs = torch.randn(7, 3, len(d)).log_softmax(-1).requires_grad_()
    lengths = torch.tensor([7, 5, 1])
    criterion = DuRNNCTCCriterion(DuRNNCTCCriterionConfig(), SimpleNamespace(target_dictionary=d))
    loss, sample_size, log = criterion(FixedOutputModel(lprobs, lengths, True), sample)
    expected = F.ctc_loss(lprobs, torch.tensor(sum(stripped, [])), lengths,
                          torch.tensor([2, 3, 2]), blank=0, reduction="sum", zero_infinity=True)
    assert torch.isfinite(expected) and expected.item() > 0
    torch.testing.assert_close(loss, expected)
    assert sample_size == log["ntokens"] == 7 and log["nsentences"] == 3
    assert "w_errors" not in log  # greedy decoding in validation only
    loss.backward()
    assert lprobs.grad[:, 2].abs().sum() == 0  # the impossible row: zero_infinity


def test_validation_counts_greedy_token_and_word_errors():
    d = dictionary()
    sample, _ = batch(d)
    one, two, thr, ee = (d.index(p) for p in PIECES)
    best = [[one, one, 0, two, two, 0, 0],   # "one two": right
            [thr, ee, 0, one, 0, two, two],  # "three one": right (frames 5-6: padding)
            [one, 0, 0, 0, 0, 0, 0]]         # "one" for "two one" (input length 1)
    lprobs = torch.full((7, 3, len(d)), -10.0)
    for b, row in enumerate(best):
        for t, token in enumerate(row):
            lprobs[t, b, token] = 0.0
    criterion = DuRNNCTCCriterion(DuRNNCTCCriterionConfig(), SimpleNamespace(target_dictionary=d))
    model = FixedOutputModel(lprobs.log_softmax(-1), torch.tensor([7, 5, 1]), False)
    _, _, log = criterion(model, sample)
    assert (log["c_errors"], log["c_total"]) == (0 + 0 + 1, 2 + 3 + 2)
    assert (log["w_errors"], log["w_total"]) == (0 + 0 + 1, 2 + 2 + 2)
    with metrics.aggregate() as agg:
        DuRNNCTCCriterion.reduce_metrics([log])
        values = agg.get_smoothed_values()
    assert values["wer"] == pytest.approx(100 * 1 / 6, abs=1e-3)
    assert values["uer"] == pytest.approx(100 * 1 / 7, abs=1e-3)


def speech_task(model_has_ctc: bool) -> DuRNNSpeechToTextTask:
    """The task as its ``build_model`` leaves it, without data."""
    task = DuRNNSpeechToTextTask.__new__(DuRNNSpeechToTextTask)
    task.tgt_dict, task.model_has_ctc = dictionary(), model_has_ctc
    task.data_cfg = SimpleNamespace(prepend_tgt_lang_tag=False)
    return task


def test_durnn_ctc_is_admitted_with_a_ctc_model():
    criterion = speech_task(True).build_criterion(OmegaConf.create({"_name": "durnn_ctc"}))
    assert isinstance(criterion, DuRNNCTCCriterion)


@pytest.mark.parametrize("has_ctc, cfg, message", [
    (False, {"_name": "durnn_ctc"}, r"^invalid --criterion=durnn_ctc: must be a criterion of "
                                    r"this model's outputs: durnn_ctc needs a model with a CTC "
                                    r"output \(e.g. --arch s2t_durnn_ctc_s\)$"),
    (True, {"_name": "label_smoothed_cross_entropy"},
     r"^invalid --criterion=label_smoothed_cross_entropy: must be durnn_ctc, or "
     r"label_smoothed_cross_entropy_with_ctc with --ctc-weight > 0, for a model with a CTC "
     r"output"),
    (False, {"_name": "label_smoothed_cross_entropy_with_ctc", "ctc_weight": 0.5},
     r"^invalid --ctc-weight=0.5: must be 0 for a model without a CTC output"),
])
def test_ctc_criterion_and_ctc_output_mismatch_is_one_line(has_ctc, cfg, message):
    with pytest.raises(InvalidOptionError, match=message):
        speech_task(has_ctc).build_criterion(OmegaConf.create(cfg))
