"""Checks shared by the block tests (test_residual_block.py, test_dense_block.py)."""
import math
import random
from collections import Counter
from pathlib import Path

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


def write_alternating_text(text_dir: Path, vocab: int = 30, length: int = 16, seed: int = 0):
    """Lines ``a b a b ...`` (``length`` tokens) with ``a``, ``b`` drawn uniformly from ``vocab``
    words: from the third token on, each token is the one two steps back, and independent of
    the one just before it. Returns the unigram perplexity of ``test`` (eos included) under the
    train split's counts."""
    rng = random.Random(seed)
    text_dir.mkdir(parents=True)
    for split, n in [("train", 1200), ("valid", 60), ("test", 60)]:
        pairs = [(rng.randrange(vocab), rng.randrange(vocab)) for _ in range(n)]
        (text_dir / f"{split}.txt").write_text("".join(
            " ".join(f"w{pair[i % 2]}" for i in range(length)) + "\n" for pair in pairs))

    def tokens(split):
        return [w for line in (text_dir / f"{split}.txt").read_text().splitlines()
                for w in line.split() + ["</s>"]]

    counts = Counter(tokens("train"))
    test = tokens("test")
    total = sum(counts.values())
    return math.exp(-sum(math.log(counts[w] / total) for w in test) / len(test))


def assert_fairseq_lm_trains_evaluates_generates(tmp_path, arch, options):
    """150 updates of fairseq-train on :func:`write_alternating_text`, then fairseq-eval-lm and
    generation. A model without memory of the token before the last one stays at about the
    unigram perplexity (~30); the test perplexity must fall below a third of it."""
    from fairseq_runs import TINY_MODEL, eval_lm_on, generate_from, train_lm
    from reliability_runs import binarize
    unigram = write_alternating_text(tmp_path / "text")
    data = binarize(tmp_path / "text")
    train_lm(data, tmp_path / "ckpt", arch, TINY_MODEL + options + ["--lr", "0.03"], updates=150)
    ckpt = tmp_path / "ckpt" / "checkpoint_last.pt"
    result = eval_lm_on(data, ckpt)
    assert unigram > 25
    assert result["perplexity"] < unigram / 3, (float(result["perplexity"]), unigram)
    assert "H-" in generate_from(data, ckpt, tmp_path / "gen")
