"""Shared pieces of the Triton kernel tests (``test_triton_kernel.py``, ``test_triton_scan.py``,
``test_short_rnn_triton.py``): the devices to run on (the ``device`` fixture of ``conftest.py``:
interpreter on CPU, or CUDA; outputs pre-filled with NaN), inputs, the dtype-tiered comparison
with the reference, and compilation for sm_90 without a GPU (:func:`compile_for_sm90`, with the
``aot`` fixture of ``conftest.py``)."""
import pytest
import torch

DEVICES = ["interpreter", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device")])]
# tolerance relative to the reference's scale: max|x - ref| <= tol * (1 + max|ref|)
TOLS = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}


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


def assert_matches_reference(out, inputs, reference, tol, names, loose):
    """``out`` (computed from ``inputs``) against ``reference`` run in fp64 on the CPU on the same
    (rounded) inputs: the values, and the gradients of all inputs for one random output gradient
    in the inputs' dtype; the gradients named in ``loose`` (sums over all positions) get 10x
    ``tol``."""
    ref_in = [x.detach().double().cpu().requires_grad_() for x in inputs]
    ref = reference(*ref_in)
    assert_near(out, ref, tol, "output")
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grads = torch.autograd.grad(out, inputs, grad.to(out.dtype).to(out.device))
    ref_grads = torch.autograd.grad(ref, ref_in, grad.to(out.dtype).double())
    for name, x, y in zip(names, grads, ref_grads):
        assert x.dtype == out.dtype
        assert_near(x, y, tol * (10 if name in loose else 1), f"grad {name}")


def assert_state_carries(run, x, state, leaves, split, carried):
    """Two calls chained through the state, ``run(x[:split], state)`` then ``run(x[split:],
    carried(first))``, equal one call ``run(x, state)`` (fp64) in values and in the gradients of
    ``leaves`` that flow back through the carried state."""
    whole = run(x, state)
    first = run(x[:split], state)
    chained = torch.cat([first, run(x[split:], carried(first))])
    assert_near(chained, whole, 1e-12, "chained output")
    g = torch.randn(whole.shape, generator=torch.Generator().manual_seed(8),
                    dtype=whole.dtype).to(whole.device)
    for i, (a, b) in enumerate(zip(torch.autograd.grad(chained, leaves, g),
                                   torch.autograd.grad(whole, leaves, g))):
        assert_near(a, b, 1e-12, f"chained grad {i}")


def assert_length_not_specialised(kernels, constexprs):
    """``T`` is a runtime argument (``do_not_specialize``: no recompilation per length) and the
    named launch parameters are constexprs, in every kernel."""
    for kernel in kernels:
        params = {p.name: p for p in kernel.params}
        assert params["T"].do_not_specialize and not params["T"].is_constexpr
        assert all(params[c].is_constexpr for c in constexprs)


def compile_for_sm90(kernel, signature, constexprs, num_warps, aligned=()):
    """``kernel`` compiled ahead of time for an H100 (sm_90) with triton's bundled ptxas, no GPU
    needed (use with the ``aot`` fixture): the interpreter does not type-check like the compiler.
    ``aligned`` names arguments declared multiples of 16, as triton specialises them at launch.
    Skips the test where this triton cannot compile ahead of time."""
    import triton

    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError:
        pytest.skip("this triton has no ahead-of-time compile API")
    attrs = {(i,): [["tt.divisibility", 16]] for i, name in enumerate(signature) if name in aligned}
    source = ASTSource(kernel, signature, constexprs=constexprs, attrs=attrs)
    try:
        return triton.compile(source, target=GPUTarget("cuda", 90, 32),
                              options={"num_warps": num_warps})
    except FileNotFoundError as e:  # no ptxas in this triton install
        pytest.skip(f"cannot compile for sm_90 here: {e}")
