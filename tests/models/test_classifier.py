"""durnn_classifier: pooling over valid positions, classification heads, sentence_prediction."""
import pytest
import torch

from classify_runs import (TINY, common_train_args, load_example, run_train, token_task,
                           write_topics)
from durnn_plugin.models.durnn_classifier import DuRNNClassifier, DuRNNClassifierConfig
from durnn_plugin.errors import InvalidOptionError
from durnn_plugin.modules.pooling import pool


def build(**options):
    cfg = DuRNNClassifierConfig(hidden_size=16, short_size=4, embed_dim=8, num_layers=2,
                                **options)
    return DuRNNClassifier.build_model(cfg, token_task())


def test_pool_picks_valid_positions():
    y = torch.arange(5 * 2 * 4, dtype=torch.float).view(5, 2, 4)  # (T, B, C)
    lengths = torch.tensor([5, 2])
    last = pool(y, lengths, "last")
    assert torch.equal(last, torch.stack([y[4, 0], y[1, 1]]))
    both = pool(y, lengths, "last", backward_size=1)  # forward last valid, backward at 0
    assert torch.equal(both[:, :3], last[:, :3]) and torch.equal(both[:, 3], y[0, :, 3])
    assert torch.allclose(pool(y, lengths, "mean")[1], y[:2, 1].mean(0))
    with pytest.raises(InvalidOptionError, match="--pooling"):
        pool(y, lengths, "first")


@pytest.mark.parametrize("options", [
    {"pooling": "mean"}, {"pooling": "last"},
    {"pooling": "last", "bidirectional": True}, {"pooling": "mean", "bidirectional": True},
    {"pooling": "last", "cell": "lstm"}])
def test_padding_appended_changes_nothing(options):
    torch.manual_seed(0)
    model = build(**options).eval()
    model.register_classification_head("h", num_classes=3)
    pad = model.encoder.padding_idx
    tokens = torch.randint(4, 20, (3, 6))
    lengths = torch.tensor([6, 4, 1])
    tokens[1, 4:], tokens[2, 1:] = pad, pad
    padded = torch.cat([tokens, torch.full((3, 5), pad)], 1)
    with torch.no_grad():
        out, _ = model(tokens, lengths, classification_head_name="h")
        out_padded, _ = model(padded, lengths, classification_head_name="h")
        alone, _ = model(tokens[2:, :1], lengths[2:], classification_head_name="h")
    assert out.shape == (3, 3)
    assert torch.allclose(out, out_padded, atol=1e-6)
    assert torch.allclose(out[2:], alone, atol=1e-6)


def test_load_checkpoint_with_new_head():
    torch.manual_seed(0)
    old = build()
    old.register_classification_head("topics", num_classes=5)
    old.register_classification_head("shared", num_classes=2)
    state = old.state_dict()

    new = build()
    new.register_classification_head("sentiment", num_classes=3)
    new.register_classification_head("shared", num_classes=4)  # same name, other shape
    fresh = {k: v.clone() for k, v in new.state_dict().items() if "classification_heads" in k}
    new.load_state_dict(dict(state))  # (the upgrade edits the dict it is given)
    assert set(new.classification_heads) == {"sentiment", "shared"}
    loaded = new.state_dict()
    for key, value in fresh.items():  # heads the checkpoint lacks or has with another shape
        assert torch.equal(loaded[key], value)
    for key, value in state.items():  # the encoder comes from the checkpoint
        if key.startswith("encoder."):
            assert torch.equal(loaded[key], value)
    assert new.classification_heads["shared"].out_proj.out_features == 4

    adopt = build(load_checkpoint_heads=True)
    adopt.load_state_dict(state)
    assert set(adopt.classification_heads) == {"topics", "shared"}
    assert torch.equal(adopt.state_dict()["classification_heads.topics.out_proj.weight"],
                       state["classification_heads.topics.out_proj.weight"])
    tokens = torch.randint(4, 20, (2, 5))
    assert adopt(tokens, classification_head_name="topics")[0].shape == (2, 5)


def test_bad_options_one_line():
    with pytest.raises(InvalidOptionError, match=r"^invalid --pooling=max: must be one of mean, last$"):
        build(pooling="max")
    with pytest.raises(InvalidOptionError, match="--num-classes"):
        build().register_classification_head("h", num_classes=0)


@pytest.mark.slow
def test_sentence_prediction_train_then_new_head(tmp_path):
    data = write_topics(tmp_path)
    task = ["--task", "sentence_prediction", "--num-classes", "2", "--max-positions", "32",
            "--arch", "durnn_classifier", "--criterion", "sentence_prediction",
            "--batch-size", "16", "--best-checkpoint-metric", "accuracy",
            "--maximize-best-checkpoint-metric", "--dropout", "0", "--embed-dropout", "0",
            "--validate-interval", "100", "--save-interval", "100"]  # only once, at the end
    run_train([data] + task + TINY + ["--bidirectional", "--pooling", "last"]
              + common_train_args(tmp_path / "ckpt", 30))
    evaluate = load_example("classification/evaluate.py").evaluate
    values = evaluate(str(tmp_path / "ckpt" / "checkpoint_best.pt"), "valid")
    assert values["n"] == 40
    assert values["accuracy"] >= 90  # the two classes use disjoint words

    # fine-tune from that checkpoint with a second, new head: the encoder is loaded
    run_train([data] + task + TINY + ["--bidirectional", "--pooling", "last",
                                      "--classification-head-name", "second",
                                      "--restore-file", tmp_path / "ckpt" / "checkpoint_best.pt",
                                      "--reset-optimizer", "--reset-dataloader", "--reset-meters"]
              + common_train_args(tmp_path / "ckpt2", 1))
    state = torch.load(tmp_path / "ckpt2" / "checkpoint_last.pt")["model"]
    first = torch.load(tmp_path / "ckpt" / "checkpoint_best.pt")["model"]
    assert "classification_heads.second.out_proj.weight" in state
    assert "classification_heads.sentence_classification_head.out_proj.weight" not in state
    embed = "encoder.front_end.embed_tokens.weight"  # one Adam step (lr 0.01) from the first
    assert (state[embed] - first[embed]).abs().max() <= 0.0101
