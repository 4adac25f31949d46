"""s2t_durnn_ctc as a torch module: the causal subsampler, and streaming in chunks equal to the
offline forward."""
from types import SimpleNamespace

import pytest
import torch

from fairseq.data import Dictionary

from durnn_plugin.errors import OneLineError
from durnn_plugin.models.causal_subsampler import CausalSubsampler
from durnn_plugin.models.s2t_durnn_ctc import S2TDuRNNCTCConfig, S2TDuRNNCTCModel
from durnn_plugin.modules import InvalidOptionError

FEATURES = 6
TINY = dict(input_feat_per_channel=FEATURES, conv_channels=10, encoder_embed_dim=12,
            encoder_num_layers=2, encoder_hidden_size=16, encoder_short_size=4)
CHUNKS = [1, 2, 3, 5, 7, 64]


def ctc_model(**overrides) -> S2TDuRNNCTCModel:
    torch.manual_seed(0)
    d = Dictionary()
    for i in range(9):
        d.add_symbol(f"t{i}")
    task = SimpleNamespace(source_dictionary=None, target_dictionary=d)
    return S2TDuRNNCTCModel.build_model(S2TDuRNNCTCConfig(**{**TINY, **overrides}), task)


def streamed(model, feats: torch.Tensor, chunk: int) -> torch.Tensor:
    """``model.stream`` over ``feats (B, T_in, F)`` in chunks of ``chunk`` frames, the outputs
    concatenated ``(T, B, V)``; no chunk of the stream may be empty."""
    state = model.start_stream(feats.shape[0])
    outputs = []
    with torch.no_grad():
        for start in range(0, feats.shape[1], chunk):
            lprobs, state = model.stream(feats[:, start:start + chunk], state)
            outputs.append(lprobs)
    return torch.cat(outputs)


def test_subsampler_output_t_reads_input_frames_up_to_4t_only():
    torch.manual_seed(0)
    sub = CausalSubsampler(FEATURES, 8, 5, [5, 5])
    feats = torch.randn(1, 40, FEATURES)
    lengths = torch.tensor([40])
    base, out_lengths = sub(feats, lengths)
    assert base.shape == (10, 1, 5) and out_lengths.tolist() == [10]
    for t in range(10):
        later = feats.clone()
        later[:, 4 * t + 1:] = 100 * torch.randn(1, 40 - 4 * t - 1, FEATURES)
        changed, _ = sub(later, lengths)
        torch.testing.assert_close(changed[:t + 1], base[:t + 1], rtol=0, atol=0)
        at = feats.clone()
        at[:, 4 * t] += 1.0
        assert not torch.allclose(sub(at, lengths)[0][t], base[t])  # 4t itself is read


def test_model_output_t_reads_input_frames_up_to_4t_only():
    model = ctc_model(encoder_dilations="1,2").eval()
    torch.manual_seed(3)
    feats, lengths = torch.randn(1, 36, FEATURES), torch.tensor([36])
    with torch.no_grad():
        base, _ = model.ctc_log_probs(feats, lengths)
        for t in (0, 3, 7):
            later = feats.clone()
            later[:, 4 * t + 1:] += 10.0
            changed, _ = model.ctc_log_probs(later, lengths)
            torch.testing.assert_close(changed[:t + 1], base[:t + 1], rtol=0, atol=0)
            assert not torch.allclose(changed[t + 1], base[t + 1])


def test_subsampler_lengths_halve_up_and_padding_is_ignored():
    torch.manual_seed(0)
    sub = CausalSubsampler(FEATURES, 8, 5, [5, 3])
    lengths = torch.tensor([23, 9, 4, 1])
    feats = torch.randn(4, 23, FEATURES)
    out, out_lengths = sub(feats, lengths)
    assert out_lengths.tolist() == [6, 3, 1, 1]  # ceil(ceil(L / 2) / 2)
    for b, n in enumerate(lengths.tolist()):
        alone, _ = sub(feats[b:b + 1, :n], lengths[b:b + 1])
        torch.testing.assert_close(out[:out_lengths[b], b], alone[:, 0])


@pytest.mark.parametrize("overrides", [{}, {"encoder_dilations": "1,3"},
                                       {"encoder_cell": "indrnn", "conv_kernel_sizes": "3,5,3"},
                                       {"encoder_block": "residual"}])
def test_stream_in_chunks_equals_offline(overrides):
    model = ctc_model(**overrides).eval()
    torch.manual_seed(1)
    lengths = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 40, 71])
    feats = torch.randn(len(lengths), int(lengths.max()), FEATURES)
    with torch.no_grad():
        offline, out_lengths = model.ctc_log_probs(feats, lengths)
    assert offline.shape[2] == 13 and torch.allclose(offline.exp().sum(-1), torch.ones(1))
    for b, n in enumerate(lengths.tolist()):
        for chunk in CHUNKS:
            out = streamed(model, feats[b:b + 1, :n], chunk)
            assert out.shape[0] == out_lengths[b], (n, chunk)
            torch.testing.assert_close(out[:, 0], offline[:out_lengths[b], b],
                                       rtol=1e-5, atol=1e-5)


def test_stream_of_a_batch_in_train_mode_without_dropout():
    model = ctc_model(dropout=0.0, encoder_dilations="2,1").train()
    torch.manual_seed(2)
    feats = torch.randn(3, 29, FEATURES)
    lengths = torch.full((3,), 29)
    offline, _ = model.ctc_log_probs(feats, lengths)
    for chunk in (1, 4, 29):
        torch.testing.assert_close(streamed(model, feats, chunk), offline.detach(),
                                   rtol=1e-5, atol=1e-5)


def test_stream_waits_for_a_stride_and_states_are_separate():
    model = ctc_model().eval()
    assert model.stream_lookahead_frames == 0
    state = model.start_stream()
    feats = torch.randn(1, 8, FEATURES)
    counts = []
    with torch.no_grad():
        for t in range(8):
            lprobs, state = model.stream(feats[:, t:t + 1], state)
            counts.append(lprobs.shape[0])
        assert counts == [1, 0, 0, 0, 1, 0, 0, 0]  # output t needs input frame 4t
        fresh, _ = model.stream(feats[:, :1], model.start_stream())
        first, _ = model.ctc_log_probs(feats[:, :1], torch.tensor([1]))
    torch.testing.assert_close(fresh, first)


def test_bad_stream_input_and_batch_norm_are_one_line_errors():
    model = ctc_model().eval()
    with pytest.raises(OneLineError, match=r"^stream features are \(1, 3, 5\); must be "
                                           r"\(B, t, F\) with B = 1 .* F = 6$"):
        model.stream(torch.zeros(1, 3, 5), model.start_stream())
    with pytest.raises(OneLineError, match=r"t >= 1"):
        model.stream(torch.zeros(1, 0, FEATURES), model.start_stream())
    with pytest.raises(InvalidOptionError, match=r"^invalid --encoder-norm=batch: must be layer "
                                                 r"or none: batch norm's statistics"):
        ctc_model(encoder_norm="batch")
