"""Chunked parallel scan against the sequential loop (values, gradients, dilation, state, long T),
fp64 gradcheck, and the backend dispatch (``DURNN_BACKEND``)."""
import importlib.util
import os
import subprocess
import sys
import time

import pytest
import torch

from durnn_plugin.ops import (
    choose_backend, indrnn_loop, indrnn_recurrence, indrnn_reference, indrnn_scan, last_states,
)
from durnn_plugin.ops.indrnn_scan import chunk_length

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAS_TRITON = importlib.util.find_spec("triton") is not None


def make_inputs(T, d, dtype=torch.float64, B=3, N=6, seed=0, u_range=(-1.6, 1.6)):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(T, B, N, dtype=dtype, generator=g)
    lo, hi = u_range
    u = torch.rand(N, dtype=dtype, generator=g) * (hi - lo) + lo
    u[0] = -1.4  # always one column with u < -1 and one with u > 1
    u[1] = 1.3
    h0 = torch.randn(d, B, N, dtype=dtype, generator=g)  # a state of either sign
    return [x.requires_grad_() for x in (a, u, h0)]


def assert_rel(x, ref, tol, what):
    err = (x - ref).abs().max().item() if x.numel() else 0.0
    bound = tol * (1 + ref.abs().max().item()) if x.numel() else 0.0
    assert torch.isfinite(x).all(), f"{what}: non-finite"
    assert err <= bound, f"{what}: max error {err:.3g} > {bound:.3g}"


def compare_to_loop(T, d, chunk, dtype, tol, **kw):
    a, u, h0 = make_inputs(T, d, dtype, **kw)
    ref = indrnn_loop(a, u, h0, d)
    h = indrnn_scan(a, u, h0, d, chunk=chunk)
    assert h.dtype == dtype
    assert_rel(h, ref, tol, "h")
    grad = torch.randn(ref.shape, dtype=dtype, generator=torch.Generator().manual_seed(1))
    for name, x, y in zip(("a", "u", "h0"), torch.autograd.grad(h, (a, u, h0), grad),
                          torch.autograd.grad(ref, (a, u, h0), grad)):
        assert_rel(x, y, tol, f"grad {name}")


# (T, d, chunk): odd T, T = 1, one chunk, many chunks, a ragged last chunk, chunk = 1
CASES = [(1, 1, None), (2, 1, 1), (7, 1, 2), (13, 1, 3), (13, 1, 13), (40, 1, None),
         (1, 3, None), (2, 3, 1), (9, 3, 2), (11, 2, 3), (31, 2, 4), (30, 3, None)]


