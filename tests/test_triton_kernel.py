"""The sequential Triton recurrence (``indrnn_triton``: the scan kernels with one chunk) and its
pipelined variant (``indrnn_triton_pipelined``: loads issued several steps ahead) against
``indrnn_reference``: values and gradients (a, u, h0), dtypes, odd T, T = 1, dilation, the default
launch configuration, unwritten-element detection. State in/out, no specialisation on T and
compilation for sm_90 are tested here for the pipelined kernels and with the scan
(``test_triton_scan.py``) for the others.

On CPU the kernels run through Triton's interpreter: ``TRITON_INTERPRET`` is read by triton when a
kernel is decorated, and the ops decorate their kernels lazily, once per mode, so setting the
variable per test (``monkeypatch``) works even when triton was imported earlier in the same
pytest process. On a machine with CUDA the same cases also run compiled (interpreter off).
Skipped as a whole when triton is not installed.
"""
import pytest
import torch

pytest.importorskip("triton")

import importlib  # noqa: E402

from durnn_plugin.ops import indrnn_reference, indrnn_triton  # noqa: E402
from triton_cases import (  # noqa: E402,F401  (device: the fixture)
    DEVICES, TOLS, assert_near, device, make_inputs,
)

pipelined_module = importlib.import_module("durnn_plugin.ops.indrnn_triton_pipelined")
indrnn_triton_pipelined = pipelined_module.indrnn_triton_pipelined
KERNELS = [indrnn_triton, indrnn_triton_pipelined]
CASES = [(1, 1), (2, 1), (7, 1), (13, 1), (1, 3), (2, 3), (7, 3), (9, 3), (8, 2), (5, 2)]


def check_against_reference(T, d, dtype, device, block=None, kernel=indrnn_triton):
    a, u, h0 = make_inputs(T, d, dtype, device)
    h = kernel(a, u, h0, d, block=block)
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
@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_equals_reference(device, T, d, dtype, kernel):
    # block=4 columns per program: 15*d columns give several programs and a ragged last block
    check_against_reference(T, d, dtype, device, block=4, kernel=kernel)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("T,d", [(1, 1), (13, 1), (9, 3), (8, 2)])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_low_precision(device, T, d, dtype, kernel):
    check_against_reference(T, d, dtype, device, block=16, kernel=kernel)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("kernel", KERNELS)
def test_default_launch_config_and_many_columns(device, kernel):
    g = torch.Generator().manual_seed(3)
    a = torch.randn(6, 4, 150, generator=g).to(device).requires_grad_()  # 600 columns
    u = (torch.rand(150, generator=g) * 2 - 1).to(device).requires_grad_()
    h = kernel(a, u)
    ref_in = [a.detach().cpu().double().requires_grad_(), u.detach().cpu().double().requires_grad_()]
    ref = indrnn_reference(*ref_in)
    assert_near(h, ref, 1e-5, "h")
    gh = torch.randn(ref.shape, generator=g)
    for name, x, y in zip("au", torch.autograd.grad(h, (a, u), gh.to(device)),
                          torch.autograd.grad(ref, ref_in, gh.double())):
        assert_near(x, y, 1e-5, f"grad {name}")


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("kernel", KERNELS)
def test_default_state_and_mixed_parameter_dtype(device, kernel):
    """h0=None means zeros; a bf16 input with an fp32 u (autocast-style) gives bf16 out, fp32 ∂u."""
    a, u, _ = make_inputs(5, 1, torch.float32, device)
    h = kernel(a.detach().bfloat16().requires_grad_(), u)
    assert h.dtype == torch.bfloat16
    ref = indrnn_reference(a.detach().bfloat16().double(), u.detach().double())
    assert_near(h, ref, TOLS[torch.bfloat16], "h")
    (gu,) = torch.autograd.grad(h.float().sum(), (u,))
    assert gu.dtype == torch.float32 and torch.isfinite(gu).all()


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_pipelined_state_in_and_out(device):
    """Two pipelined calls chained through the last d states (4 + 7 steps, d = 2) equal one call
    over 11 steps, in values and in the gradients through the carried state."""
    a, u, h0 = make_inputs(11, 2, torch.float64, device)
    whole = indrnn_triton_pipelined(a, u, h0, 2, block=4)
    first = indrnn_triton_pipelined(a[:4], u, h0, 2, block=4)
    second = indrnn_triton_pipelined(a[4:], u, first[-2:], 2, block=4)
    chained = torch.cat([first, second])
    assert_near(chained, whole, 1e-12, "chained h")
    g = torch.randn(whole.shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    for name, x, y in zip("a u h0".split(), torch.autograd.grad(chained, (a, u, h0), g.to(device)),
                          torch.autograd.grad(whole, (a, u, h0), g.to(device))):
        assert_near(x, y, 1e-12, f"chained grad {name}")


def test_pipelined_length_is_not_specialised(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    for kernel in pipelined_module._build_kernels():
        params = {p.name: p for p in kernel.params}
        assert params["T"].do_not_specialize and not params["T"].is_constexpr
        assert all(params[c].is_constexpr for c in ("BLOCK", "ACC", "STAGES"))


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16", "fp64"])
def test_pipelined_kernels_prefetch_on_sm90(monkeypatch, tmp_path, dtype):
    """Compiled ahead of time for an H100 (sm_90, triton's bundled ptxas, no GPU) with the column
    count a multiple of 16 (as triton specialises it at launch): both time loops load through
    asynchronous 16-byte copies into shared memory (``cp.async.cg``), i.e. several steps ahead."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))
    import triton
    import triton.language as tl

    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError:
        pytest.skip("this triton has no ahead-of-time compile API")
    p, acc = "*" + dtype, "*fp64" if dtype == "fp64" else "*fp32"
    runtime = {"T": "i32", "C": "i32", "N": "i32", "BLOCK": "constexpr", "ACC": "constexpr",
               "STAGES": "constexpr"}
    fwd, bwd = pipelined_module._build_kernels()
    signatures = [(fwd, {"a_ptr": p, "u_ptr": "*fp32", "h0_ptr": p, "h_ptr": p, **runtime}),
                  (bwd, {"g_ptr": p, "h_ptr": p, "u_ptr": "*fp32", "h0_ptr": p, "da_ptr": p,
                         "dh0_ptr": p, "du_ptr": acc, **runtime})]
    constexprs = {"BLOCK": 512, "ACC": tl.float64 if dtype == "fp64" else tl.float32,
                  "STAGES": pipelined_module.DEFAULT_STAGES}
    for kernel, signature in signatures:
        aligned = {(i,): [["tt.divisibility", 16]] for i, name in enumerate(signature)
                   if name.endswith("_ptr") or name in ("C", "N")}
        source = ASTSource(kernel, signature, constexprs=constexprs, attrs=aligned)
        try:
            compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32),
                                      options={"num_warps": 2})
        except FileNotFoundError as e:  # no ptxas in this triton install
            pytest.skip(f"cannot compile for sm_90 here: {e}")
        assert "cp.async.cg.shared.global" in compiled.asm["ptx"], kernel.fn.__name__
