"""The single-step paths that ``auto`` takes for one step per sequence (incremental decoding)
equal the sequence references in values and gradients (fp64), with and without a state, and with
dilation (``T ≤ d``: every step reads a row of the state)."""
import pytest
import torch

from durnn_plugin.ops import dispatch
from durnn_plugin.ops.indrnn_reference import indrnn_reference
from durnn_plugin.ops.short_rnn_cpu import short_rnn_loop


def refuse(*args, **kwargs):
    raise AssertionError("the sequence implementation ran for a single step")


@pytest.fixture(autouse=True)
def only_single_steps(monkeypatch):
    """Any call that reaches a sequence implementation fails the test."""
    monkeypatch.delenv("DURNN_BACKEND", raising=False)
    monkeypatch.setattr(dispatch, "BACKENDS", {name: refuse for name in dispatch.BACKENDS})
    monkeypatch.setattr(dispatch, "short_rnn_loop", refuse)
    monkeypatch.setattr(dispatch, "short_rnn_cudnn", refuse)


@pytest.mark.parametrize("T,dilation", [(1, 1), (1, 3), (2, 3), (3, 3)])
@pytest.mark.parametrize("with_state", [True, False])
def test_indrnn_step_equals_the_reference(T, dilation, with_state):
    torch.manual_seed(T + dilation)
    a = torch.randn(T, 2, 5, dtype=torch.float64, requires_grad=True)
    u = torch.rand(5, dtype=torch.float64).mul(2).sub(1).requires_grad_()
    h0 = torch.rand(dilation, 2, 5, dtype=torch.float64, requires_grad=True) if with_state else None
    h = dispatch.indrnn_recurrence(a, u, h0, dilation)
    expected = indrnn_reference(a, u, h0, dilation)
    torch.testing.assert_close(h, expected, rtol=0, atol=1e-12)
    g = torch.randn_like(h)
    leaves = [a, u] + ([h0] if with_state else [])
    for got, want in zip(torch.autograd.grad(h, leaves, g), torch.autograd.grad(expected, leaves, g)):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_short_rnn_step_equals_the_loop(activation, monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(1, 3, 4, dtype=torch.float64, requires_grad=True)
    W = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    U = torch.randn(6, 6, dtype=torch.float64).mul(0.3).requires_grad_()
    s0 = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    s = dispatch.short_rnn_recurrence(x, W, b, U, s0, activation)
    monkeypatch.undo()  # the reference: the sequence loop
    expected = short_rnn_loop(torch.nn.functional.linear(x, W, b), U, s0, activation)
    torch.testing.assert_close(s, expected, rtol=0, atol=1e-12)
    g = torch.randn_like(s)
    leaves = [x, W, b, U, s0]
    for got, want in zip(torch.autograd.grad(s, leaves, g), torch.autograd.grad(expected, leaves, g)):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_a_forced_backend_still_runs_single_steps(monkeypatch):
    """``DURNN_BACKEND`` keeps its meaning for one step too."""
    monkeypatch.setenv("DURNN_BACKEND", "cpu")
    with pytest.raises(AssertionError, match="sequence implementation"):
        dispatch.indrnn_recurrence(torch.randn(1, 2, 3), torch.rand(3))
