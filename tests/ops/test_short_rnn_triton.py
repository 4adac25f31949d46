"""The fused short-term Triton kernels (``short_rnn_triton``) against the fp64 CPU loop
(``short_rnn_loop``, itself checked against torch's ``rnn_relu``/``rnn_tanh`` and by gradcheck in
``test_short_rnn_cpu.py``): values and gradients (p, U, s0), relu and tanh, fp32 and fp64, odd T,
T = 1, T = 0, several batch tiles with a ragged last one, N padded to the dot's 16, state in/out,
outputs pre-filled with NaN (unwritten elements fail); the ``short=`` items of ``DURNN_BACKEND``
and the DuRNN layer routed through them; T not specialised; compilation for sm_90 without a GPU.

On CPU the kernels run through Triton's interpreter (``TRITON_INTERPRET=1`` per test, see
``test_triton_kernel.py``), whose ``tl.dot`` does not take bf16, so bf16/fp16 run on CUDA only.
On CUDA an fp32 ``tl.dot`` runs in TF32 (10-bit mantissa): fp32 there is held to ``TF32_TOL``;
bf16 and fp16 to ``TOLS`` (3e-2, 4e-3 relative to the largest magnitude). A CPU emulation of the
kernels' rounding (operands rounded to the dot's precision, fp32 accumulation) on these cases gave
at most 7e-3 (bf16), 5e-4 (fp16) and 4e-4 (TF32).
Skipped as a whole when triton is not installed.
"""
import importlib
import types

import pytest
import torch

pytest.importorskip("triton")

from durnn_plugin.modules import DuRNNCell  # noqa: E402
from durnn_plugin.ops import (  # noqa: E402
    choose_short_backend, selected_backend, short_rnn_loop, short_rnn_recurrence,
)
from triton_cases import (  # noqa: E402
    DEVICES, TOLS, assert_length_not_specialised, assert_matches_reference, assert_near,
    assert_state_carries, compile_for_sm90,
)

kernel_module = importlib.import_module("durnn_plugin.ops.short_rnn_triton")
dispatch = importlib.import_module("durnn_plugin.ops.dispatch")
short_rnn_triton = kernel_module.short_rnn_triton

