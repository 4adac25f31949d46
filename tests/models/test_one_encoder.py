"""One encoder (durnn_plugin/models/recurrent_encoder.py) for the classifier and the
encoder-decoder models: the same class, each front-end's input (tokens either padding
direction, ``src_values``), optional bidirectionality, ``max_positions``, and classifier
checkpoints saved with the older key names (``encoder.embed_tokens.*``,
``encoder.embed_values.*``)."""
from types import SimpleNamespace

import pytest
import torch

from classify_runs import token_task
from fairseq.data import Dictionary
from durnn_plugin.errors import OneLineError
from durnn_plugin.models.durnn_classifier import DuRNNClassifier, DuRNNClassifierConfig
from durnn_plugin.models.durnn_translation import DuRNNTranslationConfig, DuRNNTranslationModel
from durnn_plugin.models.recurrent_encoder import RecurrentEncoder
from durnn_plugin.models.s2t_durnn import S2TDuRNNConfig, S2TDuRNNModel

TINY = dict(hidden_size=16, short_size=4, embed_dim=8, num_layers=2)
VALUE_TASK = SimpleNamespace(input_features=3)


def classifier(task, **options) -> DuRNNClassifier:
    model = DuRNNClassifier.build_model(DuRNNClassifierConfig(**TINY, **options), task).eval()
    model.register_classification_head("h", num_classes=3)
    return model


def seq2seq_models():
    d = Dictionary()
    for i in range(20):
        d.add_symbol(f"w{i}")
    small = dict(encoder_embed_dim=8, encoder_num_layers=1, encoder_hidden_size=16,
                 encoder_short_size=4, decoder_embed_dim=8, decoder_num_layers=1,
                 decoder_hidden_size=16, decoder_short_size=4)
    text = DuRNNTranslationModel.build_model(
        DuRNNTranslationConfig(**small), SimpleNamespace(source_dictionary=d, target_dictionary=d))
    speech = S2TDuRNNModel.build_model(
        S2TDuRNNConfig(**small, input_feat_per_channel=6, conv_channels=8, conv_kernel_sizes="3"),
        SimpleNamespace(source_dictionary=None, target_dictionary=d))
    return text, speech


def test_classifier_and_seq2seq_models_share_one_encoder_class():
    text, speech = seq2seq_models()
    models = [classifier(token_task()), classifier(VALUE_TASK), text, speech]
    assert {type(m.encoder) for m in models} == {RecurrentEncoder}
    assert [m.encoder.stack.opts.bidirectional for m in models] == [False, False, True, True]
    assert text.encoder.output_size == 32 and models[0].encoder.output_size == 16
    assert classifier(token_task(), bidirectional=True).encoder.output_size == 32


def test_max_positions():
    assert classifier(token_task(), max_positions=50).encoder.max_positions() == 50
    assert classifier(token_task()).encoder.max_positions() == int(1e6)
    assert seq2seq_models()[0].encoder.max_positions() == int(1e6)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_reads_left_padding_as_right_padding(bidirectional):
    torch.manual_seed(0)
    model = classifier(token_task(), bidirectional=bidirectional, pooling="last")
    pad = model.encoder.padding_idx
    right = torch.tensor([[5, 6, 7, 8], [9, 10, 11, pad]])
    left = torch.tensor([[5, 6, 7, 8], [pad, 9, 10, 11]])
    lengths = torch.tensor([4, 3])
    with torch.no_grad():
        a, out_a = model(right, lengths, classification_head_name="h")
        b, out_b = model(left, lengths, classification_head_name="h")
    torch.testing.assert_close(a, b)
    assert out_a["encoder_padding_mask"][0].tolist() == [[False] * 4, [False] * 3 + [True]]
    assert bool((out_b["encoder_out"][0][3, 1] == 0).all())  # zero at padding


def test_values_front_end_needs_src_values():
    model = classifier(VALUE_TASK)
    values = torch.randn(2, 5, 3)
    out, encoder_out = model(src_values=values, src_lengths=torch.tensor([5, 2]),
                             classification_head_name="h")
    assert out.shape == (2, 3) and encoder_out["src_lengths"][0].tolist() == [5, 2]
    full = model.encoder(src_values=values)  # no lengths: every sequence has T steps
    assert full["src_lengths"][0].tolist() == [5, 5]
    with pytest.raises(OneLineError, match="net_input needs src_values"):
        model(src_tokens=torch.ones(2, 5, dtype=torch.long), classification_head_name="h")


def old_key_names(state):
    """The classifier's keys as saved before it shared the encoder: the front-end's modules sat
    directly on the encoder."""
    return {key.replace("encoder.front_end.", "encoder."): value for key, value in state.items()}


@pytest.mark.parametrize("task", [token_task(), VALUE_TASK], ids=["tokens", "values"])
def test_checkpoint_with_the_older_key_names_loads(task):
    torch.manual_seed(0)
    saved = classifier(task, bidirectional=True)
    old = old_key_names(saved.state_dict())
    front = "encoder.embed_tokens.weight" if task is not VALUE_TASK else "encoder.embed_values.bias"
    assert front in old and not any(".front_end." in key for key in old)
    torch.manual_seed(1)
    loaded = classifier(task, bidirectional=True)
    loaded.load_state_dict(old)  # strict: every key found
    for key, value in saved.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    if task is VALUE_TASK:
        inputs = dict(src_values=torch.randn(2, 4, 3), src_lengths=torch.tensor([4, 2]))
    else:
        inputs = dict(src_tokens=torch.randint(4, 20, (2, 4)), src_lengths=torch.tensor([4, 4]))
    with torch.no_grad():
        expected, _ = saved(**inputs, classification_head_name="h")
        got, _ = loaded(**inputs, classification_head_name="h")
    assert torch.equal(got, expected)
