"""The streaming recogniser's CTC decoders (examples/speech_recognition/ctc_decoding.py): greedy
and prefix beam search against brute force over all alignments, any chunking giving the same
ids, and shallow fusion with a durnn_lm built (or briefly trained) here."""
import gc
import itertools
import math
from types import SimpleNamespace

import pytest
import torch
from fairseq.data import Dictionary

from durnn_plugin.errors import InvalidOptionError
from durnn_plugin.models.durnn_lm import DuRNNLanguageModel, DuRNNLanguageModelConfig
from examples.speech_recognition.ctc_decoding import GreedyCTC, LMScorer, Prefix, PrefixBeamCTC
from fairseq_runs import TINY_MODEL, preprocess_lm, train_lm

TOKENS = ["a", "b", "c"]  # ids 4, 5, 6 after fairseq's <s> (the blank), <pad>, </s>, <unk>
A, B, C = 4, 5, 6


def dictionary(symbols=TOKENS) -> Dictionary:
    d = Dictionary()
    for s in symbols:
        d.add_symbol(s)
    return d


def tiny_lm(d: Dictionary, seed: int = 0) -> DuRNNLanguageModel:
    torch.manual_seed(seed)
    cfg = DuRNNLanguageModelConfig(embed_dim=8, hidden_size=16, short_size=4, num_layers=2,
                                   dropout=0.0, embed_dropout=0.0, u_time_steps=20)
    return DuRNNLanguageModel.build_model(cfg, SimpleNamespace(target_dictionary=d)).eval()


@pytest.fixture(scope="module")
def scorer():
    d = dictionary()
    return LMScorer(tiny_lm(d), d)


