"""s2t_durnn / durnn as torch modules: padding, subsampled lengths, incremental decoding, beams."""
from types import SimpleNamespace

import pytest
import torch

from fairseq.data import Dictionary

from durnn_plugin.models.s2t_durnn import S2TDuRNNConfig, S2TDuRNNModel
from durnn_plugin.models.durnn_translation import DuRNNTranslationConfig, DuRNNTranslationModel
from durnn_plugin.modules import InvalidOptionError

TINY = dict(encoder_embed_dim=12, encoder_num_layers=2, encoder_hidden_size=16,
            encoder_short_size=4, decoder_embed_dim=10, decoder_num_layers=2,
            decoder_hidden_size=16, decoder_short_size=4, dropout=0.0)


def dictionary(n: int = 20) -> Dictionary:
    d = Dictionary()
    for i in range(n):
        d.add_symbol(f"t{i}")
    return d


def speech_model(**overrides):
    torch.manual_seed(0)
    cfg = S2TDuRNNConfig(**{**TINY, "conv_channels": 14, "conv_kernel_sizes": "5,3", **overrides})
    task = SimpleNamespace(source_dictionary=None, target_dictionary=dictionary())
    return S2TDuRNNModel.build_model(cfg, task).eval()


def text_model(**overrides):
    torch.manual_seed(0)
    d = dictionary()
    task = SimpleNamespace(source_dictionary=d, target_dictionary=d)
    return DuRNNTranslationModel.build_model(DuRNNTranslationConfig(**{**TINY, **overrides}),
                                             task).eval()


@pytest.mark.parametrize("cell", ["durnn", "indrnn", "lstm"])
def test_speech_encoder_ignores_padding(cell):
    model = speech_model(encoder_cell=cell)
    torch.manual_seed(1)
    lengths = torch.tensor([37, 20, 9, 1])
    feats = torch.randn(4, 37, 80)
    out = model.encoder(feats, lengths)
    # more padding, filled with large values instead of zeros
    padded = torch.cat([feats, 50 * torch.randn(4, 13, 80)], 1)
    for b, n in enumerate(lengths):
        padded[b, n:] = 50 * torch.randn(50 - n, 80)
    out2 = model.encoder(padded, lengths)
    sub = torch.tensor([10, 5, 3, 1])  # (L - 1) // 2 + 1, twice
    assert out["src_lengths"][0].tolist() == sub.tolist()
    assert model.encoder.front_end.get_out_seq_lens_tensor(lengths).tolist() == sub.tolist()
    for o in (out, out2):
        mask = o["encoder_padding_mask"][0]
        assert mask.dtype == torch.bool and mask.shape == (4, o["encoder_out"][0].shape[0])
        assert (~mask).sum(1).tolist() == sub.tolist()
        assert torch.all(o["encoder_out"][0][mask.t()] == 0)
    assert out["encoder_out"][0].shape == (10, 4, 32) and out2["encoder_out"][0].shape[0] == 13
    y, y2 = out["encoder_out"][0], out2["encoder_out"][0]
    for b, n in enumerate(sub):
        torch.testing.assert_close(y2[:n, b], y[:n, b], atol=1e-5, rtol=1e-5)
    # a batch of one gives the same valid frames
    alone = model.encoder(feats[2:3, :9], lengths[2:3])["encoder_out"][0]
    torch.testing.assert_close(alone[:, 0], y[:3, 2], atol=1e-5, rtol=1e-5)


def test_token_encoder_left_and_right_padding_agree():
    model = text_model()
    pad = model.encoder.dictionary.pad()
    right = torch.tensor([[5, 6, 7, 2], [8, 9, 2, pad]])
    left = torch.tensor([[5, 6, 7, 2], [pad, 8, 9, 2]])
    lengths = torch.tensor([4, 3])
    a, b = model.encoder(right, lengths), model.encoder(left, lengths)
    torch.testing.assert_close(a["encoder_out"][0], b["encoder_out"][0])
    assert a["encoder_padding_mask"][0].tolist() == [[False] * 4, [False] * 3 + [True]]


@pytest.mark.parametrize("build", [speech_model, text_model])
@pytest.mark.parametrize("decoder_cell,dilations", [("durnn", "1,2"), ("gru", None)])
def test_incremental_decoding_equals_full_forward(build, decoder_cell, dilations):
    model = build(decoder_cell=decoder_cell, decoder_dilations=dilations)
    torch.manual_seed(2)
    if build is speech_model:
        src, src_lengths = torch.randn(3, 30, 80), torch.tensor([30, 17, 8])
    else:
        src, src_lengths = torch.randint(4, 20, (3, 7)), torch.tensor([7, 5, 2])
        src[1, 5:], src[2, 2:] = model.encoder.dictionary.pad(), model.encoder.dictionary.pad()
    prev = torch.randint(4, 20, (3, 6))
    prev[:, 0] = 2  # eos starts every target
    encoder_out = model.encoder(src, src_lengths)
    full, extra = model.decoder(prev, encoder_out)
    assert full.shape == (3, 6, 24)  # 4 special symbols + 20
    S = encoder_out["encoder_out"][0].shape[0]
    attn = extra["attn"][0]
    assert attn.shape == (3, 6, S)
    torch.testing.assert_close(attn.sum(-1), torch.ones(3, 6))
    assert torch.all(attn[encoder_out["encoder_padding_mask"][0].unsqueeze(1).expand_as(attn)] == 0)
    state = {}
    steps = [model.decoder(prev[:, :t + 1], encoder_out, incremental_state=state)[0]
             for t in range(6)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)


def test_beam_reorder_of_encoder_and_decoder_state():
    model = speech_model()
    torch.manual_seed(3)
    src, src_lengths = torch.randn(2, 24, 80), torch.tensor([24, 11])
    prev = torch.randint(4, 20, (2, 4))
    encoder_out = model.encoder(src, src_lengths)
    order = torch.tensor([1, 1, 0])
    state = {}
    for t in range(2):
        model.decoder(prev[:, :t + 1], encoder_out, incremental_state=state)
    model.decoder.reorder_incremental_state_scripting(state, order)
    reordered = model.encoder.reorder_encoder_out(encoder_out, order)
    for key in ("encoder_out", "encoder_padding_mask", "src_lengths"):
        dim = 1 if key == "encoder_out" else 0
        torch.testing.assert_close(reordered[key][0], encoder_out[key][0].index_select(dim, order))
    beams = prev.index_select(0, order)
    out = [model.decoder(beams[:, :t + 1], reordered, incremental_state=state)[0]
           for t in range(2, 4)]
    full = model.decoder(beams, reordered)[0]
    torch.testing.assert_close(torch.cat(out, 1), full[:, 2:], atol=1e-5, rtol=1e-5)


def test_tied_embeddings_and_invalid_options():
    model = text_model(share_decoder_input_output_embed=True)
    assert model.decoder.output_weight is None
    with pytest.raises(InvalidOptionError, match=r"--encoder-short-rho=1.5"):
        text_model(encoder_short_rho=1.5)
    with pytest.raises(InvalidOptionError, match=r"--decoder-cell=rnn"):
        text_model(decoder_cell="rnn")
    with pytest.raises(InvalidOptionError, match=r"--conv-kernel-sizes=4,5"):
        speech_model(conv_kernel_sizes="4,5")
