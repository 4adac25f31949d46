"""Shared pieces of the Triton kernel tests (``test_triton_kernel.py``, ``test_triton_scan.py``):
the ``device`` fixture (interpreter on CPU, or CUDA; outputs pre-filled with NaN), inputs, and
the dtype-tiered comparison with the reference."""
import importlib

import pytest
import torch

support_module = importlib.import_module("durnn_plugin.ops.triton_support")

DEVICES = ["interpreter", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]
# tolerance relative to the reference's scale: max|x - ref| <= tol * (1 + max|ref|)
TOLS = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}


@pytest.fixture
def device(request, monkeypatch):
    monkeypatch.setattr(support_module, "DEBUG_FILL", float("nan"))  # unwritten elements -> NaN
    if request.param == "interpreter":
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        return "cpu"
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    return "cuda"


def make_inputs(T, d, dtype, device, B=3, N=5, seed=0, u_range=(-1.1, 1.1)):
    """a ``(T, B, N)``, u ``(N,)`` uniform in ``u_range`` (default: both signs, |u| up to 1.1),
    h0 ``(d, B, N)``; all requiring grad."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(T, B, N, generator=g)
    lo, hi = u_range
    u = torch.rand(N, generator=g) * (hi - lo) + lo
    h0 = torch.rand(d, B, N, generator=g)
    return [x.to(dtype).to(device).requires_grad_() for x in (a, u, h0)]


def assert_near(x, ref, tol, what):
    x, ref = x.detach().double().cpu(), ref.detach().double().cpu()
    assert x.shape == ref.shape, what
    assert torch.isfinite(x).all(), f"{what}: non-finite (unwritten?) elements"
    err = (x - ref).abs().max().item() if x.numel() else 0.0
    bound = tol * (1 + ref.abs().max().item()) if x.numel() else 0.0
    assert err <= bound, f"{what}: max error {err:.3g} > {bound:.3g}"
