"""Stacks: padding semantics, state carrying, dilation, bidirectional, option checks."""
import pytest
import torch

from durnn_plugin.modules import InvalidOptionError, RecurrentStack, StackOptions
from durnn_plugin.ops import indrnn_reference

CONFIGS = [
    dict(cell="durnn"),
    dict(cell="durnn", dilations="1,3", norm="batch"),
    dict(cell="durnn", bidirectional=True, selection="none", module_output="long"),
    dict(cell="indrnn", norm="batch", dilation_base=2),
    dict(cell="indrnn", bidirectional=True, no_residual=True, norm="none"),
    dict(cell="lstm", dilations="2,1"),
    dict(cell="gru", bidirectional=True),
]


def build(seed=0, **kw):
    torch.manual_seed(seed)
    opts = dict(num_layers=2, hidden_size=12, short_size=4, layer_dropout=0.0, u_time_steps=10)
    opts.update(kw)
    return RecurrentStack(StackOptions(**opts), 5)


def valid_mask(lengths, T):
    return (torch.arange(T)[:, None] < lengths[None]).unsqueeze(-1)


@pytest.mark.parametrize("kw", CONFIGS)
@pytest.mark.parametrize("training", [False, True])
def test_padding_never_changes_valid_outputs_or_final_state(kw, training):
    stack = build(**kw).train(training)
    lengths = torch.tensor([7, 3, 1, 6])
    x = torch.randn(7, 4, 5)
    x = torch.where(valid_mask(lengths, 7), x, torch.randn(7, 4, 5) * 100)  # garbage padding
    y, state = stack(x, lengths)
    x_more = torch.cat([x, torch.randn(4, 4, 5) * 100])  # more padding, other garbage
    y_more, state_more = stack(x_more, lengths)
    m = valid_mask(lengths, 7)
    torch.testing.assert_close(y * m, y_more[:7] * m, atol=1e-5, rtol=1e-5)
    for a, b in zip(state, state_more):
        for s, t in zip(a, b):
            torch.testing.assert_close(s, t, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kw", CONFIGS)
def test_padded_batch_equals_each_sequence_alone(kw):
    stack = build(**kw).eval()
    lengths = torch.tensor([6, 2, 5])
    x = torch.randn(6, 3, 5)
    y, state = stack(x, lengths)
    for b, L in enumerate(lengths.tolist()):
        y_b, state_b = stack(x[:L, b:b + 1])
        torch.testing.assert_close(y[:L, b:b + 1], y_b, atol=1e-5, rtol=1e-5)
        for a, c in zip(state, state_b):
            for s, t in zip(a, c):
                torch.testing.assert_close(s[:, b:b + 1], t, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kw", [c for c in CONFIGS if not c.get("bidirectional")])
def test_carried_state_equals_one_long_segment(kw):
    stack = build(**kw).eval()
    x = torch.randn(11, 2, 5)
    y, state = stack(x)
    y1, s1 = stack(x[:4])
    y2, s2 = stack(x[4:5], state=s1)
    y3, s3 = stack(x[5:], state=s2)
    torch.testing.assert_close(torch.cat([y1, y2, y3]), y, atol=1e-5, rtol=1e-5)
    for a, b in zip(s3, state):
        for s, t in zip(a, b):
            torch.testing.assert_close(s, t, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("T", [1, 5, 9])
def test_dilated_indrnn_layer_recurs_over_t_minus_d(T):
    stack = build(cell="indrnn", num_layers=1, dilations="3", norm="none", no_residual=True).eval()
    cell = stack.directions[0][0].cell.cell
    x = torch.randn(T, 2, 5)
    y, (state,) = stack(x)
    a = torch.nn.functional.linear(x, cell.weight, cell.bias)
    ref = indrnn_reference(a, cell.u.clamp(-cell.u_bound, cell.u_bound), dilation=3)
    torch.testing.assert_close(y, ref)
    expected = torch.cat([torch.zeros(3, 2, 12), ref])[-3:]
    torch.testing.assert_close(state[0], expected)


def test_bidirectional_backward_half_reads_the_future():
    stack = build(cell="indrnn", bidirectional=True, norm="none").eval()
    x = torch.randn(6, 1, 5)
    y, _ = stack(x)
    x2 = x.clone()
    x2[-1] += 1.0
    y2, _ = stack(x2)
    N = stack.output_size // 2
    torch.testing.assert_close(y[:-1, :, :N], y2[:-1, :, :N])  # forward half: causal
    assert not torch.allclose(y[0, :, N:], y2[0, :, N:])  # backward half sees t = T-1


def test_shared_dropout_mask_is_constant_over_time():
    stack = build(cell="indrnn", layer_dropout=0.5).train()
    out = stack.dropout(torch.ones(9, 3, 40))
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert (out == out[:1]).all()
    assert not (out[:, 0] == out[:, 1]).all()  # one mask per sequence
    assert torch.equal(stack.eval().dropout(torch.ones(2, 2, 2)), torch.ones(2, 2, 2))


@pytest.mark.parametrize("cell", ["durnn", "indrnn"])
def test_u_last_clamp_keeps_the_last_layer_memory_after_updates(cell):
    """With --u-last-clamp the last layer's u stays in [eps^(1/T), gamma^(1/T)] however hard
    the optimiser pushes it down; the first layer keeps its usual [-gamma^(1/T), gamma^(1/T)]."""
    torch.manual_seed(0)
    stack = build(cell=cell, u_last_eps=0.5, u_time_steps=10, u_last_clamp=True)
    floor, bound = 0.5 ** 0.1, 2 ** 0.1
    first, last = stack.layer_cells()["l0"], stack.layer_cells()["l1"]
    optimizer = torch.optim.SGD(stack.parameters(), lr=10.0)
    for _ in range(3):
        optimizer.zero_grad()
        (last.u.sum() + first.u.sum()).backward()  # gradient 1: SGD lowers every u by 10
        optimizer.step()
        stack.project_constraints_()
    assert torch.allclose(last.u.detach(), torch.full_like(last.u, floor))
    assert torch.equal(first.u.detach(), torch.full_like(first.u, -bound))
    x = torch.randn(6, 2, 5)
    assert torch.isfinite(stack(x)[0]).all()


@pytest.mark.parametrize("kw", [dict(cell="durnn"), dict(cell="durnn", long_input="selected+input"),
                                dict(cell="indrnn")])
def test_long_input_init_std_draws_only_the_long_term_inputs_from_a_normal(kw):
    """--long-input-init-std s: the independent recurrences' input matrices ~ N(0, s²) in every
    layer; the other matrices keep U(±1/sqrt(fan_in))."""
    default = build(hidden_size=400, short_size=100, **kw).layer_cells()
    small = build(hidden_size=400, short_size=100, long_input_init_std=0.001, **kw).layer_cells()
    for name, cell in small.items():
        if kw["cell"] == "indrnn":
            long_inputs, others = [cell.weight], []
        else:
            long_inputs, others = [cell.W_l], [cell.W_s, cell.W_x[:cell.x_sizes[0]]]
            if kw.get("long_input") == "selected+input":
                long_inputs.append(cell.W_x[cell.x_sizes[0]:])
        for w in long_inputs:
            assert abs(w.std().item() - 0.001) < 1e-4, name
            assert abs(w.mean().item()) < 1e-4, name
        for w in others:  # U(±1/sqrt(fan_in)) has std 1/sqrt(3·fan_in)
            assert abs(w.std().item() * (3 * w.shape[1]) ** 0.5 - 1) < 0.05, name
    assert all(abs(c.W_l.std().item() - 0.001) > 0.01 for c in default.values()
               if kw["cell"] == "durnn")


BAD = [
    (dict(hidden_size=-3), "--hidden-size=-3: must be a positive integer"),
    (dict(short_rho=1.0), "--short-rho=1.0: must be in (0, 1)"),
    (dict(short_rho=0.0), "--short-rho=0.0: must be in (0, 1)"),
    (dict(cell="transformer"), "--cell=transformer: must be one of durnn, indrnn, lstm, gru"),
    (dict(selection="gate"), "--selection=gate: must be one of input+short, short, input, none"),
    (dict(norm="group"), "--norm=group: must be one of layer, batch, none"),
    (dict(dilations="1,2,4"), "--dilations=1,2,4: must be one value per layer (2 layers, got 3"),
    (dict(dilations="1,x"), "--dilations=1,x: must be comma-separated positive integers"),
    (dict(u_gamma=0.0), "--u-gamma=0.0: must be in (0, inf)"),
    (dict(u_last_eps=3.0), "--u-last-eps=3.0: must be in [0, 2)"),
    (dict(u_last_clamp=True), "--u-last-clamp=True: must be used with --u-last-eps > 0"),
    (dict(long_input_init_std=-0.1), "--long-input-init-std=-0.1: must be in [0, inf)"),
    (dict(long_input_init_std=0.1, cell="lstm"),
     "--long-input-init-std=0.1: must be 0 with --cell lstm"),
    (dict(short_size=12), "--short-size=12: must be below hidden_size (12)"),
    (dict(layer_dropout=1.0), "--layer-dropout=1.0: must be in [0, 1)"),
    (dict(num_layers=0), "--num-layers=0: must be a positive integer"),
]


@pytest.mark.parametrize("kw,message", BAD)
def test_invalid_options_name_the_option_and_the_allowed_values(kw, message):
    opts = dict(num_layers=2, hidden_size=12)
    opts.update(kw)
    with pytest.raises(InvalidOptionError) as err:
        RecurrentStack(StackOptions(**opts), 5)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
