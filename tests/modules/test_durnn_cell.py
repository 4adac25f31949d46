"""DuRNN module: equations of the model (docs/model.md, section 2), gradients, and its hard constraints."""
import itertools

import pytest
import torch

from durnn_plugin.modules import DuRNNCell, IndRNNCell
from durnn_plugin.modules import RecurrentStack, StackOptions
from durnn_plugin.modules.constraints import clamp_recurrent, spectral_norm, spectral_project_


def by_hand(cell: DuRNNCell, x, s0, h0):
    """A per-step loop written straight from the DuRNN equations (docs/model.md). ``U_s`` enters
    as stored: the optimiser's steps keep it inside its bound, not the forward."""
    U = cell.U_s
    u = cell.u.clamp(-cell.u_bound, cell.u_bound)
    phi = torch.relu if cell.short_activation == "relu" else torch.tanh
    Ns = cell.W_s.shape[0]
    s, h, outs = s0, h0, []
    for t in range(x.shape[0]):
        s = phi(x[t] @ cell.W_s.T + s @ U.T + cell.b_s)
        if cell.selection == "none":
            g = torch.ones_like(s)
        else:
            pre = cell.b_g.expand_as(s)
            if "input" in cell.selection:
                pre = pre + x[t] @ cell.W_x[:Ns].T
            if "short" in cell.selection:
                pre = pre + s @ cell.V_g.T
            g = torch.sigmoid(pre)
        a = (g * s) @ cell.W_l.T + cell.b_l
        if cell.long_input == "selected+input":
            a = a + x[t] @ cell.W_x[cell.x_sizes[0]:].T
        h = torch.relu(a + u * h)
        outs.append(torch.cat([s, h], -1) if cell.module_output == "concat" else h)
    return torch.stack(outs), s, h


SWITCHES = list(itertools.product(["input+short", "short", "input", "none"],
                                  ["selected", "selected+input"], ["concat", "long"],
                                  ["relu", "tanh"]))


