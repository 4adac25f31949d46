"""MaskedBatchNorm against the batch-norm formula written out over the valid positions."""
import pytest
import torch

from durnn_plugin.modules.norms import MaskedBatchNorm


def formula(x, mask, weight, bias, eps):
    """(y over valid positions, batch mean, unbiased batch variance) from the definition."""
    valid = x[mask] if mask is not None else x.reshape(-1, x.shape[-1])
    mean, var = valid.mean(0), valid.var(0, unbiased=False)
    y = (x - mean) / torch.sqrt(var + eps) * weight + bias
    return y, mean, valid.var(0, unbiased=True)


def make(C=6, seed=0):
    torch.manual_seed(seed)
    bn = MaskedBatchNorm(C).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    return bn


@pytest.mark.parametrize("masked", [False, True])
def test_training_values_gradients_and_running_stats_follow_the_formula(masked):
    bn = make()
    T, B, C = 7, 3, 6
    x = torch.randn(T, B, C, dtype=torch.float64) * 3 + 1
    mask = torch.arange(T)[:, None] < torch.tensor([7, 2, 5])[None] if masked else None
    if masked:
        x = torch.where(mask[..., None], x, torch.full_like(x, 1e6))  # garbage padding
    old_mean, old_var = bn.running_mean.clone(), bn.running_var.clone()
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y = bn(x1, mask)
    ref, mean, unbiased = formula(x2, mask, bn.weight, bn.bias, bn.eps)
    keep = mask[..., None] if masked else torch.ones(T, B, 1, dtype=torch.bool)
    torch.testing.assert_close(y * keep, ref * keep)
    if masked:
        assert bool((y[~mask] == 0).all())
    g = torch.randn(T, B, C, dtype=torch.float64)
    (y * keep * g).sum().backward()
    (ref * keep * g).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    m = bn.momentum
    torch.testing.assert_close(bn.running_mean, (1 - m) * old_mean + m * mean.detach())
    torch.testing.assert_close(bn.running_var, (1 - m) * old_var + m * unbiased.detach())


def test_eval_uses_running_statistics():
    bn = make().eval()
    x = torch.randn(4, 2, 6, dtype=torch.float64)
    expected = (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    torch.testing.assert_close(bn(x), expected)


@pytest.mark.parametrize("lengths", [[1, 0], [0, 0]])
def test_fewer_than_two_valid_positions_use_running_statistics_unchanged(lengths):
    bn = make().train()
    x = torch.randn(3, 2, 6, dtype=torch.float64)
    mask = torch.arange(3)[:, None] < torch.tensor(lengths)[None]
    before = bn.running_mean.clone(), bn.running_var.clone()
    y = bn(x, mask)
    expected = (x - before[0]) / torch.sqrt(before[1] + bn.eps) * bn.weight + bn.bias
    torch.testing.assert_close(y[mask], expected[mask])
    torch.testing.assert_close(bn.running_mean, before[0])
    torch.testing.assert_close(bn.running_var, before[1])
