"""ops.short_rnn_cpu (DuRNN's short-term loop on the CPU) against torch's rnn_relu / rnn_tanh."""
import pytest
import torch

from durnn_plugin.ops import short_rnn_loop


def torch_rnn(x, W, U, b, s0, activation):
    rnn = torch.rnn_relu if activation == "relu" else torch.rnn_tanh
    return rnn(x, s0.unsqueeze(0), [W, U, b, torch.zeros_like(b)], True, 1, 0.0, True, False,
               False)[0]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("T", [1, 2, 17])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_and_gradients_equal_torch_rnn(activation, T, dtype):
    torch.manual_seed(T)
    B, D, N = 3, 5, 4
    x = torch.randn(T, B, D, dtype=dtype, requires_grad=True)
    W = torch.randn(N, D, dtype=dtype, requires_grad=True)
    U = (0.6 * torch.randn(N, N, dtype=dtype)).requires_grad_()
    b = torch.randn(N, dtype=dtype, requires_grad=True)
    s0 = torch.randn(B, N, dtype=dtype, requires_grad=True)  # a state in, not zeros
    inputs = (x, W, U, b, s0)
    expected = torch_rnn(*inputs, activation)
    got = short_rnn_loop(torch.nn.functional.linear(x, W, b), U, s0, activation)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got, expected, **tol)
    assert activation == "tanh" or (got == 0).any()  # relu's mask is exercised
    grad = torch.randn_like(expected)
    for g, e in zip(torch.autograd.grad(got, inputs, grad), torch.autograd.grad(expected, inputs, grad)):
        torch.testing.assert_close(g, e, **tol)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_gradcheck_fp64(activation):
    torch.manual_seed(0)
    p = torch.randn(6, 2, 3, dtype=torch.float64, requires_grad=True)
    U = (0.5 * torch.randn(3, 3, dtype=torch.float64)).requires_grad_()
    s0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: short_rnn_loop(*a, activation), (p, U, s0))


def test_unknown_activation_is_one_line():
    with pytest.raises(ValueError, match="activation 'gelu': allowed relu, tanh"):
        short_rnn_loop(torch.zeros(1, 1, 1), torch.zeros(1, 1), torch.zeros(1, 1), "gelu")
