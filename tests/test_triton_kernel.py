"""Triton IndRNN kernels against ``indrnn_reference``: values and gradients (a, u, h0), dtypes,
odd T, T = 1, dilation, state in/out, unwritten-element detection.

On CPU the kernels run through Triton's interpreter: ``TRITON_INTERPRET`` is read by triton when a
kernel is decorated, and ``indrnn_triton`` decorates its kernels lazily, once per mode, so setting
the variable per test (``monkeypatch``) works even when triton was imported earlier in the same
pytest process. On a machine with CUDA the same cases also run compiled (interpreter off).
Skipped as a whole when triton is not installed.
"""
import pytest
import torch

pytest.importorskip("triton")

from durnn_plugin.ops import indrnn_reference, last_states  # noqa: E402
from triton_cases import (  # noqa: E402,F401  (device: the fixture)
    DEVICES, TOLS, assert_near, device, kernel_module, make_inputs,
)

indrnn_triton = kernel_module.indrnn_triton

CASES = [(1, 1), (2, 1), (7, 1), (13, 1), (1, 3), (2, 3), (7, 3), (9, 3), (8, 2), (5, 2)]


def check_against_reference(T, d, dtype, device, block=None):
    a, u, h0 = make_inputs(T, d, dtype, device)
    h = indrnn_triton(a, u, h0, d, block=block)
    assert h.dtype == dtype and h.device.type == device
    # ground truth in fp64 on the same (rounded) inputs
    ref_in = [x.detach().double().cpu().requires_grad_() for x in (a, u, h0)]
    ref = indrnn_reference(*ref_in, d)
    tol = TOLS[dtype]
    assert_near(h, ref, tol, "h")
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grads = torch.autograd.grad(h, (a, u, h0), grad.to(dtype).to(device))
    ref_grads = torch.autograd.grad(ref, ref_in, grad.to(dtype).double())
    for name, x, y in zip(("a", "u", "h0"), grads, ref_grads):
        assert x.dtype == dtype
        assert_near(x, y, tol * (10 if name == "u" else 1), f"grad {name}")


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("T,d", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_equals_reference(device, T, d, dtype):
    # block=4 columns per program: 15*d columns give several programs and a ragged last block
    check_against_reference(T, d, dtype, device, block=4)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("T,d", [(1, 1), (13, 1), (9, 3), (8, 2)])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_kernel_low_precision(device, T, d, dtype):
    check_against_reference(T, d, dtype, device, block=16)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_default_launch_config_and_many_columns(device):
    g = torch.Generator().manual_seed(3)
    a = torch.randn(6, 4, 150, generator=g).to(device).requires_grad_()  # 600 columns
    u = (torch.rand(150, generator=g) * 2 - 1).to(device).requires_grad_()
    h = indrnn_triton(a, u)
    ref_in = [a.detach().cpu().double().requires_grad_(), u.detach().cpu().double().requires_grad_()]
    ref = indrnn_reference(*ref_in)
    assert_near(h, ref, 1e-5, "h")
    gh = torch.randn(ref.shape, generator=g)
    for name, x, y in zip("au", torch.autograd.grad(h, (a, u), gh.to(device)),
                          torch.autograd.grad(ref, ref_in, gh.double())):
        assert_near(x, y, 1e-5, f"grad {name}")


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_state_in_out_splits_a_sequence(device, d):
    a, u, h0 = make_inputs(11, d, torch.float32, device)
    full = indrnn_triton(a, u, h0, d, block=8)
    first = indrnn_triton(a[:4], u, h0, d, block=8)
    second = indrnn_triton(a[4:], u, last_states(h0, first, None), d, block=8)
    torch.testing.assert_close(torch.cat([first, second]), full, atol=1e-6, rtol=1e-6)
    ref = indrnn_reference(a.detach().double(), u.detach().double(), h0.detach().double(), d)
    assert_near(last_states(h0, full, None), ref[-d:], 1e-5, "final state")


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_default_state_and_mixed_parameter_dtype(device):
    """h0=None means zeros; a bf16 input with an fp32 u (autocast-style) gives bf16 out, fp32 ∂u."""
    a, u, _ = make_inputs(5, 1, torch.float32, device)
    h = indrnn_triton(a.detach().bfloat16().requires_grad_(), u)
    assert h.dtype == torch.bfloat16
    ref = indrnn_reference(a.detach().bfloat16().double(), u.detach().double())
    assert_near(h, ref, TOLS[torch.bfloat16], "h")
    (gu,) = torch.autograd.grad(h.float().sum(), (u,))
    assert gu.dtype == torch.float32 and torch.isfinite(gu).all()


def test_sequence_length_is_not_specialised(monkeypatch):
    """T is a runtime argument with ``do_not_specialize``: varying lengths never recompile.
    Decorating in compiled mode compiles nothing, so this runs without a GPU."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    for kernel in kernel_module._build_kernels():
        params = {p.name: p for p in kernel.params}
        assert params["T"].do_not_specialize
        assert not params["T"].is_constexpr
        assert params["BLOCK"].is_constexpr


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16", "fp64"])
def test_kernels_compile_for_sm90_without_a_gpu(monkeypatch, tmp_path, dtype):
    """The interpreter does not type-check like the compiler does: compile both kernels ahead of
    time for an H100 (sm_90) target, which needs triton's bundled ptxas but no GPU."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))
    import triton
    import triton.language as tl

    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError:
        pytest.skip("this triton has no ahead-of-time compile API")
    fwd, bwd = kernel_module._build_kernels()
    acc = tl.float64 if dtype == "fp64" else tl.float32
    p, f32 = "*" + dtype, "*fp32"
    ints = {"T": "i32", "C": "i32", "N": "i32", "BLOCK": "constexpr", "ACC": "constexpr"}
    signatures = [
        (fwd, {"a_ptr": p, "u_ptr": f32, "h0_ptr": p, "h_ptr": p, **ints}),
        (bwd, {"g_ptr": p, "h_ptr": p, "u_ptr": f32, "h0_ptr": p, "da_ptr": p, "dh0_ptr": p,
               "du_ptr": "*fp64" if dtype == "fp64" else f32, **ints}),
    ]
    for kernel, signature in signatures:
        source = ASTSource(kernel, signature, constexprs={"BLOCK": 128, "ACC": acc})
        try:
            compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 2})
        except FileNotFoundError as e:  # no ptxas in this triton install
            pytest.skip(f"cannot compile for sm_90 here: {e}")
        assert "ld.global" in compiled.asm["ptx"]
