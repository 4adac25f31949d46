"""The compiled CPU recurrences (ops/indrnn_compiled.py, ops/short_rnn_compiled.py) against their
references, the dispatch rule that picks them, and the fallback when they cannot be built."""
import logging
import time

import pytest
import torch

from durnn_plugin.ops import (
    choose_backend, choose_short_backend, indrnn_recurrence, indrnn_reference, last_states,
    short_rnn_recurrence,
)
from durnn_plugin.ops import cpu_extension
from durnn_plugin.ops.indrnn_compiled import indrnn_compiled
from durnn_plugin.ops.short_rnn_compiled import short_rnn_compiled

from test_short_rnn_cpu import torch_rnn

TOL = {torch.float32: dict(rtol=1e-4, atol=1e-4), torch.float64: dict(rtol=1e-10, atol=1e-12)}


def indrnn_inputs(T, B, N, d, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(T, B, N, dtype=dtype, generator=g).requires_grad_()
    u = (1.9 * torch.rand(N, dtype=dtype, generator=g) - 0.9).requires_grad_()  # some u < 0
    h0 = torch.rand(d, B, N, dtype=dtype, generator=g).requires_grad_()  # a state in
    return a, u, h0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("T,B,N,d", [(1, 2, 3, 1), (1, 2, 3, 4), (2, 1, 1, 1), (17, 3, 5, 1),
                                     (17, 3, 5, 3), (64, 4, 700, 2)])
def test_indrnn_compiled_equals_reference(T, B, N, d, dtype):
    """Against the fp64 reference on the same values: fp32 sums (∂u over T·B terms) are held to
    fp32 accuracy, not to the fp32 reference's own rounding."""
    a, u, h0 = indrnn_inputs(T, B, N, d, dtype)
    exact = [t.detach().double().requires_grad_() for t in (a, u, h0)]
    got, expected = indrnn_compiled(a, u, h0, d), indrnn_reference(*exact, d)
    torch.testing.assert_close(got.double(), expected, **TOL[dtype])
    if got.numel() > 50:
        assert (got == 0).any() and (got > 0).any()  # relu's mask is exercised
    grad = torch.randn_like(got)
    for g, e in zip(torch.autograd.grad(got, (a, u, h0), grad),
                    torch.autograd.grad(expected, exact, grad.double())):
        torch.testing.assert_close(g.double(), e, **TOL[dtype])
    torch.testing.assert_close(last_states(h0, got, None).double(),
                               last_states(exact[2], expected, None), **TOL[dtype])


def test_indrnn_compiled_takes_non_contiguous_inputs():
    a, u, h0 = indrnn_inputs(9, 4, 6, 2, torch.float32)
    a_t = a.detach().transpose(0, 1).contiguous().transpose(0, 1).requires_grad_()  # strides
    u_wide = torch.randn(12).requires_grad_()
    u_strided = u_wide[::2]
    h0_t = h0.detach().permute(0, 2, 1).contiguous().permute(0, 2, 1)
    assert not a_t.is_contiguous() and not u_strided.is_contiguous()
    assert not h0_t.is_contiguous()
    got = indrnn_compiled(a_t, u_strided, h0_t, 2)
    torch.testing.assert_close(got, indrnn_reference(a_t, u_strided, h0_t, 2))
    got.sum().backward()
    expected = torch.autograd.grad(indrnn_reference(a_t, u_strided, h0_t, 2).sum(), (a_t, u_wide))
    torch.testing.assert_close(a_t.grad, expected[0])
    torch.testing.assert_close(u_wide.grad, expected[1])


@pytest.mark.parametrize("T,d", [(1, 1), (5, 1), (7, 3)])
def test_indrnn_compiled_gradcheck_fp64(T, d):
    inputs = indrnn_inputs(T, 2, 3, d, torch.float64, seed=T)
    assert torch.autograd.gradcheck(lambda a, u, h0: indrnn_compiled(a, u, h0, d), inputs)


def short_inputs(T, B, D, N, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, D, dtype=dtype, generator=g).requires_grad_()
    W = torch.randn(N, D, dtype=dtype, generator=g).requires_grad_()
    U = (0.6 * torch.randn(N, N, dtype=dtype, generator=g)).requires_grad_()
    b = torch.randn(N, dtype=dtype, generator=g).requires_grad_()
    s0 = torch.randn(B, N, dtype=dtype, generator=g).requires_grad_()
    return x, W, U, b, s0


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("T,B", [(1, 3), (2, 1), (17, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_short_rnn_compiled_equals_torch_rnn(activation, T, B, dtype):
    inputs = short_inputs(T, B, 5, 4, dtype, seed=T)
    x, W, U, b, s0 = inputs
    expected = torch_rnn(*inputs, activation)
    got = short_rnn_compiled(torch.nn.functional.linear(x, W, b), U, s0, activation)
    torch.testing.assert_close(got, expected, **TOL[dtype])
    assert activation == "tanh" or (got == 0).any()
    grad = torch.randn_like(expected)
    for g, e in zip(torch.autograd.grad(got, inputs, grad),
                    torch.autograd.grad(expected, inputs, grad)):
        torch.testing.assert_close(g, e, **TOL[dtype])


def test_short_rnn_compiled_takes_non_contiguous_inputs():
    x, W, U, b, s0 = short_inputs(6, 3, 4, 4, torch.float32)
    p = torch.nn.functional.linear(x, W, b).transpose(0, 1).contiguous().transpose(0, 1)
    U_t = U.detach().t().contiguous().t()
    s0_t = s0.detach().t().contiguous().t()
    assert not (p.is_contiguous() or U_t.is_contiguous() or s0_t.is_contiguous())
    torch.testing.assert_close(short_rnn_compiled(p, U_t, s0_t, "tanh"),
                               torch_rnn(x, W, U_t, b, s0_t, "tanh"))


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_short_rnn_compiled_gradcheck_fp64(activation):
    g = torch.Generator().manual_seed(0)
    p = torch.randn(6, 2, 3, dtype=torch.float64, generator=g).requires_grad_()
    U = (0.5 * torch.randn(3, 3, dtype=torch.float64, generator=g)).requires_grad_()
    s0 = torch.randn(2, 3, dtype=torch.float64, generator=g).requires_grad_()
    assert torch.autograd.gradcheck(lambda *a: short_rnn_compiled(*a, activation), (p, U, s0))


def test_auto_picks_compiled_for_fp32_and_fp64_cpu_only(monkeypatch):
    monkeypatch.delenv("DURNN_BACKEND", raising=False)
    for dtype in (torch.float32, torch.float64):
        a = torch.zeros(3, 2, 4, dtype=dtype)
        assert choose_backend(a, 1, a[0, 0]) == "compiled"
        assert choose_short_backend(a) == "compiled"
    half = torch.zeros(3, 2, 4, dtype=torch.bfloat16)
    assert choose_backend(half, 1, half[0, 0]) == "cpu"
    assert choose_short_backend(half) == "cpu"
    mixed = torch.zeros(3, 2, 4)
    assert choose_backend(mixed, 1, torch.zeros(4, dtype=torch.float64)) == "cpu"


def test_auto_keeps_the_torch_loop_for_wide_calls_on_one_thread(monkeypatch):
    monkeypatch.delenv("DURNN_BACKEND", raising=False)
    threads = torch.get_num_threads()
    wide, narrow = torch.zeros(4, 32, 512), torch.zeros(4, 50, 96)
    try:
        torch.set_num_threads(1)
        assert choose_backend(wide, 1, wide[0, 0]) == "cpu"
        assert choose_backend(narrow, 1, narrow[0, 0]) == "compiled"
        assert choose_short_backend(wide) == "compiled"
        torch.set_num_threads(2)
        assert choose_backend(wide, 1, wide[0, 0]) == "compiled"
    finally:
        torch.set_num_threads(threads)


def test_environment_forces_the_loop_or_the_compiled_path(monkeypatch):
    monkeypatch.setenv("DURNN_BACKEND", "cpu,short=cpu")
    a = torch.zeros(3, 2, 4)
    assert choose_backend(a) == "cpu" and choose_short_backend(a) == "cpu"
    monkeypatch.setenv("DURNN_BACKEND", "compiled,short=compiled")
    assert choose_backend(a) == "compiled" and choose_short_backend(a) == "compiled"
    with pytest.raises(RuntimeError, match="DURNN_BACKEND=compiled cannot run here: .*fp32 or"):
        choose_backend(a.half())
    with pytest.raises(RuntimeError, match="DURNN_BACKEND=short=compiled cannot run here"):
        choose_short_backend(a.half())


@pytest.fixture
def failing_build(monkeypatch, tmp_path):
    """The extension's build fails as it would without a compiler."""
    from torch.utils import cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Error building extension 'durnn_cpu_recurrences': g++: not found\n"
                           "more lines of the build log")

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    cpu_extension.compiled_module.cache_clear()
    yield
    cpu_extension.compiled_module.cache_clear()


def test_a_failed_build_falls_back_to_the_loops_with_one_line(failing_build, caplog,
                                                              monkeypatch):
    monkeypatch.delenv("DURNN_BACKEND", raising=False)
    a, u, h0 = indrnn_inputs(8, 2, 3, 1, torch.float32)
    x, W, U, b, s0 = short_inputs(8, 2, 3, 3, torch.float32)
    with caplog.at_level(logging.WARNING, logger=cpu_extension.__name__):
        assert choose_backend(a, 1, u) == "cpu" and choose_short_backend(x) == "cpu"
        torch.testing.assert_close(indrnn_recurrence(a, u, h0), indrnn_reference(a, u, h0))
        torch.testing.assert_close(short_rnn_recurrence(x, W, b, U, s0),
                                   torch_rnn(x, W, U, b, s0, "relu"))
    warnings = [r for r in caplog.records if r.name == cpu_extension.__name__]
    assert len(warnings) == 1  # once, however many calls
    message = warnings[0].getMessage()
    assert "\n" not in message and "running the torch loops" in message and "g++" in message
    monkeypatch.setenv("DURNN_BACKEND", "compiled")
    with pytest.raises(RuntimeError, match="DURNN_BACKEND=compiled cannot run here: the "
                                           "extension could not be built"):
        indrnn_recurrence(a, u, h0)


def test_a_stale_build_lock_is_removed_and_a_fresh_one_kept(tmp_path):
    lock = tmp_path / "lock"
    lock.write_text("")
    cpu_extension.remove_stale_lock(tmp_path)
    assert lock.exists()  # a build may be running now
    old = time.time() - cpu_extension.STALE_LOCK_SECONDS - 60
    import os
    os.utime(lock, (old, old))
    cpu_extension.remove_stale_lock(tmp_path)
    assert not lock.exists()
