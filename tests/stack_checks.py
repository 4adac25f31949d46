"""Checks shared by the block tests (test_residual_block.py, test_dense_block.py)."""
import torch


def assert_steps_and_padding_equal_one_pass(stack):
    """One step at a time with the state carried gives the one-pass output and final state of a
    7-step batch ``(7, 3, 5)``; in a right-padded batch with lengths 7, 4 and 1 (garbage
    padding), each sequence's valid outputs and final state are those of the sequence alone."""
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
    lengths = torch.tensor([7, 4, 1])
    padded = torch.cat([x, torch.zeros(4, 3, 5, dtype=torch.double)])
    for b, L in enumerate(lengths.tolist()):
        padded[L:, b] = torch.randn(11 - L, 5, dtype=torch.double) * 100
    y, final = stack(padded, lengths)
    for b, L in enumerate(lengths.tolist()):
        alone, final_alone = stack(x[:L, b:b + 1])
        torch.testing.assert_close(y[:L, b:b + 1], alone)
        for a, c in zip(final, final_alone):
            for u, v in zip(a, c):
                torch.testing.assert_close(u[:, b:b + 1], v)


def assert_fairseq_lm_trains_evaluates_generates(tmp_path, arch, options):
    """4 updates of fairseq-train on tiny data, then fairseq-eval-lm and generation."""
    from fairseq_runs import TINY_MODEL, eval_lm_on, generate_from, preprocess_lm, train_lm
    data = preprocess_lm(tmp_path)
    train_lm(data, tmp_path / "ckpt", arch, TINY_MODEL + options, updates=4)
    ckpt = tmp_path / "ckpt" / "checkpoint_last.pt"
    result = eval_lm_on(data, ckpt)
    assert 1.0 < result["perplexity"] < 40
    assert "H-" in generate_from(data, ckpt, tmp_path / "gen")
