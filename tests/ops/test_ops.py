"""IndRNN recurrence: reference vs fast path, gradients, dilation, state, backend choice."""
import pytest
import torch

from durnn_plugin.ops import (
    dilate, indrnn_loop, indrnn_recurrence, indrnn_reference, last_states, selected_backend,
    undilate,
)

CASES = [(1, 1), (2, 1), (7, 1), (1, 3), (2, 3), (7, 3), (9, 3), (8, 4), (5, 2)]


def make_inputs(T, d, B=3, N=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(T, B, N, dtype=dtype, generator=g).requires_grad_()
    u = (torch.rand(N, dtype=dtype, generator=g) * 2.2 - 1.1).requires_grad_()
    h0 = torch.rand(d, B, N, dtype=dtype, generator=g).requires_grad_()
    return a, u, h0


@pytest.mark.parametrize("T,d", CASES)
def test_reference_gradcheck_fp64(T, d):
    a, u, h0 = make_inputs(T, d)
    assert torch.autograd.gradcheck(lambda a, u, h0: indrnn_reference(a, u, h0, d), (a, u, h0))


@pytest.mark.parametrize("T,d", CASES)
def test_loop_gradcheck_fp64(T, d):
    a, u, h0 = make_inputs(T, d)
    assert torch.autograd.gradcheck(lambda a, u, h0: indrnn_loop(a, u, h0, d), (a, u, h0))


@pytest.mark.parametrize("T,d", CASES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_loop_equals_reference(T, d, dtype, tol):
    a, u, h0 = make_inputs(T, d, dtype=dtype)
    ref = indrnn_reference(a, u, h0, d)
    fast = indrnn_loop(a, u, h0, d)
    torch.testing.assert_close(fast, ref, atol=tol, rtol=tol)
    grad = torch.randn_like(ref)
    g_ref = torch.autograd.grad(ref, (a, u, h0), grad)
    g_fast = torch.autograd.grad(fast, (a, u, h0), grad)
    for x, y in zip(g_fast, g_ref):
        torch.testing.assert_close(x, y, atol=tol * 10, rtol=tol * 10)


def test_reference_matches_equation_by_hand():
    a = torch.tensor([[[1.0, -1.0]], [[0.5, 0.5]], [[-2.0, 3.0]]])  # (T=3, B=1, N=2)
    u = torch.tensor([0.5, -1.0])
    h = indrnn_reference(a, u)
    expected = torch.tensor([[[1.0, 0.0]], [[1.0, 0.5]], [[0.0, 2.5]]])
    torch.testing.assert_close(h, expected)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_state_in_out_splits_a_sequence(d):
    a, u, h0 = make_inputs(11, d)
    full = indrnn_loop(a, u, h0, d)
    first = indrnn_loop(a[:4], u, h0, d)
    second = indrnn_loop(a[4:], u, last_states(h0, first, None), d)
    torch.testing.assert_close(torch.cat([first, second]), full)
    torch.testing.assert_close(last_states(h0, full, None), full[-d:])


def test_last_states_follow_lengths():
    h0 = torch.full((2, 3, 1), -1.0)
    h = torch.arange(5.0).view(5, 1, 1).expand(5, 3, 1)
    out = last_states(h0, h, torch.tensor([5, 1, 0]))
    assert out[:, 0, 0].tolist() == [3.0, 4.0]
    assert out[:, 1, 0].tolist() == [-1.0, 0.0]
    assert out[:, 2, 0].tolist() == [-1.0, -1.0]


def test_dilate_undilate_roundtrip_and_view():
    x = torch.randn(7, 2, 3)
    v = dilate(x, 3)
    assert v.shape == (3, 6, 3)
    assert torch.equal(v[1, 2 * 2 + 1], x[1 * 3 + 2, 1])  # (t=5, b=1) -> (i=1, j*B+b=5)
    assert torch.equal(undilate(v, 3, 7), x)
    y = torch.randn(6, 2, 3)
    assert dilate(y, 3).data_ptr() == y.data_ptr()  # no copy when T % d == 0


def test_backend_env(monkeypatch):
    a, u, h0 = make_inputs(6, 2, dtype=torch.float32)
    monkeypatch.setenv("DURNN_BACKEND", "reference")
    assert selected_backend() == "reference"
    ref = indrnn_recurrence(a, u, h0, 2)
    monkeypatch.setenv("DURNN_BACKEND", "cpu")
    torch.testing.assert_close(indrnn_recurrence(a, u, h0, 2), ref)
    monkeypatch.setenv("DURNN_BACKEND", "cuda-magic")
    with pytest.raises(ValueError, match="DURNN_BACKEND='cuda-magic'.*allowed: auto"):
        indrnn_recurrence(a, u, h0, 2)


def test_long_sequence_is_finite():
    a = torch.randn(5000, 1, 4)
    u = torch.full((4,), 2.0 ** (1 / 5000))
    h = indrnn_loop(a.requires_grad_(), u.requires_grad_())
    h.sum().backward()
    assert torch.isfinite(h).all() and torch.isfinite(a.grad).all() and torch.isfinite(u.grad).all()


@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("backend", ["cpu", "scan", "compiled"])
def test_constant_input_follows_the_closed_form_for_100000_steps(backend, d, monkeypatch):
    """``a_t = c > 0`` and ``0 < u < 1`` keep ``h > 0``, so with ``n_t = ⌊t/d⌋ + 1`` terms
    ``h_t = c·(1 - u^n_t)/(1 - u)``, rising to the fixed point ``c/(1 - u)`` (u = 1 - 1e-4 is
    still 4.5e-5 short of it at T = 100,000). For ``L = Σ h_{T-1}``: ``∂L/∂a_t = u^((T-1-t)/d)``
    where ``d`` divides ``T-1-t`` (else 0) and ``∂L/∂u = c·(1 - n·u^(n-1) + (n-1)·u^n)/(1 - u)²``
    with ``n = n_{T-1}``."""
    T = 100_000
    c = torch.tensor([0.3, 2.0, 1.0], dtype=torch.float64)
    u = torch.tensor([1 - 1e-4, 0.5, 0.999], dtype=torch.float64)
    a = c.expand(T, 1, 3).clone().requires_grad_()
    u_leaf = u.clone().requires_grad_()
    monkeypatch.setenv("DURNN_BACKEND", backend)
    h = indrnn_recurrence(a, u_leaf, None, d)
    h[-1].sum().backward()

    t = torch.arange(T, dtype=torch.float64).view(T, 1, 1)
    n = torch.div(t, d, rounding_mode="floor") + 1
    torch.testing.assert_close(h, c * (1 - u ** n) / (1 - u), rtol=1e-9, atol=0)
    lag = T - 1 - t
    on_chain = lag.remainder(d) == 0
    torch.testing.assert_close(a.grad, torch.where(on_chain, u ** (lag / d), 0.0).expand(T, 1, 3),
                               rtol=1e-9, atol=1e-300)
    n = n[-1, 0, 0]
    du = c * (1 - n * u ** (n - 1) + (n - 1) * u ** n) / (1 - u) ** 2
    torch.testing.assert_close(u_leaf.grad, du, rtol=1e-8, atol=0)
