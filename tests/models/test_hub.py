"""The hub interface (from_pretrained -> sample / generate) for durnn_lm: generation carries
the stack state step by step and must pick what a full forward over the same prefix picks."""
import pytest
import torch

from durnn_plugin.models.durnn_lm import DuRNNLanguageModel
from fairseq_runs import TINY_MODEL, preprocess_lm, train_lm

pytestmark = pytest.mark.slow


def test_from_pretrained_greedy_equals_full_forward(tmp_path):
    data = preprocess_lm(tmp_path)
    train_lm(data, tmp_path / "ckpt", "durnn_lm", TINY_MODEL, updates=4)
    hub = DuRNNLanguageModel.from_pretrained(str(tmp_path / "ckpt"), "checkpoint_last.pt",
                                             data_name_or_path=str(data)).eval()
    prompt = "w3 w1 w4 w1 w5"
    n_new = 6
    total = 5 + n_new  # fairseq counts the prompt in an LM's generated length
    tokens = hub.generate([hub.encode(prompt)], beam=1, max_len_b=total, min_len=total)[0][0]["tokens"]
    d = hub.task.source_dictionary
    assert len(tokens) == 5 + n_new + 1 and tokens[-1] == d.eos()
    assert hub.decode(tokens[:5]) == prompt
    with torch.no_grad():
        inputs = torch.cat([tokens.new_tensor([d.eos()]), tokens[:-1]]).unsqueeze(0)
        logits = hub.models[0](inputs)[0][0]
    logits[:, [d.pad(), d.eos()]] = float("-inf")  # never chosen inside min_len
    assert torch.equal(logits.argmax(-1)[5:-1], tokens[5:-1])


def test_sample_continues_the_prompt(tmp_path):
    data = preprocess_lm(tmp_path)
    train_lm(data, tmp_path / "ckpt", "durnn_lm", TINY_MODEL, updates=2)
    hub = DuRNNLanguageModel.from_pretrained(str(tmp_path / "ckpt"), "checkpoint_last.pt",
                                             data_name_or_path=str(data)).eval()
    torch.manual_seed(0)
    texts = hub.sample(["w1 w2", "w7 w8"], beam=1, sampling=True, sampling_topk=5, max_len_b=6,
                       min_len=6)
    assert texts[0].startswith("w1 w2 ") and texts[1].startswith("w7 w8 ")
    assert [len(t.split()) for t in texts] == [6, 6]
