"""Observing the stack: traced internals, per-layer statistics and their fairseq metrics."""
import logging

import pytest
import torch

from durnn_plugin.modules import RecurrentStack, StackOptions, record_internals


def single_layer(**kw):
    opts = StackOptions(hidden_size=12, short_size=4, num_layers=1, norm="none", no_residual=True,
                        **kw)
    return RecurrentStack(opts, 5).double()


@pytest.mark.parametrize("dilations", ["1", "3"])
def test_trace_matches_the_layer_output(dilations):
    torch.manual_seed(0)
    stack = single_layer(dilations=dilations)
    x = torch.randn(7, 2, 5, dtype=torch.double)
    with record_internals(stack) as traces:
        y, _ = stack(x)
    trace = traces["l0"]
    assert torch.equal(torch.cat([trace["short"], trace["long"]], -1), y)
    cell = stack.layer_cells()["l0"]
    cell = getattr(cell, "cell", cell)  # the DuRNN cell inside a Dilated wrapper
    x_gate = torch.nn.functional.linear(x, cell.W_x)
    expected = torch.sigmoid(x_gate + torch.nn.functional.linear(trace["short"], cell.V_g, cell.b_g))
    torch.testing.assert_close(trace["gate"], expected)
    assert all(c.trace is None for c in stack.layer_cells().values())  # off after the block


def test_statistics_reflect_constraints_and_gate():
    torch.manual_seed(0)
    stack = single_layer(short_rho=0.5, u_gamma=0.9, u_time_steps=10)
    cell = stack.layer_cells()["l0"]
    with torch.no_grad():
        cell.u.fill_(3.0)
        cell.U_s.mul_(10)
    x = torch.randn(6, 3, 5, dtype=torch.double)
    with record_internals(stack) as traces:
        stack(x)
    stats = stack.statistics()
    assert set(stats) == {"l0_u_mean", "l0_u_max", "l0_us_norm", "l0_gate"}
    bound = 0.9 ** (1 / 10)
    assert stats["l0_u_max"].item() == pytest.approx(bound)
    stack.project_constraints_()
    assert stack.statistics()["l0_us_norm"].item() == pytest.approx(0.5)
    assert stats["l0_gate"].item() == pytest.approx(traces["l0"]["gate"].mean().item())


@pytest.mark.slow
def test_training_log_shows_layer_statistics(tmp_path, caplog):
    from fairseq_runs import TINY_MODEL, preprocess_lm, train_lm

    data = preprocess_lm(tmp_path)
    with caplog.at_level(logging.INFO):
        train_lm(data, tmp_path / "ckpt", "durnn_lm", TINY_MODEL, updates=3)
    lines = [r.getMessage() for r in caplog.records if "l1_gate" in r.getMessage()]
    assert lines, "no training log line carries the layer statistics"
    for key in ["l0_u_mean", "l0_u_max", "l0_us_norm", "l0_gate", "l1_u_max"]:
        assert key in lines[-1]


def test_models_with_two_stacks_prefix_their_statistics():
    from torch import nn
    from durnn_plugin.models.stack_updates import recurrent_stacks

    def side():
        module = nn.Module()
        module.stack = single_layer()
        return module

    model = nn.Module()
    model.encoder, model.decoder = side(), side()
    assert sorted(recurrent_stacks(model)) == ["decoder_", "encoder_"]
    assert list(recurrent_stacks(model.encoder)) == [""]
