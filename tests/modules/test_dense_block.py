"""--block dense: the densely connected stack of docs/model.md (section 4), y = [x ; norm(cell(x))] per layer."""
import pytest
import torch

from durnn_plugin.modules import InvalidOptionError, RecurrentStack, StackOptions
from stack_checks import (assert_fairseq_lm_trains_evaluates_generates,
                          assert_steps_and_padding_equal_one_pass)


def stack(cell="indrnn", layers=2, bidirectional=False, **kw):
    torch.manual_seed(0)
    opts = StackOptions(cell=cell, hidden_size=6, short_size=2, num_layers=layers,
                        block="dense", bidirectional=bidirectional, **kw)
    return RecurrentStack(opts, 5).double().eval()


def test_each_layer_reads_the_input_and_all_earlier_outputs():
    s = stack(layers=3)
    first, second, third = s.directions[0]
    x = torch.randn(6, 2, 5, dtype=torch.double)
    y1 = first.norm(first.cell(x)[0], None)
    y2 = second.norm(second.cell(torch.cat([x, y1], -1))[0], None)
    y3 = third.norm(third.cell(torch.cat([x, y1, y2], -1))[0], None)
    y, _ = s(x)
    torch.testing.assert_close(y, torch.cat([x, y1, y2, y3], -1))
    assert s.output_size == 5 + 3 * 6 == y.shape[-1]
    assert [layer.cell.weight.shape[1] for layer in s.directions[0]] == [5, 11, 17]


@pytest.mark.parametrize("cell,dilations", [("indrnn", "1,2"), ("durnn", "1,3"), ("gru", "1,1")])
def test_step_by_step_and_padding_equal_one_pass(cell, dilations):
    assert_steps_and_padding_equal_one_pass(stack(cell=cell, dilations=dilations))


def test_bidirectional_width_and_statistics():
    s = stack(bidirectional=True)
    y, _ = s(torch.randn(4, 2, 5, dtype=torch.double))
    assert y.shape[-1] == s.output_size == 2 * (5 + 2 * 6)
    assert list(s.layer_cells()) == ["l0", "l1", "l0b", "l1b"]


def test_dense_refuses_no_residual():
    with pytest.raises(InvalidOptionError, match=r"invalid --no-residual=True: must be off with --block dense"):
        stack(no_residual=True)


@pytest.mark.slow
def test_fairseq_lm_with_dense_layers(tmp_path):
    assert_fairseq_lm_trains_evaluates_generates(tmp_path, "durnn_lm", ["--block", "dense"])