TF32_TOL = 2e-3  # fp32 on CUDA: tl.dot in TF32
CUDA_ONLY = [pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device")])]
# (T, B, N, block_b): T = 1, odd T; one tile, two and three tiles with a ragged last one;
# N below, at and above the dot's minimum of 16
CASES = [(1, 3, 5, None), (2, 3, 5, None), (7, 20, 17, 16), (13, 4, 16, None), (9, 33, 3, 16)]


def make_inputs(T, B, N, dtype, device, seed=0, off_kink=False):
    """p ``(T, B, N)``, U ``(N, N)`` with σ_max(U) = 0.9 (as the layer constrains it), s0 ``(B, N)``
    in [0, 1); all requiring grad. ``off_kink``: p ≥ 0.1 and U ≥ 0, so every relu pre-activation
    is ≥ 0.1."""
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(T, B, N, generator=g)
    U = torch.randn(N, N, generator=g, dtype=torch.float64)
    if off_kink:
        p, U = p.abs() + 0.1, U.abs()
    U = (U * 0.9 / torch.linalg.matrix_norm(U, 2)).float()
    s0 = torch.rand(B, N, generator=g)
    return [x.to(dtype).to(device).requires_grad_() for x in (p, U, s0)]


def tolerance(dtype, device):
    return TF32_TOL if (device == "cuda" and dtype == torch.float32) else TOLS[dtype]


def check_against_loop(T, B, N, dtype, device, activation, block_b=None):
    # compiled dots round (TF32, bf16, fp16): a relu pre-activation within rounding of 0 may land
    # on the other side of the kink than in the fp64 loop, and the gradient then differs by a
    # whole g_t; there the inputs keep off the kink (the interpreter's exact fp32/fp64 dots test
    # the mask with both signs)
    rounded = device == "cuda" and dtype != torch.float64
    p, U, s0 = make_inputs(T, B, N, dtype, device, off_kink=rounded and activation == "relu")
    s = short_rnn_triton(p, U, s0, activation, block_b=block_b)
    assert s.dtype == dtype and s.device.type == device and s.shape == (T, B, N)
    assert_matches_reference(s, (p, U, s0), lambda *x: short_rnn_loop(*x, activation),
                             tolerance(dtype, device), ("p", "U", "s0"), loose=("U",))


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("T,B,N,block_b", CASES)
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernels_equal_the_fp64_loop(device, T, B, N, block_b, activation, dtype):
    check_against_loop(T, B, N, dtype, device, activation, block_b)


@pytest.mark.parametrize("device", CUDA_ONLY, indirect=True)
@pytest.mark.parametrize("T,B,N,block_b", [(1, 3, 5, None), (13, 20, 17, 16)])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_on_cuda(device, T, B, N, block_b, activation, dtype):
    check_against_loop(T, B, N, dtype, device, activation, block_b)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_state_in_and_out(device):
    """3 + 6 steps chained through the final state equal 9 steps, values and gradients."""
    p, U, s0 = make_inputs(9, 20, 17, torch.float64, device, seed=4)
    assert_state_carries(lambda x, state: short_rnn_triton(x, U, state, block_b=16), p, s0,
                         (p, U, s0), 3, lambda first: first[-1])


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_empty_sequence(device):
    p, U, s0 = make_inputs(0, 3, 5, torch.float32, device)
    s = short_rnn_triton(p, U, s0)
    assert s.shape == (0, 3, 5)
    gp, gU, gs0 = torch.autograd.grad(s.sum(), (p, U, s0), allow_unused=True)
    assert gp.shape == p.shape and not gU.abs().sum() and not gs0.abs().sum()


def test_bad_arguments_are_one_line(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    p, U, s0 = make_inputs(2, 3, 5, torch.float32, "cpu")
    with pytest.raises(ValueError, match=r"^activation 'gelu': allowed relu, tanh$"):
        short_rnn_triton(p, U, s0, "gelu")
    with pytest.raises(ValueError, match=r"^block_b=8: allowed powers of two >= 16$"):
        short_rnn_triton(p, U, s0, block_b=8)
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(RuntimeError, match=r"^short_rnn_triton cannot run here: tensors are on cpu "
                                           r"and TRITON_INTERPRET is not set$"):
        short_rnn_triton(p, U, s0)


# ----------------------------------------------------------------------------- dispatch


def layer_inputs(dtype=torch.float64, T=6, B=3, D=4, N=5):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(T, B, D, generator=g, dtype=dtype)
    W = torch.randn(N, D, generator=g, dtype=dtype) * 0.5
    b = torch.randn(N, generator=g, dtype=dtype) * 0.1
    U = torch.randn(N, N, generator=g, dtype=dtype) * 0.3
    s0 = torch.rand(B, N, generator=g, dtype=dtype)
    return [t.requires_grad_() for t in (x, W, b, U, s0)]


@pytest.mark.parametrize("forced", ["short=cpu", "short=cudnn", "short=triton", "triton,short=triton"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_forced_short_backends_agree(monkeypatch, forced, activation):
    """Each forced short-term backend (cudnn on the CPU: torch's own rnn_relu/rnn_tanh) equals
    the loop over ``W x + b``, values and gradients of all five inputs."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    inputs = layer_inputs()
    x, W, b, U, s0 = inputs
    ref = short_rnn_loop(torch.nn.functional.linear(x, W, b), U, s0, activation)
    monkeypatch.setenv("DURNN_BACKEND", forced)
    assert choose_short_backend(x) == forced.split("=")[-1]
    s = short_rnn_recurrence(x, W, b, U, s0, activation)
    assert_near(s, ref, 1e-12, "s")
    g = torch.randn(ref.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    for x_grad, ref_grad in zip(torch.autograd.grad(s, inputs, g), torch.autograd.grad(ref, inputs, g)):
        assert_near(x_grad, ref_grad, 1e-12, forced)


def test_cudnn_backend_runs_bf16_in_fp32(monkeypatch):
    monkeypatch.setenv("DURNN_BACKEND", "short=cudnn")
    x, W, b, U, s0 = (t.detach() for t in layer_inputs())
    s = short_rnn_recurrence(x.bfloat16(), W.bfloat16(), b.bfloat16(), U.bfloat16(), s0.bfloat16())
    ref = short_rnn_loop(torch.nn.functional.linear(x.bfloat16().double(), W.bfloat16().double(),
                                                    b.bfloat16().double()),
                         U.bfloat16().double(), s0.bfloat16().double())
    assert s.dtype == torch.bfloat16
    assert_near(s, ref, TOLS[torch.bfloat16], "s")


def test_auto_and_the_backend_values(monkeypatch):
    """``auto`` keeps its choice (cuDNN on CUDA, the compiled loop on the CPU, also under the
    interpreter); ``short=`` items leave the IndRNN choice alone and vice versa."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    on_cuda = types.SimpleNamespace(shape=(8, 2, 3), dtype=torch.float32,
                                    device=torch.device("cuda"))
    for value in ("", "auto", "triton", "short=auto", "scan, SHORT=AUTO"):
        monkeypatch.setenv("DURNN_BACKEND", value)
        assert choose_short_backend(torch.empty(8, 2, 3)) == "compiled"
        assert choose_short_backend(on_cuda) == "cudnn"
    monkeypatch.setenv("DURNN_BACKEND", "short=triton")
    assert selected_backend() == "auto"
    monkeypatch.setenv("DURNN_BACKEND", "cpu,short=triton")
    assert selected_backend() == "cpu" and choose_short_backend(torch.empty(8, 2, 3)) == "triton"


def test_bad_backend_values_are_one_line(monkeypatch):
    x = torch.empty(3, 2, 4)
    monkeypatch.setenv("DURNN_BACKEND", "short=magic")
    with pytest.raises(ValueError, match=r"^DURNN_BACKEND: 'short=magic' is not a short-term backend "
                                         r"here; allowed: short=auto, short=compiled, short=cpu, "
                                         r"short=cudnn, short=triton$"):
        choose_short_backend(x)
    monkeypatch.setenv("DURNN_BACKEND", "short=cpu,short=triton")
    with pytest.raises(ValueError, match=r"^DURNN_BACKEND='short=cpu,short=triton' names two short "
                                         r"backends; name at most one$"):
        choose_short_backend(x)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setenv("DURNN_BACKEND", "short=triton")
    with pytest.raises(RuntimeError, match=r"^DURNN_BACKEND=short=triton cannot run here: tensors "
                                           r"are on cpu and TRITON_INTERPRET is not set$"):
        choose_short_backend(x)


def test_durnn_layer_uses_the_forced_kernel(monkeypatch):
    """``DuRNNCell`` routes its short-term part through the dispatch: with ``short=triton`` the
    kernel runs (counted) and the layer's output and gradients equal the default (loop) run."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return short_rnn_triton(*args, **kwargs)

    monkeypatch.setattr(dispatch, "short_rnn_triton", counted)
    torch.manual_seed(0)
    cell = DuRNNCell(4, 5, 6, u_bound=1.0).double()
    x = torch.randn(7, 3, 4, dtype=torch.float64)

    def run():
        y, state = cell(x)
        grads = torch.autograd.grad(y.square().sum(), list(cell.parameters()), allow_unused=True)
        return [y, *state] + [g for g in grads if g is not None]

    monkeypatch.setenv("DURNN_BACKEND", "auto")
    ref = run()
    assert not calls
    monkeypatch.setenv("DURNN_BACKEND", "short=triton")
    out = run()
    assert calls
    for i, (a, b) in enumerate(zip(out, ref)):
        assert_near(a, b, 1e-12, f"layer output/state/grad {i}")


# ----------------------------------------------------------------------------- compilation


def test_length_is_not_specialised(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert_length_not_specialised(kernel_module._build_kernels(),
                                  ("BLOCK_B", "NP", "ACC", "PREC", "TANH"))


def compile_kernels(dtype, NP, count=2):
    """The first ``count`` of (forward, backward) compiled for sm_90 (needs the ``aot`` fixture)."""
    import triton.language as tl

    p = "*" + dtype
    runtime = {"T": "i32", "B": "i32", "N": "i32", "BLOCK_B": "constexpr", "NP": "constexpr",
               "ACC": "constexpr", "PREC": "constexpr", "TANH": "constexpr"}
    fwd, bwd = kernel_module._build_kernels()
    signatures = [(fwd, {"p_ptr": p, "u_ptr": p, "s0_ptr": p, "s_ptr": p, **runtime}),
                  (bwd, {"g_ptr": p, "s_ptr": p, "u_ptr": p, "dp_ptr": p, **runtime})]
    constexprs = {"BLOCK_B": 16, "NP": NP, "ACC": tl.float64 if dtype == "fp64" else tl.float32,
                  "PREC": "ieee" if dtype == "fp64" else "tf32", "TANH": False}
    return [compile_for_sm90(kernel, signature, constexprs, kernel_module.NUM_WARPS)
            for kernel, signature in signatures[:count]]


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16", "fp64"])
def test_kernels_compile_for_sm90_without_a_gpu(aot, dtype):
    """Both kernels compile in every dtype, and the per-step product runs on the matrix units
    (mma), not on scalar FMAs."""
    for kernel in compile_kernels(dtype, 32):
        assert "mma" in kernel.asm["ptx"]


def test_bf16_state_matrix_of_the_default_layer_fits_an_h100(aot):
    """``U`` stays in shared memory: at the DuRNN layer's ``N_s = 256`` in bf16 it must fit the
    227 KiB an H100 program can have (read from the compiled forward kernel, not estimated; the
    backward holds the same matrix)."""
    (fwd,) = compile_kernels("bf16", 256, count=1)
    assert fwd.metadata.shared <= 227 * 1024
