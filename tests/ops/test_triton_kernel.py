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
from triton_cases import (  # noqa: E402
    DEVICES, TOLS, assert_length_not_specialised, assert_matches_reference, assert_near,
    assert_state_carries, compile_for_sm90, make_inputs,
)

pipelined_module = importlib.import_module("durnn_plugin.ops.indrnn_triton_pipelined")
indrnn_triton_pipelined = pipelined_module.indrnn_triton_pipelined
KERNELS = [indrnn_triton, indrnn_triton_pipelined]
CASES = [(1, 1), (2, 1), (7, 1), (13, 1), (1, 3), (2, 3), (7, 3), (9, 3), (8, 2), (5, 2)]


def check_against_reference(T, d, dtype, device, block=None, kernel=indrnn_triton):
    a, u, h0 = make_inputs(T, d, dtype, device)
    h = kernel(a, u, h0, d, block=block)
    assert h.dtype == dtype and h.device.type == device
    assert_matches_reference(h, (a, u, h0), lambda *x: indrnn_reference(*x, d), TOLS[dtype],
                             ("a", "u", "h0"), loose=("u",))


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
    """4 + 7 steps chained through the last d = 2 states equal 11 steps, values and gradients."""
    a, u, h0 = make_inputs(11, 2, torch.float64, device)
    assert_state_carries(lambda x, state: indrnn_triton_pipelined(x, u, state, 2, block=4), a, h0,
                         (a, u, h0), 4, lambda first: first[-2:])


def test_pipelined_length_is_not_specialised(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert_length_not_specialised(pipelined_module._build_kernels(), ("BLOCK", "ACC", "STAGES"))


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16", "fp64"])
def test_pipelined_kernels_prefetch_on_sm90(aot, dtype):
    """Compiled for an H100 (sm_90, no GPU) with the column count a multiple of 16 (as triton
    specialises it at launch): both time loops load through asynchronous 16-byte copies into
    shared memory (``cp.async.cg``), i.e. several steps ahead."""
    import triton.language as tl

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
        aligned = [name for name in signature if name.endswith("_ptr") or name in ("C", "N")]
        compiled = compile_for_sm90(kernel, signature, constexprs, 2, aligned)
        assert "cp.async.cg.shared.global" in compiled.asm["ptx"], kernel.fn.__name__
