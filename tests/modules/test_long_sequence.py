"""Very long sequences: one layer, B = 1, forward and backward stay finite.

IndRNN at T = 100,000 with each CPU implementation; DuRNN (whose short-term part is torch's
stepwise ``rnn_relu``, about 22 s at T = 100,000 here) at T = 4,096, where the CPU path already
cuts the sequence into pieces, checked against one uncut call.
``examples/reliability/long_sequence.py`` measures both at 10k-100k steps.
"""
import pytest
import torch

from durnn_plugin.modules import RecurrentStack, StackOptions


def fwd_bwd(cell: str, T: int, N: int = 8):
    torch.manual_seed(0)
    layer = RecurrentStack(StackOptions(cell=cell, num_layers=1, hidden_size=N, u_time_steps=T),
                           input_size=N)
    x = torch.randn(T, 1, N, requires_grad=True)
    y, state = layer(x)
    y.square().mean().backward()
    return y, state, x.grad, [p.grad for p in layer.parameters()]


@pytest.mark.parametrize("backend", ["cpu", "scan"])
def test_indrnn_100k_steps_forward_backward_finite(backend, monkeypatch):
    monkeypatch.setenv("DURNN_BACKEND", backend)
    y, state, dx, grads = fwd_bwd("indrnn", 100_000)
    assert y.shape == (100_000, 1, 8)
    assert torch.isfinite(y).all() and all(torch.isfinite(s).all() for s in state[0])
    assert torch.isfinite(dx).all() and all(torch.isfinite(g).all() for g in grads)
    assert dx[0].abs().sum() > 0  # the gradient reaches the first step


def test_indrnn_default_bound_overflows_so_the_bound_follows_T():
    """Why u_time_steps = T above: with the nominal 100 steps, |u| may reach 2^(1/100) and a state
    grows like 2^(T/100) (this is the documented meaning of the bound, not a bug)."""
    layer = RecurrentStack(StackOptions(cell="indrnn", num_layers=1, hidden_size=8,
                                        norm="none"), input_size=8)
    with torch.no_grad():
        layer.directions[0][0].cell.u.fill_(2 ** (1 / 100))
        y, _ = layer(torch.ones(100_000, 1, 8))
    assert not torch.isfinite(y).all()


def test_durnn_long_sequence_forward_backward_finite():
    y, _, dx, grads = fwd_bwd("durnn", 4096)
    assert torch.isfinite(y).all() and torch.isfinite(dx).all()
    assert all(torch.isfinite(g).all() for g in grads if g is not None)
    assert dx[0].abs().sum() > 0  # the gradient reaches the first step
