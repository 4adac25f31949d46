"""The sequential Triton recurrence (``indrnn_triton``: the scan kernels with one chunk) against
``indrnn_reference``: values and gradients (a, u, h0), dtypes, odd T, T = 1, dilation, the default
launch configuration, unwritten-element detection. State in/out, no specialisation on T and
compilation for sm_90 are tested with the scan (``test_triton_scan.py``).

On CPU the kernels run through Triton's interpreter: ``TRITON_INTERPRET`` is read by triton when a
kernel is decorated, and ``indrnn_triton`` decorates its kernels lazily, once per mode, so setting
the variable per test (``monkeypatch``) works even when triton was imported earlier in the same
pytest process. On a machine with CUDA the same cases also run compiled (interpreter off).
Skipped as a whole when triton is not installed.
"""
import pytest
import torch

pytest.importorskip("triton")

from durnn_plugin.ops import indrnn_reference, indrnn_triton  # noqa: E402
from triton_cases import (  # noqa: E402,F401  (device: the fixture)
    DEVICES, TOLS, assert_near, device, make_inputs,
)

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
def test_default_state_and_mixed_parameter_dtype(device):
    """h0=None means zeros; a bf16 input with an fp32 u (autocast-style) gives bf16 out, fp32 ∂u."""
    a, u, _ = make_inputs(5, 1, torch.float32, device)
    h = indrnn_triton(a.detach().bfloat16().requires_grad_(), u)
    assert h.dtype == torch.bfloat16
    ref = indrnn_reference(a.detach().bfloat16().double(), u.detach().double())
    assert_near(h, ref, TOLS[torch.bfloat16], "h")
    (gu,) = torch.autograd.grad(h.float().sum(), (u,))
    assert gu.dtype == torch.float32 and torch.isfinite(gu).all()
