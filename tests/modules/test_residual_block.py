"""--block residual: the pre-activation residual block of docs/model.md (section 4), for any cell."""
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


def indrnn(x, weight, bias, u, d):
    """``h_t = relu(W x_t + b + u ⊙ h_{t-d})`` from ``h = 0``, one step at a time: ``(T, B, N)``."""
    a = x @ weight.T + bias
    h = []
    for t in range(x.shape[0]):
        h.append(torch.relu(a[t] + u * (h[t - d] if t >= d else 0)))
    return torch.stack(h)


def normalise(x, mask, weight, bias, kind):
    """Layer norm over C, or batch norm with the mean and biased variance of the valid (t, b)."""
    dims, rows = (-1, x) if kind == "layer" else (0, x[mask])
    mean = rows.mean(dims, keepdim=True)
    var = ((rows - mean) ** 2).mean(dims, keepdim=True)
    if kind == "layer":
        return (x - mean) / torch.sqrt(var + 1e-5) * weight + bias
    return (x - mean[0]) / torch.sqrt(var[0] + 1e-5) * weight + bias


def residual_stack_by_formula(p, x, mask, kind, dilations):
    """The deep IndRNN paper's pre-activation residual block from the parameters ``p`` alone,
    each block ``y = P x + IndRNN_2(norm_2(IndRNN_1(norm_1(x))))`` (``P`` a projection in the
    first block, the identity after), and one more norm on the last block's output. Returns the
    output and each cell's hidden sequence (for the final states)."""
    hidden = []
    for i, d in enumerate(dilations):
        def cell(k, z):
            prefix = f"directions.0.{i}.cell_{k}." + ("cell." if d > 1 else "")
            h = indrnn(z, p[prefix + "weight"], p[prefix + "bias"], p[prefix + "u"], d)
            hidden.append(h)
            return h

        def norm(name, z):
            return normalise(z, mask, p[f"directions.0.{i}.{name}.weight"],
                             p[f"directions.0.{i}.{name}.bias"], kind)

        skip = x @ p[f"directions.0.{i}.skip.weight"].T if i == 0 else x
        x = skip + cell(2, norm("norm_2", cell(1, norm("norm_1", x))))
    return norm("final_norm", x), hidden


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_block_follows_the_preactivation_formula_with_norms_and_padding(norm):
    """Unequal lengths (batch norm: training statistics over the valid positions only), norm
    weights and biases away from 1 and 0, dilations 1 and 2: the valid outputs and every cell's
    final state (the last d states before each sequence's end) equal the formula's."""
    s = stack(norm=norm, dilations="1,2").train()
    with torch.no_grad():
        for name, value in s.named_parameters():
            if name.endswith("bias") or "norm" in name:
                value.uniform_(-0.5, 1.5)
    params = dict(s.named_parameters())
    T, lengths = 7, torch.tensor([7, 4, 1])
    mask = torch.arange(T)[:, None] < lengths[None]
    x = torch.randn(T, 3, 5, dtype=torch.double)
    x = torch.where(mask[..., None], x, torch.full_like(x, 1e3))  # garbage padding
    y, states = s(x, lengths)
    expected, hidden = residual_stack_by_formula(params, x, mask, norm, [1, 2])
    torch.testing.assert_close(y[mask], expected[mask])
    cell_states = [h for block in states for h in block]
    assert len(cell_states) == len(hidden) == 4
    for (state, h), d in zip(zip(cell_states, hidden), [1, 1, 2, 2]):
        for b, L in enumerate(lengths.tolist()):
            want = torch.stack([h[t, b] if t >= 0 else torch.zeros_like(h[0, b])
                                for t in range(L - d, L)])
            torch.testing.assert_close(state[:, b], want)
    assert isinstance(s.directions[0][0].skip, torch.nn.Linear)  # 5 -> 12 projected


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


@pytest.mark.slow
def test_fairseq_lm_with_residual_blocks(tmp_path):
    assert_fairseq_lm_trains_evaluates_generates(tmp_path, "indrnn_lm", ["--block", "residual"])