@pytest.mark.parametrize("T,d,chunk", CASES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_scan_equals_loop(T, d, chunk, dtype, tol):
    compare_to_loop(T, d, chunk, dtype, tol)


@pytest.mark.parametrize("u_range", [(0.0, 1.0), (-1.0, 0.0), (1.0, 1.5), (-3.0, -1.0)])
def test_scan_equals_loop_by_sign_of_u(u_range):
    compare_to_loop(60, 1, 5, torch.float64, 1e-12, u_range=u_range, seed=4)


@pytest.mark.parametrize("T,d,chunk", [(6, 1, 2), (7, 2, 2), (5, 3, 1), (9, 1, 4)])
def test_scan_gradcheck_fp64(T, d, chunk):
    a, u, h0 = make_inputs(T, d, B=2, N=3)
    assert torch.autograd.gradcheck(lambda a, u, h0: indrnn_scan(a, u, h0, d, chunk=chunk), (a, u, h0))


def test_scan_equals_reference_and_handles_zero_u():
    a, u, h0 = make_inputs(25, 2)
    with torch.no_grad():
        u[2] = 0.0  # u = 0 must not form 0 * inf inside the chunk maps
    h = indrnn_scan(a, u, h0, 2, chunk=4)
    ref = indrnn_reference(a, u, h0, 2)
    assert_rel(h, ref, 1e-12, "h")
    for x, y in zip(torch.autograd.grad(h.sum(), (a, u, h0)), torch.autograd.grad(ref.sum(), (a, u, h0))):
        assert_rel(x, y, 1e-12, "grad")


def test_large_negative_u_with_long_chunks_stays_exact():
    """u = -3 keeps h bounded (a positive state is pushed below zero next step) while u^K overflows
    fp32 for K > 80: the chunk cap must keep the chunk maps finite."""
    T = 3000
    assert chunk_length(T, torch.tensor([-3.0]), torch.float32, chunk=1000) < 70
    g = torch.Generator().manual_seed(5)
    a = torch.randn(T, 2, 4, generator=g).requires_grad_()
    u = torch.tensor([-3.0, -1.5, 0.5, 2.0]).requires_grad_()
    a.data[:, :, 3] -= 3.0  # u = 2 column: mostly reset to zero, so it stays finite
    ref = indrnn_loop(a, u)
    assert torch.isfinite(ref).all()
    h = indrnn_scan(a, u, chunk=1000)
    assert_rel(h, ref, 1e-5, "h")
    for x, y in zip(torch.autograd.grad(h.sum(), (a, u)), torch.autograd.grad(ref.sum(), (a, u))):
        assert_rel(x, y, 1e-5, "grad")


@pytest.mark.parametrize("d", [1, 2, 3])
def test_scan_state_in_out_splits_a_sequence(d):
    a, u, h0 = make_inputs(23, d)
    full = indrnn_scan(a, u, h0, d, chunk=3)
    first = indrnn_scan(a[:10], u, h0, d, chunk=3)
    second = indrnn_scan(a[10:], u, last_states(h0, first, None), d, chunk=3)
    torch.testing.assert_close(torch.cat([first, second]), full, atol=1e-12, rtol=1e-12)
    assert_rel(last_states(h0, full, None), indrnn_loop(a, u, h0, d)[-d:], 1e-12, "final state")


def test_low_precision_inputs_keep_dtype():
    a, u, h0 = make_inputs(50, 1, torch.float32)
    h = indrnn_scan(a.detach().bfloat16().requires_grad_(), u, h0.detach().bfloat16(), chunk=7)
    assert h.dtype == torch.bfloat16
    ref = indrnn_loop(a.detach().bfloat16().float(), u.detach(), h0.detach().bfloat16().float())
    assert_rel(h.float(), ref, 1e-2, "h")


def test_long_sequence_matches_loop():
    """T = 100k with few columns (B·N = 4): the scan's use case. Forward and backward against the
    loop; the scan is also faster here."""
    T = 100_000
    g = torch.Generator().manual_seed(7)
    a = torch.randn(T, 1, 4, generator=g).requires_grad_()
    u = torch.tensor([0.9999, -0.9, 0.5, -0.2]).requires_grad_()
    h0 = torch.rand(1, 1, 4, generator=g).requires_grad_()
    grad = torch.randn(T, 1, 4, generator=g)
    start = time.perf_counter()
    ref = indrnn_loop(a, u, h0)
    ref_grads = torch.autograd.grad(ref, (a, u, h0), grad)
    loop_s = time.perf_counter() - start
    start = time.perf_counter()
    h = indrnn_scan(a, u, h0)
    grads = torch.autograd.grad(h, (a, u, h0), grad)
    scan_s = time.perf_counter() - start
    assert_rel(h, ref, 1e-5, "h")
    for name, x, y in zip(("a", "u", "h0"), grads, ref_grads):
        assert_rel(x, y, 1e-5, f"grad {name}")
    assert scan_s < loop_s, (scan_s, loop_s)


# ----------------------------------------------------------------------------- dispatch


@pytest.mark.parametrize("name", ["auto", "reference", "cpu", "scan", "AUTO", ""])
def test_backend_values_agree(monkeypatch, name):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setenv("DURNN_BACKEND", name)
    a, u, h0 = make_inputs(9, 2)
    h = indrnn_recurrence(a, u, h0, 2)
    ref = indrnn_reference(a, u, h0, 2)
    assert_rel(h, ref, 1e-12, "h")
    for x, y in zip(torch.autograd.grad(h.sum(), (a, u, h0)), torch.autograd.grad(ref.sum(), (a, u, h0))):
        assert_rel(x, y, 1e-12, "grad")


def test_auto_rule_on_cpu(monkeypatch):
    """The compiled loop wherever it runs; where it cannot (here: as if its build had failed),
    the scan for few columns and long sequences, else the torch loop."""
    monkeypatch.setenv("DURNN_BACKEND", "auto")
    assert choose_backend(torch.empty(8, 2, 3)) == "compiled"
    assert choose_backend(torch.empty(100_000, 1, 4)) == "compiled"
    assert choose_backend(torch.empty(100_000, 1, 4, dtype=torch.bfloat16)) == "scan"
    monkeypatch.setattr("durnn_plugin.ops.dispatch.unavailable_reason", lambda *t: "not built")
    assert choose_backend(torch.empty(8, 2, 3)) == "cpu"
    assert choose_backend(torch.empty(100_000, 1, 4)) == "scan"
    assert choose_backend(torch.empty(100_000, 64, 64)) == "cpu"  # many columns
    assert choose_backend(torch.empty(4096, 1, 512), dilation=4) == "cpu"  # 1024 steps of 2048 columns
    assert choose_backend(torch.empty(8192, 2, 256)) == "scan"  # at the thresholds
    assert choose_backend(torch.empty(8191, 2, 256)) == "cpu"
    assert choose_backend(torch.empty(8192, 1, 513)) == "cpu"
    assert choose_backend(torch.empty(16384, 1, 256), dilation=2) == "scan"  # 8192 steps, 512 columns


@pytest.mark.skipif(not HAS_TRITON, reason="triton not installed")
def test_forced_triton_runs_under_the_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setenv("DURNN_BACKEND", "triton")
    a, u, h0 = make_inputs(7, 2, torch.float32)
    assert choose_backend(a, 2) == "triton"
    assert_rel(indrnn_recurrence(a, u, h0, 2), indrnn_reference(a, u, h0, 2), 1e-5, "h")


def test_impossible_forced_triton_is_one_line(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setenv("DURNN_BACKEND", "triton")
    a, u, h0 = make_inputs(7, 1, torch.float32)
    with pytest.raises(RuntimeError) as info:
        indrnn_recurrence(a, u, h0)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("DURNN_BACKEND=triton cannot run here: ")
    if HAS_TRITON:
        assert msg.endswith("tensors are on cpu and TRITON_INTERPRET is not set")


def test_unknown_backend_is_one_line(monkeypatch):
    monkeypatch.setenv("DURNN_BACKEND", "magic")
    with pytest.raises(ValueError, match=r"^DURNN_BACKEND='magic' is not a backend here; allowed: "
                                         r"auto, compiled, cpu, reference, scan, triton, triton_pipelined, "
                                         r"triton_scan$"):
        indrnn_recurrence(torch.randn(3, 1, 2), torch.rand(2))


SNIPPET = """
import sys
{block}
import torch
import durnn_plugin.ops as ops
assert sys.modules.get("triton") is None, "durnn_plugin.ops imported triton"
a = torch.randn(5, 2, 3)
h = ops.indrnn_recurrence(a, torch.rand(3))
assert sys.modules.get("triton") is None, "auto on CPU imported triton"
import os
os.environ["DURNN_BACKEND"] = "triton"
try:
    ops.indrnn_recurrence(a, torch.rand(3))
except RuntimeError as e:
    print(e)
"""


@pytest.mark.parametrize("block", [False, True])
def test_import_is_lazy_and_works_without_triton(block):
    code = SNIPPET.format(block="sys.modules['triton'] = None" if block else "")
    env = {k: v for k, v in os.environ.items() if k not in ("DURNN_BACKEND", "TRITON_INTERPRET")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    line = out.stdout.strip().splitlines()[-1]
    if block or not HAS_TRITON:
        assert line == "DURNN_BACKEND=triton cannot run here: triton is not installed (or fails to import)"
    else:
        assert line == "DURNN_BACKEND=triton cannot run here: tensors are on cpu and TRITON_INTERPRET is not set"