def random_lprobs(t: int, v: int, seed: int, scale: float = 1.5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(scale * torch.randn(t, v, generator=g), -1)


def peaked_lprobs(t: int, v: int, seed: int) -> torch.Tensor:
    """Random frames whose most probable token (random, often the blank) has probability
    >= 0.8."""
    g = torch.Generator().manual_seed(seed)
    top = torch.nn.functional.one_hot(torch.randint(0, v, (t,), generator=g), v)
    return (0.8 * top + 0.2 * torch.softmax(2 * torch.randn(t, v, generator=g), -1)).log()


def collapse(path) -> tuple:
    return tuple(c for i, c in enumerate(path) if c != 0 and (i == 0 or c != path[i - 1]))


def lm_log_prob(lm, labels) -> float:
    """``log p_LM(labels </s>)`` from one full forward of ``</s> labels``."""
    eos = lm.decoder.dictionary.eos()
    tokens = torch.tensor([[eos, *labels]])
    with torch.no_grad():
        lp = lm.get_normalized_probs(lm(tokens), log_probs=True)[0]
    return sum(lp[i, c].item() for i, c in enumerate([*labels, eos]))


def brute_force_best(lprobs, lm=None, lm_weight=0.0, token_bonus=0.0) -> list:
    """The labelling of highest ``log sum_alignments p + lm_weight log p_LM(l </s>) +
    token_bonus |l|``, over every alignment of ``lprobs (T, V)``."""
    totals = {}
    t, v = lprobs.shape
    for path in itertools.product(range(v), repeat=t):
        log_p = lprobs[torch.arange(t), torch.tensor(path)].sum().item()
        label = collapse(path)
        totals[label] = math.log(math.exp(totals.get(label, -math.inf)) + math.exp(log_p))

    def score(label):
        fused = lm_weight * lm_log_prob(lm, label) if lm is not None else 0.0
        return totals[label] + fused + token_bonus * len(label)
    return list(max(totals, key=score))


def push_in_chunks(decoder, lprobs, sizes):
    """Pushes ``lprobs`` in chunks of ``sizes`` (cycled); the ids after each frame count."""
    partial, start = {}, 0
    for size in itertools.cycle(sizes):
        if start >= len(lprobs):
            break
        partial[start + size] = decoder.push(lprobs[start:start + size])
        start += size
    return partial, decoder.finish()


def test_greedy_collapses_repeats_across_chunks_and_drops_blanks():
    frames = [0, A, A, 0, A, B, B, B, 0, 0, C, C]
    lprobs = torch.log_softmax(5 * torch.nn.functional.one_hot(torch.tensor(frames), 7).float(),
                               -1)
    for sizes in ([12], [1], [2, 1], [6, 0, 1, 5], [3]):  # [2, 1] splits A|A and B|B
        decoder = GreedyCTC()
        _, final = push_in_chunks(decoder, lprobs, sizes)
        assert final == [A, A, B, C], sizes
    lprobs = random_lprobs(60, 7, seed=0)
    whole = GreedyCTC().push(lprobs)
    for sizes in ([1], [4, 1, 7], [0, 3]):
        partial, final = push_in_chunks(GreedyCTC(), lprobs, sizes)
        assert final == whole
        assert all(ids == GreedyCTC().push(lprobs[:n]) for n, ids in partial.items())


@pytest.mark.parametrize("t,v", [(5, 3), (4, 4), (6, 3)])
def test_prefix_beam_search_finds_the_brute_force_best_labelling(t, v):
    for seed in range(8):
        lprobs = random_lprobs(t, v, seed)
        decoder = PrefixBeamCTC(beam=1000, prune_threshold=math.inf)
        decoder.push(lprobs)
        assert decoder.finish() == brute_force_best(lprobs), seed


def test_prefix_beam_search_with_the_lm_finds_the_brute_force_best(scorer):
    for seed, (weight, bonus) in enumerate([(0.5, 0.0), (2.0, 0.0), (1.0, 1.5), (3.0, -1.0)]):
        lprobs = random_lprobs(4, 7, seed)
        decoder = PrefixBeamCTC(beam=10000, lm=scorer, lm_weight=weight, token_bonus=bonus,
                                prune_threshold=math.inf)
        decoder.push(lprobs)
        assert decoder.finish() == brute_force_best(lprobs, scorer.lm, weight, bonus), seed


@pytest.mark.parametrize("v", [8, 256])
def test_beam_1_equals_greedy(v):
    """Where every frame's best token has probability >= 0.8 (> 3/4), the one prefix kept by
    beam 1 is always the best path's. (On flat frames the two differ: the beam sums the
    alignments of a prefix, the best path takes one.)"""
    for seed in range(20):
        lprobs = peaked_lprobs(80, v, seed)
        greedy, beam = GreedyCTC(), PrefixBeamCTC(beam=1)
        for start in range(0, 80, 3):
            assert beam.push(lprobs[start:start + 3]) == greedy.push(lprobs[start:start + 3])
        assert beam.finish() == greedy.finish()


@pytest.mark.parametrize("fused", [False, True])
def test_prefix_beam_search_gives_the_same_ids_for_any_chunking(fused, scorer):
    lm = dict(lm=scorer, lm_weight=0.7, token_bonus=0.3) if fused else {}
    lprobs = random_lprobs(50, 7, seed=3, scale=2.0)
    whole = PrefixBeamCTC(beam=4, **lm)
    first = {n: whole.push(lprobs[n - 1:n]) for n in range(1, 51)}
    final = whole.finish()
    for sizes in ([50], [7], [2, 0, 5, 1], [13, 3]):
        partial, again = push_in_chunks(PrefixBeamCTC(beam=4, **lm), lprobs, sizes)
        assert again == final
        assert all(ids == first[min(n, 50)] for n, ids in partial.items())
    assert PrefixBeamCTC(beam=4, **lm).push(lprobs) == first[50]
    assert whole.push(lprobs[:0]) == []  # finish() started afresh


def test_only_the_prefixes_of_the_beam_and_their_ancestors_stay_in_memory():
    decoder = PrefixBeamCTC(beam=4)
    decoder.push(random_lprobs(300, 7, seed=4))
    kept = set()
    for node in decoder.hyps:
        while node is not None:
            kept.add(node)
            node = node.parent
    gc.collect()
    assert sum(isinstance(o, Prefix) for o in gc.get_objects()) == len(kept)
    assert max(len(n.ids()) for n in decoder.hyps) > 50  # a long search, many branches dropped


def test_pruning_only_drops_tokens_outside_the_threshold_and_top_k():
    lprobs = torch.log_softmax(torch.tensor([[0.0, 5.0, 4.0, 1.0, 4.5]]), -1)
    assert PrefixBeamCTC(4, prune_threshold=1.2).allowed(lprobs).tolist() == [
        [False, True, True, False, True]]
    assert PrefixBeamCTC(4, prune_top_k=2).allowed(lprobs).tolist() == [
        [False, True, False, False, True]]
    lprobs = random_lprobs(30, 20, seed=5)
    pruned, full = PrefixBeamCTC(4, prune_top_k=2), PrefixBeamCTC(4, prune_threshold=math.inf)
    assert pruned.push(lprobs) != full.push(lprobs)  # the cap prunes here, so it is applied


def train_towards(token: int, d: Dictionary, steps: int = 150) -> LMScorer:
    """A tiny LM trained on sentences of one to three ``token``: it strongly prefers it."""
    lm = tiny_lm(d, seed=token)
    lm.train()
    eos = d.eos()
    opt = torch.optim.Adam(lm.parameters(), lr=0.03)
    sentences = [[token] * n for n in (1, 2, 3)]
    inputs = torch.tensor([[eos, *s] + [d.pad()] * (3 - len(s)) for s in sentences])
    targets = torch.tensor([[*s, eos] + [d.pad()] * (3 - len(s)) for s in sentences])
    for _ in range(steps):
        logits, _ = lm(inputs)
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets,
                                                 ignore_index=d.pad())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return LMScorer(lm.eval(), d)


