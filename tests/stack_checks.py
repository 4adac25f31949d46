"""Checks shared by the block tests (test_residual_block.py, test_dense_block.py)."""
import torch


def assert_steps_and_padding_equal_one_pass(stack):
    """One step at a time with the state carried, and a padded batch, give the one-pass output
    and final state of a 7-step batch ``(7, 3, 5)``."""
    x = torch.randn(7, 3, 5, dtype=torch.double)
    full, final = stack(x)
    state, steps = None, []
    for t in range(7):
        y, state = stack(x[t:t + 1], state=state)
        steps.append(y)
    torch.testing.assert_close(torch.cat(steps), full)
    for a, b in zip(state, final):
        for u, v in zip(a, b):
            torch.testing.assert_close(u, v)
    padded = torch.cat([x, torch.randn(4, 3, 5, dtype=torch.double) * 100])
    y, _ = stack(padded, torch.tensor([7, 7, 7]))
    torch.testing.assert_close(y[:7], full)


def assert_fairseq_lm_trains_evaluates_generates(tmp_path, arch, options):
    """4 updates of fairseq-train on tiny data, then fairseq-eval-lm and generation."""
    from fairseq_runs import TINY_MODEL, eval_lm_on, generate_from, preprocess_lm, train_lm
    data = preprocess_lm(tmp_path)
    train_lm(data, tmp_path / "ckpt", arch, TINY_MODEL + options, updates=4)
    ckpt = tmp_path / "ckpt" / "checkpoint_last.pt"
    result = eval_lm_on(data, ckpt)
    assert 1.0 < result["perplexity"] < 40
    assert "H-" in generate_from(data, ckpt, tmp_path / "gen")