@pytest.mark.parametrize("selection,long_input,module_output,act", SWITCHES)
def test_cell_follows_spec(selection, long_input, module_output, act):
    torch.manual_seed(0)
    cell = DuRNNCell(4, 3, 5, u_bound=1.2, short_rho=0.7, short_activation=act,
                     selection=selection, long_input=long_input, module_output=module_output)
    with torch.no_grad():
        cell.b_g.add_(0.3) if cell.b_g is not None else None
    x = torch.randn(6, 2, 4)
    s0, h0 = torch.rand(1, 2, 3), torch.rand(1, 2, 5)
    y, (s, h) = cell(x, (s0, h0))
    y_ref, s_ref, h_ref = by_hand(cell, x, s0[0], h0[0])
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s[0], s_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h[0], h_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("selection", ["input+short", "none"])
def test_cell_gradcheck_fp64(selection):
    torch.manual_seed(1)
    cell = DuRNNCell(3, 2, 3, u_bound=1.1, selection=selection,
                     long_input="selected+input").double()
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    s0 = torch.rand(1, 2, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.rand(1, 2, 3, dtype=torch.float64, requires_grad=True)
    names = [n for n, _ in cell.named_parameters()]

    def run(x, s0, h0, *weights):
        return torch.func.functional_call(cell, dict(zip(names, weights)), (x, (s0, h0)))[0]

    weights = tuple(p.detach().clone().requires_grad_() for p in cell.parameters())
    assert torch.autograd.gradcheck(run, (x, s0, h0) + weights)


def test_constraints_hold_after_every_optimiser_step():
    """A stack's constrained weights are projected right after each step of a plain torch
    optimizer over them (the step alone would leave both sets)."""
    torch.manual_seed(2)
    stack = RecurrentStack(StackOptions(num_layers=1, hidden_size=12, short_size=6, norm="none",
                                        u_gamma=2.0, u_time_steps=10, short_rho=0.8), 4)
    cell = stack.layer_cells()["l0"]
    opt = torch.optim.SGD(stack.parameters(), lr=0.5)
    for _ in range(3):
        y, _ = stack(torch.randn(8, 3, 4))
        (-y.mean() - cell.u.sum() - cell.U_s.sum()).backward()  # pushes both weights up
        opt.step()
        opt.zero_grad()
        assert spectral_norm(cell.U_s).item() == pytest.approx(0.8, rel=1e-5)  # on the bound
        assert cell.u.abs().max().item() == pytest.approx(2.0 ** (1 / 10))
    assert stack.statistics()["l0_us_norm"].item() == pytest.approx(0.8, rel=1e-5)


def test_projection_is_identity_inside_the_bound():
    cell = DuRNNCell(4, 5, 5, u_bound=1.0, short_rho=0.9)
    U, u = cell.U_s.detach().clone(), cell.u.detach().clone()
    assert spectral_norm(U) <= 0.9 * (1 + 1e-6)
    cell.project_constraints_()
    torch.testing.assert_close(cell.U_s.detach(), U)
    torch.testing.assert_close(cell.u.detach(), u)


@pytest.mark.parametrize("size", [4, 16, 64])
def test_spectral_projection_is_idempotent(size):
    """A projected matrix projects to itself bit for bit (so weights loaded from a checkpoint,
    projected once on load, equal the saved ones and a resumed run is exact)."""
    torch.manual_seed(size)
    once = torch.randn(size, size)
    spectral_project_(once, 0.9)
    assert spectral_norm(once) <= 0.9 * (1 + 1e-5)
    twice = once.clone()
    spectral_project_(twice, 0.9)
    assert torch.equal(twice, once)


def test_indrnn_cell_init_and_bound():
    torch.manual_seed(3)
    cell = IndRNNCell(4, 1000, u_bound=2 ** (1 / 100), u_init_low=0.5 ** (1 / 100))
    assert cell.u.min() >= 0.5 ** (1 / 100) and cell.u.max() <= 2 ** (1 / 100)
    with torch.no_grad():
        cell.u.mul_(3)
    cell.project_constraints_()
    assert cell.u.abs().max().item() == pytest.approx(2 ** (1 / 100))
    assert cell.u.min() >= 0.5 ** (1 / 100)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.bfloat16, 5e-2)])
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_cuda_cell_equals_cpu_fp64(dtype, tol, act, monkeypatch):
    """The CUDA path (cuDNN short-term part, bf16 run in fp32; Triton long-term part) against the
    CPU path in fp64: outputs, last states and gradients, with state in and odd T. TF32 off: by
    default cuDNN's fp32 RNN rounds its products to TF32 (about 1e-3 relative)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    torch.manual_seed(0)
    ref = DuRNNCell(6, 4, 8, u_bound=1.0, short_rho=0.9, short_activation=act).double()
    cell = DuRNNCell(6, 4, 8, u_bound=1.0, short_rho=0.9, short_activation=act)
    cell.load_state_dict(ref.state_dict())
    cell = cell.cuda().to(dtype)
    x, s0, h0 = torch.randn(13, 3, 6), torch.rand(1, 3, 4), torch.rand(1, 3, 8)
    y_ref, (s_ref, h_ref) = ref(x.double(), (s0.double(), h0.double()))
    y, (s, h) = cell(x.cuda().to(dtype), (s0.cuda().to(dtype), h0.cuda().to(dtype)))
    assert y.dtype == dtype and s.dtype == dtype and h.dtype == dtype
    for got, want in [(y, y_ref), (s, s_ref), (h, h_ref)]:
        assert (got.double().cpu() - want).abs().max() <= tol * (1 + want.abs().max())
    (y_ref * y_ref.detach()).sum().backward()
    (y * y_ref.detach().cuda().to(dtype)).sum().backward()
    for (name, p_ref), p in zip(ref.named_parameters(), cell.parameters()):
        g, g_ref = p.grad.double().cpu(), p_ref.grad
        assert (g - g_ref).abs().max() <= 2 * tol * (1 + g_ref.abs().max()), name


def test_clamp_recurrent_floor_is_a_positive_interval_with_gradients_inside_it():
    u = torch.tensor([-2.0, -0.5, 0.0, 0.05, 0.5, 2.0], requires_grad=True)
    assert torch.equal(clamp_recurrent(u, 1.0), torch.tensor([-1.0, -0.5, 0.0, 0.05, 0.5, 1.0]))
    out = clamp_recurrent(u, 1.0, 0.1)
    assert torch.equal(out, torch.tensor([0.1, 0.1, 0.1, 0.1, 0.5, 1.0]))
    out.sum().backward()
    assert torch.equal(u.grad, torch.tensor([0.0, 0, 0, 0, 1, 0]))
    assert torch.equal(clamp_recurrent(out, 1.0, 0.1), out)  # idempotent, as projections must be
