"""Triton chunked-scan kernels (``indrnn_triton_scan``) against ``indrnn_reference``: values and
gradients (a, u, h0), dtypes, odd T, T = 1, T not a multiple of K, many chunks, dilation, state
in/out, u of either sign and |u| > 1, unwritten-element detection (outputs pre-filled with NaN),
the ``triton_scan`` backend in the dispatch, no specialisation on T / K / n, and the kernels
compiled for sm_90 without a GPU.

On CPU the kernels run through Triton's interpreter (``TRITON_INTERPRET=1`` set per test, as in
``test_triton_kernel.py``); with CUDA the same cases also run compiled. Skipped as a whole when
triton is not installed.
"""
import importlib
import types

import pytest
import torch

pytest.importorskip("triton")
# with |u| > 1 the chunk map's upper bound saturates to inf by design (harmless: lo stays finite
# and u != 0); the interpreter's numpy reports that overflow
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in multiply:RuntimeWarning")

from durnn_plugin.ops import (  # noqa: E402
    choose_backend, indrnn_loop, indrnn_recurrence, indrnn_reference, indrnn_triton, last_states,
)
from durnn_plugin.ops.indrnn_scan import chunk_length  # noqa: E402
from triton_cases import (  # noqa: E402
    DEVICES, TOLS, assert_near, compile_for_sm90, make_inputs,
)

scan_module = importlib.import_module("durnn_plugin.ops.indrnn_triton_scan")
indrnn_triton_scan = scan_module.indrnn_triton_scan


def check_against_reference(inputs, d, tol, **kw):
    a, u, h0 = inputs
    h = indrnn_triton_scan(a, u, h0, d, **kw)
    assert h.dtype == a.dtype and h.device == a.device
    ref_in = [x.detach().double().cpu().requires_grad_() for x in (a, u, h0)]  # fp64 ground truth
    ref = indrnn_reference(*ref_in, d)
    assert_near(h, ref, tol, "h")
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grads = torch.autograd.grad(h, (a, u, h0), grad.to(a.dtype).to(a.device))
    ref_grads = torch.autograd.grad(ref, ref_in, grad.to(a.dtype).double())
    for name, x, y in zip(("a", "u", "h0"), grads, ref_grads):
        assert x.dtype == a.dtype
        assert_near(x, y, tol * (10 if name == "u" else 1), f"grad {name}")