def test_lm_fusion_pulls_the_decode_towards_the_lm():
    """Acoustically b is a little more likely than a and c; an LM that prefers a (c) turns the
    decode into a (c), at weight 0 it changes nothing."""
    d = dictionary()
    probs = torch.full((3, 7), 1e-4)
    probs[0, 0] = probs[2, 0] = 1.0
    probs[1, [0, A, B, C]] = torch.tensor([0.1, 0.28, 0.34, 0.28])
    lprobs = (probs / probs.sum(-1, keepdim=True)).log()
    plain = PrefixBeamCTC(beam=4)
    assert plain.push(lprobs) == [B] and plain.finish() == [B]
    for token in (A, C):
        lm = train_towards(token, d)
        prefers = lm.initial.log_probs
        assert prefers[token] > math.log(0.9) and prefers[B] < math.log(0.05)
        assert PrefixBeamCTC(beam=4, lm=lm, lm_weight=0.0).push(lprobs) == [B]
        fused = PrefixBeamCTC(beam=4, lm=lm, lm_weight=1.0)
        fused.push(lprobs)
        assert fused.finish() == [token]


def test_batched_lm_scoring_equals_scoring_each_prefix_alone(scorer):
    prefixes = {(): scorer.initial}
    for labels in [(A,), (B,), (A, C), (A, C, C), (B, A), (B, A, B), (B, A, B, B)]:
        prefixes[labels] = scorer.extend([prefixes[labels[:-1]]], [labels[-1]])[0]
    parents = list(prefixes)
    tokens = [C, A, B, 2, A, C, B, A]  # 2: </s>, scored like any token
    batched = scorer.extend([prefixes[p] for p in parents], tokens)
    for parent, token, state in zip(parents, tokens, batched):
        alone = scorer.extend([prefixes[parent]], [token])[0]
        torch.testing.assert_close(state.log_probs, alone.log_probs, atol=1e-6, rtol=0)
        for layer, layer_alone in zip(state.stack, alone.stack):
            for t, t_alone in zip(layer, layer_alone):
                torch.testing.assert_close(t, t_alone, atol=1e-6, rtol=0)
        eos = scorer.eos
        with torch.no_grad():
            full = scorer.lm.get_normalized_probs(
                scorer.lm(torch.tensor([[eos, *parent, token]])), log_probs=True)[0, -1]
        torch.testing.assert_close(state.log_probs, full.double(), atol=1e-5, rtol=0)


def test_one_batched_lm_step_per_frame(scorer, monkeypatch):
    calls = []
    step = LMScorer.step
    monkeypatch.setattr(LMScorer, "step", lambda self, stack, tokens: calls.append(
        len(tokens)) or step(self, stack, tokens))
    decoder = PrefixBeamCTC(beam=6, lm=scorer, lm_weight=0.5)
    lprobs = random_lprobs(20, 7, seed=2, scale=1.0)
    for t in range(20):
        before = len(calls)
        decoder.push(lprobs[t:t + 1])
        assert len(calls) - before <= 1
    assert max(calls) > 1  # several prefixes in one call


def test_an_lm_of_another_dictionary_is_refused_in_one_line():
    d = dictionary()
    lm = tiny_lm(d)
    for other in (dictionary(["b", "a", "c"]), dictionary(["a", "b"])):
        with pytest.raises(ValueError, match=r"^LM dictionary \(\d+ symbols\) is not the "
                                             r"recogniser's \(\d+ symbols\) index for index"
                                             r"[^\n]*$"):
            LMScorer(lm, other)
    with pytest.raises(ValueError, match=r"^lprobs \(3, 8\): V must be the size of the LM's "):
        PrefixBeamCTC(2, lm=LMScorer(lm, d), lm_weight=1.0).push(torch.zeros(3, 8))


def test_bad_options_and_input_are_refused_in_one_line():
    with pytest.raises(InvalidOptionError, match=r"^invalid --beam=0: "):
        PrefixBeamCTC(0)
    with pytest.raises(InvalidOptionError, match=r"^invalid --prune-threshold=0: "):
        PrefixBeamCTC(2, prune_threshold=0)
    for decoder in (GreedyCTC(), PrefixBeamCTC(2)):
        with pytest.raises(ValueError, match=r"^lprobs \(7,\): must be a \(t, V\) float tensor"):
            decoder.push(torch.zeros(7))


@pytest.mark.slow
def test_lm_checkpoint_loads_as_transcribe_loads_it(tmp_path):
    """A durnn_lm checkpoint of fairseq-train, loaded with its data directory's dictionary;
    another dictionary is refused by the loader, naming --lm-path."""
    data = preprocess_lm(tmp_path)
    train_lm(data, tmp_path / "ckpt", "durnn_lm", TINY_MODEL, updates=2)
    checkpoint = str(tmp_path / "ckpt" / "checkpoint_last.pt")
    d = Dictionary.load(str(data / "dict.txt"))
    lm = LMScorer.load(checkpoint, str(data), d)
    decoder = PrefixBeamCTC(beam=3, lm=lm, lm_weight=0.5)
    decoder.push(random_lprobs(10, len(d), seed=0))
    assert all(0 <= i < len(d) for i in decoder.finish())
    swapped = Dictionary.load(str(data / "dict.txt"))
    swapped.symbols[4], swapped.symbols[5] = swapped.symbols[5], swapped.symbols[4]
    with pytest.raises(ValueError, match=r"^--lm-path .*dict.txt \(\d+ symbols\) is not the "
                                         r"recogniser's"):
        LMScorer.load(checkpoint, str(data), swapped)
