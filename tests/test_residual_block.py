"""--block residual: SPEC section 4's pre-activation residual block, for any cell."""
import pytest
import torch

from durnn_plugin.modules import InvalidOptionError, RecurrentStack, StackOptions
from stack_checks import (assert_fairseq_lm_trains_evaluates_generates,
                          assert_steps_and_padding_equal_one_pass)


def stack(cell="indrnn", norm="layer", layers=2, **kw):
    torch.manual_seed(0)
    opts = StackOptions(cell=cell, hidden_size=12, short_size=4, num_layers=layers, norm=norm,
                        block="residual", **kw)
    return RecurrentStack(opts, 5).double().eval()


def test_block_computes_skip_plus_two_preactivated_cells():
    s = stack(norm="none", layers=1)
    block = s.directions[0][0]
    x = torch.randn(6, 2, 5, dtype=torch.double)
    z, _ = block.cell_1(x)
    z, _ = block.cell_2(z)
    y, _ = s(x)
    torch.testing.assert_close(y, block.skip(x) + z)
    assert isinstance(block.skip, torch.nn.Linear)  # 5 -> 12 projected


@pytest.mark.parametrize("cell,dilations", [("indrnn", "1,2"), ("durnn", "1,3"), ("lstm", "1,1")])
def test_step_by_step_and_padding_equal_one_pass(cell, dilations):
    assert_steps_and_padding_equal_one_pass(stack(cell=cell, dilations=dilations))


def test_identity_skip_after_the_first_block_and_final_norm_on_the_last():
    s = stack(layers=3)
    blocks = s.directions[0]
    assert [type(b.skip).__name__ for b in blocks] == ["Linear", "Identity", "Identity"]
    assert [b.final_norm is not None for b in blocks] == [False, False, True]
    assert list(s.layer_cells()) == ["l0_1", "l0_2", "l1_1", "l1_2", "l2_1", "l2_2"]
    assert "l2_2_u_max" in s.statistics()


def test_residual_block_refuses_no_residual():
    with pytest.raises(InvalidOptionError, match=r"invalid --no-residual=True: must be off with --block residual"):
        stack(no_residual=True)
    with pytest.raises(InvalidOptionError,
                       match=r"invalid --block=highway: must be one of post-norm, residual, dense"):
        StackOptions(block="highway").validate()


def test_fairseq_lm_with_residual_blocks(tmp_path):
    assert_fairseq_lm_trains_evaluates_generates(tmp_path, "indrnn_lm", ["--block", "residual"])
