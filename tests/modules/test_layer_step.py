"""The compiled decoding step of a stack layer (modules/layer_step.py) equals the stack's full
forward token by token, for every cell option it covers, and runs only where it applies."""
import pytest
import torch

from durnn_plugin.modules import layer_step
from durnn_plugin.modules.stack import RecurrentStack
from durnn_plugin.modules.stack_options import StackOptions

VARIANTS = [
    dict(cell="durnn"),
    dict(cell="durnn", selection="short", short_activation="tanh"),
    dict(cell="durnn", selection="input", long_input="selected+input", module_output="long"),
    dict(cell="durnn", selection="none", norm="none"),
    dict(cell="durnn", no_residual=True),
    dict(cell="indrnn"),
    dict(cell="indrnn", norm="none", no_residual=True),
]


def decode_token_by_token(stack, x):
    """Outputs ``(T, B, N)`` and the final state of ``stack`` fed one step at a time."""
    state, outputs = None, []
    for t in range(x.shape[0]):
        y, state = stack(x[t:t + 1], None, state)
        outputs.append(y)
    return torch.cat(outputs), state


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("options", VARIANTS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_the_step_equals_the_full_forward_token_by_token(options, dtype, monkeypatch):
    monkeypatch.delenv("DURNN_BACKEND", raising=False)
    torch.manual_seed(0)
    stack = RecurrentStack(StackOptions(num_layers=2, hidden_size=12, **options), 5)
    stack = stack.to(dtype).eval()
    with torch.no_grad():  # biases and norm weights start at 0 and 1: move every parameter
        for parameter in stack.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    x = torch.randn(9, 3, 5, dtype=dtype)
    stepped_calls = []

    def counting_step(*args):
        result = layer_step.compiled_step(*args)
        stepped_calls.append(result is not None)
        return result

    monkeypatch.setattr("durnn_plugin.modules.stack.compiled_step", counting_step)
    with torch.no_grad():
        full, full_state = stack(x)
        stepped, step_state = decode_token_by_token(stack, x)
        assert layer_step.step_applies(stack.directions[0][0], x[:1], None)
    assert stepped_calls == [False] * 2 + [True] * 2 * 9  # the full forward, then every token
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(stepped, full, **tol)
    for got, expected in zip(step_state, full_state):
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, **tol)


def test_the_step_follows_changed_weights(monkeypatch):
    """Weights changed in place through ``.data`` (as fairseq's optimisers write them, with no
    version bump) are what the next step reads."""
    monkeypatch.delenv("DURNN_BACKEND", raising=False)
    torch.manual_seed(1)
    stack = RecurrentStack(StackOptions(num_layers=1, hidden_size=8), 4).eval()
    x = torch.randn(1, 2, 4)
    with torch.no_grad():
        stack(x)
        cell = stack.directions[0][0].cell
        for weight in (cell.W_s, cell.W_x, cell.U_s, cell.W_l, cell.u):
            weight.data.mul_(-0.5)
        stepped = stack(x)[0]
        monkeypatch.setenv("DURNN_BACKEND", "cpu,short=cpu")
        torch.testing.assert_close(stepped, stack(x)[0])


@pytest.mark.parametrize("case", ["grad", "two steps", "padding", "backend", "dilation",
                                  "batch norm", "bf16", "trace"])
def test_the_step_does_not_apply(case, monkeypatch):
    monkeypatch.delenv("DURNN_BACKEND", raising=False)
    opts = dict(num_layers=1, hidden_size=8)
    opts.update({"dilation": dict(dilations="2"), "batch norm": dict(norm="batch")}.get(case, {}))
    stack = RecurrentStack(StackOptions(**opts), 4).eval()
    layer = stack.directions[0][0]
    x = torch.randn(2 if case == "two steps" else 1, 3, 4)
    lengths = torch.tensor([1, 1, 0]) if case == "padding" else None
    if case == "backend":
        monkeypatch.setenv("DURNN_BACKEND", "short=cpu")
    if case == "bf16":
        stack, x = stack.bfloat16(), x.bfloat16()
    if case == "trace":
        layer.cell.trace = {}
    with torch.set_grad_enabled(case == "grad"):
        assert not layer_step.step_applies(layer, x, lengths)