# (T, d, chunk): T = 1, odd T, one chunk, many chunks, T not a multiple of K, K = 1, default K
CASES = [(1, 1, None), (2, 1, 1), (7, 1, 2), (13, 1, 3), (13, 1, 13), (16, 1, 4), (40, 1, None),
         (1, 3, None), (9, 3, 2), (11, 2, 3), (31, 2, 4)]


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("T,d,chunk", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scan_kernels_equal_reference(device, T, d, chunk, dtype):
    # block=8 columns per program: 15*d columns give several blocks and a ragged last one
    check_against_reference(make_inputs(T, d, dtype, device), d, TOLS[dtype], chunk=chunk, block=8)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("T,d,chunk", [(13, 1, 3), (9, 3, 2)])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_scan_kernels_low_precision(device, T, d, chunk, dtype):
    check_against_reference(make_inputs(T, d, dtype, device), d, TOLS[dtype], chunk=chunk, block=16)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("u_range", [(0.0, 1.0), (-1.0, 0.0), (1.0, 1.2), (-1.5, -1.0)])
def test_scan_kernels_by_sign_of_u(device, u_range):
    """Every sign of the slope (a negative one swaps the chunk map's bounds), and u = 0 (must not
    form 0·∞ with the unbounded ``hi``)."""
    a, u, h0 = make_inputs(30, 1, torch.float64, device, B=2, N=4, seed=4, u_range=u_range)
    with torch.no_grad():
        u[3] = 0.0
    check_against_reference((a, u, h0), 1, TOLS[torch.float64], chunk=4)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_large_negative_u_caps_the_chunk(device):
    """u = -3 keeps h bounded while u^K overflows fp32 for K > 80: the chunk is capped (K < 70)
    so the chunk maps stay finite; the long chunk asked for becomes several."""
    assert chunk_length(300, torch.tensor([-3.0]), torch.float32, chunk=1000) < 70
    g = torch.Generator().manual_seed(5)
    a = torch.randn(150, 1, 4, generator=g)
    a[:, :, 3] -= 3.0  # the u = 2 column: mostly reset to zero, so it stays finite
    u = torch.tensor([-3.0, -1.5, 0.5, 2.0])
    h0 = torch.rand(1, 1, 4, generator=g)
    inputs = [x.to(device).requires_grad_() for x in (a, u, h0)]
    check_against_reference(inputs, 1, 1e-5, chunk=1000)


def test_default_chunk_length():
    u = torch.tensor([0.5, -0.9])
    assert [scan_module.default_chunk(T) for T in (0, 1, 3, 100, 4096, 65536)] == \
        [1, 1, 2, 8, 64, 256]
    assert chunk_length(5, u, torch.float32, chunk=16) == 5  # at most T


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_default_launch_config_many_columns(device):
    """Default chunk and block on 600 columns, against the sequential Triton kernel: the chunk
    re-run uses its arithmetic, so in fp32 the two agree to rounding of the chunk start states."""
    a, u, h0 = make_inputs(20, 1, torch.float32, device, B=4, N=150, seed=3)
    h = indrnn_triton_scan(a, u, h0)
    h_seq = indrnn_triton(a, u, h0)
    assert_near(h, h_seq, 1e-6, "h vs sequential kernel")
    gh = torch.randn(h.shape, generator=torch.Generator().manual_seed(2)).to(device)
    for name, x, y in zip("au", torch.autograd.grad(h, (a, u), gh),
                          torch.autograd.grad(h_seq, (a, u), gh)):
        assert_near(x, y, 1e-5, f"grad {name} vs sequential kernel")


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_longer_sequence_default_chunks_match_the_loop(device):
    """T = 512 with the default K (16, so 32 chunks) and u near 1, in fp32 against the sequential
    loop: the chunk start states' rounding stays at the loop's own level."""
    g = torch.Generator().manual_seed(7)
    T = 512
    assert chunk_length(T, torch.ones(1), torch.float32, scan_module.default_chunk(T)) == 16
    a = torch.randn(T, 1, 4, generator=g)
    u = torch.tensor([0.9999, -0.9, 0.5, -0.2])
    h0 = torch.rand(1, 1, 4, generator=g)
    grad = torch.randn(T, 1, 4, generator=g)
    ref_in = [x.clone().requires_grad_() for x in (a, u, h0)]
    ref = indrnn_loop(*ref_in)
    ref_grads = torch.autograd.grad(ref, ref_in, grad)
    inputs = [x.to(device).requires_grad_() for x in (a, u, h0)]
    h = indrnn_triton_scan(*inputs)
    assert_near(h, ref, 2e-6, "h")
    for name, x, y in zip(("a", "u", "h0"), torch.autograd.grad(h, inputs, grad.to(device)), ref_grads):
        assert_near(x, y, 2e-6, f"grad {name}")


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("recurrence", ["indrnn_triton", "indrnn_triton_scan"])
def test_state_in_out_splits_a_sequence(device, d, recurrence):
    """The sequential kernel and the scan (K = 3) both continue a sequence from a final state."""
    run = {"indrnn_triton": lambda *x: indrnn_triton(*x, block=8),
           "indrnn_triton_scan": lambda *x: indrnn_triton_scan(*x, chunk=3)}[recurrence]
    a, u, h0 = make_inputs(17, d, torch.float64, device)
    full = run(a, u, h0, d)
    first = run(a[:7], u, h0, d)
    second = run(a[7:], u, last_states(h0, first, None), d)
    torch.testing.assert_close(torch.cat([first, second]), full, atol=1e-12, rtol=1e-12)
    ref = indrnn_reference(a.detach(), u.detach(), h0.detach(), d)
    assert_near(last_states(h0, full, None), ref[-d:], 1e-12, "final state")


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_default_state_and_mixed_parameter_dtype(device):
    """h0=None means zeros; a bf16 input with an fp32 u gives bf16 out and an fp32 ∂u."""
    a, u, _ = make_inputs(9, 1, torch.float32, device)
    h = indrnn_triton_scan(a.detach().bfloat16().requires_grad_(), u, chunk=2)
    assert h.dtype == torch.bfloat16
    ref = indrnn_reference(a.detach().bfloat16().double().cpu(), u.detach().double().cpu())
    assert_near(h, ref, TOLS[torch.bfloat16], "h")
    (gu,) = torch.autograd.grad(h.float().sum(), (u,))
    assert gu.dtype == torch.float32 and torch.isfinite(gu).all()


# ----------------------------------------------------------------------------- dispatch


@pytest.mark.parametrize("backend", ["triton_scan", "triton_pipelined"])
def test_forced_triton_backend_runs_under_the_interpreter(monkeypatch, backend):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setenv("DURNN_BACKEND", backend)
    a, u, h0 = make_inputs(7, 2, torch.float32, "cpu")
    assert choose_backend(a, 2) == backend
    h = indrnn_recurrence(a, u, h0, 2)
    ref = indrnn_reference(*(x.detach().double() for x in (a, u, h0)), 2)
    assert_near(h, ref, 1e-5, "h")


def test_impossible_forced_triton_scan_is_one_line(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setenv("DURNN_BACKEND", "triton_scan")
    a, u, h0 = make_inputs(7, 1, torch.float32, "cpu")
    with pytest.raises(RuntimeError) as info:
        indrnn_recurrence(a, u, h0)
    assert str(info.value) == ("DURNN_BACKEND=triton_scan cannot run here: "
                               "tensors are on cpu and TRITON_INTERPRET is not set")
    with pytest.raises(RuntimeError, match=r"^indrnn_triton_scan cannot run here: tensors are on cpu"):
        indrnn_triton_scan(a, u, h0)


def test_auto_rule(monkeypatch):
    """``auto`` never picks triton_scan on CPU (the compiled loop runs there); on CUDA it does
    for at most 1024 columns and at least 4096 steps of the dilated view (the H100 measurement),
    else the sequential kernel. The CUDA cases use stand-in tensors (shape, dtype, device) so they run without a GPU."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setenv("DURNN_BACKEND", "auto")

    def on_cuda(*shape):
        return types.SimpleNamespace(shape=shape, dtype=torch.float32, device=torch.device("cuda"))

    assert choose_backend(torch.empty(100_000, 1, 4)) == "compiled"
    assert choose_backend(on_cuda(100_000, 1, 4)) == "triton_scan"
    assert choose_backend(on_cuda(4096, 4, 256)) == "triton_scan"  # at the thresholds
    assert choose_backend(on_cuda(4095, 4, 256)) == "triton"
    assert choose_backend(on_cuda(4096, 1, 1025)) == "triton"
    assert choose_backend(on_cuda(16384, 1, 256), dilation=4) == "triton_scan"  # 4096 steps, 1024 columns
    assert choose_backend(on_cuda(16384, 1, 64), dilation=8) == "triton"  # 2048 steps of 512 columns
    assert choose_backend(on_cuda(100_000, 64, 64)) == "triton"  # many columns
    assert choose_backend(on_cuda(1024, 1, 4)) == "triton"  # short
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert choose_backend(torch.empty(100_000, 1, 4)) == "compiled"  # the interpreter is not CUDA


# ----------------------------------------------------------------------------- compilation


def test_lengths_and_chunks_are_not_specialised(monkeypatch):
    """T, K and n are runtime arguments with ``do_not_specialize``: no recompilation per length
    or chunk. Decorating in compiled mode compiles nothing, so this runs without a GPU."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    for kernel in scan_module._build_kernels():
        params = {p.name: p for p in kernel.params}
        runtime = [name for name in ("T", "K", "n") if name in params]
        assert runtime
        for name in runtime:
            assert params[name].do_not_specialize and not params[name].is_constexpr
        assert params["BLOCK"].is_constexpr and params["ACC"].is_constexpr


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16", "fp64"])
def test_scan_kernels_compile_for_sm90_without_a_gpu(aot, dtype):
    """Compile all six kernels ahead of time for an H100 (sm_90) target (triton's bundled ptxas,
    no GPU): the interpreter does not type-check like the compiler does."""
    import triton.language as tl

    fwd_maps, fwd_starts, fwd_chunks, bwd_maps, bwd_incoming, bwd_chunks = \
        scan_module._build_kernels()
    wide = dtype == "fp64"
    acc = tl.float64 if wide else tl.float32
    big = torch.finfo(torch.float64 if wide else torch.float32).max
    p, f32, s = "*" + dtype, "*fp32", "*fp64" if wide else "*fp32"
    consts = {"BLOCK": "constexpr", "ACC": "constexpr"}
    signatures = [
        (fwd_maps, {"a_ptr": p, "u_ptr": f32, "beta_ptr": s, "lo_ptr": s, "hi_ptr": s,
                    "K": "i32", "C": "i32", "N": "i32", "BIG": "constexpr", **consts}),
        (fwd_starts, {"uk_ptr": s, "h0_ptr": p, "beta_ptr": s, "lo_ptr": s, "hi_ptr": s,
                      "start_ptr": s, "n": "i32", "C": "i32", "N": "i32", **consts}),
        (fwd_chunks, {"a_ptr": p, "u_ptr": f32, "start_ptr": s, "h_ptr": p, "T": "i32",
                      "K": "i32", "C": "i32", "N": "i32", **consts}),
        (bwd_maps, {"g_ptr": p, "h_ptr": p, "u_ptr": f32, "uk_ptr": s, "val_ptr": s,
                    "prod_ptr": s, "T": "i32", "K": "i32", "C": "i32", "N": "i32", **consts}),
        (bwd_incoming, {"val_ptr": s, "prod_ptr": s, "inc_ptr": s, "n": "i32", "C": "i32",
                        **consts}),
        (bwd_chunks, {"g_ptr": p, "h_ptr": p, "u_ptr": f32, "h0_ptr": p, "inc_ptr": s,
                      "da_ptr": p, "dh0_ptr": p, "du_ptr": s, "T": "i32", "K": "i32",
                      "C": "i32", "N": "i32", **consts}),
    ]
    for kernel, signature in signatures:
        constexprs = {"BLOCK": 128, "ACC": acc}
        if "BIG" in signature:
            constexprs["BIG"] = big
        compiled = compile_for_sm90(kernel, signature, constexprs, 2)
        assert "ld.global" in compiled.asm["ptx"]
