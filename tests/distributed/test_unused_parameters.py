"""One training step gives every trainable parameter a gradient, for every model family and every
option that adds parameters, except in the cases docs/distributed.md lists (UNUSED below).

fairseq's ``--ddp-backend pytorch_ddp`` (torch's DistributedDataParallel, the default on GPUs)
fails when a parameter gets no gradient in a step, unless ``--find-unused-parameters`` is given;
``legacy_ddp`` gives such a parameter a zero gradient. The step here is the task's own
``train_step`` (loss and backward) on a training batch, as fairseq-train runs it."""
import pytest
import torch
from fairseq import options, tasks, utils
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

from classify_runs import write_topics
from distributed_runs import family_argv
from fairseq_runs import PLUGIN, preprocess_lm
from seq2seq_runs import preprocess_translation, write_speech_data

# fairseq's adaptive_loss refuses pytorch_ddp itself ("use --ddp-backend=legacy_ddp")
ADAPTIVE = ["--criterion", "adaptive_loss", "--ddp-backend", "legacy_ddp"]
CASES = {
    "durnn_lm": [[], ["--selection", "short"], ["--selection", "input"], ["--selection", "none"],
                 ["--long-input", "selected+input"], ["--module-output", "long"],
                 ["--cell", "indrnn"], ["--cell", "lstm"], ["--cell", "gru"],
                 ["--block", "residual"], ["--block", "dense"], ["--no-residual"],
                 ["--norm", "batch"], ["--dilation-base", "2"], ["--share-input-output-embed"],
                 ADAPTIVE + ["--adaptive-softmax-cutoff", "8,16"]],
    "durnn_lm stateful": [[]],
    "durnn": [[], ["--encoder-selection", "none", "--decoder-selection", "input"],
              ["--encoder-long-input", "selected+input", "--decoder-long-input", "selected+input"],
              ["--share-decoder-input-output-embed"]],
    "s2t_durnn": [[], ["--encoder-selection", "short", "--decoder-long-input", "selected+input"],
                  ["--encoder-ctc", "--criterion", "label_smoothed_cross_entropy_with_ctc"]],
    "durnn_classifier": [[], ["--pooling", "last"], ["--selection", "none"],
                         ["--long-input", "selected+input"]],
}
DATA = {"durnn_lm": preprocess_lm, "durnn_lm stateful": preprocess_lm,
        "durnn": preprocess_translation, "s2t_durnn": lambda d: write_speech_data(d, n_train=8),
        "durnn_classifier": write_topics}


class Backward:
    """The part of fairseq's optimizer that train_step uses."""

    def backward(self, loss):
        loss.backward()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    made = {}

    def get(family):
        if DATA[family] not in made:
            made[DATA[family]] = DATA[family](tmp_path_factory.mktemp("data"))
        return made[DATA[family]]
    return get


def one_step(argv):
    """The model after one training step of ``argv`` (fairseq-train options) on its largest
    training batch (the one most likely to use every part of the model), and the names of its
    trainable parameters that got no gradient."""
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(
        options.get_training_parser(), [str(a) for a in argv] + ["--user-dir", PLUGIN]))
    task = tasks.setup_task(cfg.task)
    task.load_dataset(cfg.dataset.train_subset)
    torch.manual_seed(0)
    model, criterion = task.build_model(cfg.model), task.build_criterion(cfg.criterion)
    batches = task.get_batch_iterator(
        task.dataset(cfg.dataset.train_subset), max_tokens=cfg.dataset.max_tokens,
        max_sentences=cfg.dataset.batch_size, required_batch_size_multiple=1,
        max_positions=utils.resolve_max_positions(task.max_positions(), model.max_positions()),
        ignore_invalid_inputs=True)
    largest = max(batches.next_epoch_itr(shuffle=False), key=lambda sample: sample["ntokens"])
    task.train_step(largest, model, criterion, Backward(), 0)
    return model, [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]


@pytest.mark.parametrize("family, extra", [(f, e) for f, cases in CASES.items() for e in cases],
                         ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_one_step_gives_every_parameter_a_gradient(data, family, extra):
    model, missing = one_step(family_argv(family, data(family)) + extra)
    assert missing == []
    assert sum(p.numel() for p in model.parameters()) > 0


# docs/distributed.md: the parameters that can go without a gradient in a step (pytorch_ddp then
# needs --find-unused-parameters)
UNUSED = {
    # an adaptive softmax tail band whose vocabulary range has no target in the batch; here
    # the range of fairseq's padding symbols (madeupword...), which never occur
    "adaptive softmax band without targets": (
        "durnn_lm", ADAPTIVE + ["--adaptive-softmax-cutoff", "8,34"],
        lambda name: name.startswith("decoder.adaptive_softmax.tail.1.")),
}


@pytest.mark.parametrize("case", list(UNUSED))
def test_the_documented_parameters_without_a_gradient(data, case):
    family, extra, unused = UNUSED[case]
    model, missing = one_step(family_argv(family, data(family)) + extra)
    expected = [n for n, p in model.named_parameters() if p.requires_grad and unused(n)]
    assert missing == expected and expected


def test_a_classification_head_not_trained_gets_no_gradient(data):
    """sentence_prediction trains one head; others (adopted with --load-checkpoint-heads) get
    no gradient."""
    argv = family_argv("durnn_classifier", data("durnn_classifier")) + ["--user-dir", PLUGIN]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(
        options.get_training_parser(), argv))
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    model, criterion = task.build_model(cfg.model), task.build_criterion(cfg.criterion)
    model.register_classification_head("adopted", num_classes=3)
    sample = next(task.get_batch_iterator(task.dataset("train"), max_sentences=8)
                  .next_epoch_itr(shuffle=False))
    task.train_step(sample, model, criterion, Backward(), 0)
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing and all(n.startswith("classification_heads.adopted.") for n in missing)
    assert len(missing) == len(list(model.classification_heads["adopted"].parameters()))
