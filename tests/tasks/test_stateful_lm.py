"""Task durnn_language_modeling: exact stream split, carried state = one long pass, resets,
dummy batches, fairseq-train and fairseq-eval-lm."""
import math
import random

import pytest
import torch

from fairseq import distributed_utils, options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq_cli import eval_lm, train

from durnn_plugin.modules import InvalidOptionError
from durnn_plugin.errors import OneLineError
from durnn_plugin.tasks.state_cache import StateCache, worker_blocks
from durnn_plugin.tasks.state_carrier import StateBox, StateCarrier
from durnn_plugin.tasks.streams import shuffled_streams, split_streams
from fairseq_runs import PLUGIN, TINY_MODEL, preprocess_lm

TASK = ["--user-dir", PLUGIN, "--task", "durnn_language_modeling", "--cpu"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return preprocess_lm(tmp_path_factory.mktemp("stateful"))


def setup(data, arch="durnn_lm", tokens_per_sample=8, groups=1, extra=()):
    """task, model (eval mode, dropout on) and criterion, as fairseq-train would build them."""
    argv = [str(data)] + TASK + ["--arch", arch, "--tokens-per-sample", str(tokens_per_sample),
                                 "--batch-size", "3", "--dropout", "0.3", "--u-gamma", "1",
                                 "--stream-groups", str(groups), *extra] + TINY_MODEL
    cfg = convert_namespace_to_omegaconf(
        options.parse_args_and_arch(options.get_training_parser(), argv))
    task = tasks.setup_task(cfg.task)
    torch.manual_seed(0)
    model = task.build_model(cfg.model).eval()
    return task, model, task.build_criterion(cfg.criterion)


def batches(task, tokens, streams, shards=1, shard=0, workers=0):
    itr = task.get_batch_iterator(tokens, max_sentences=streams, num_shards=shards, shard_id=shard,
                                  num_workers=workers)
    epoch = itr.next_epoch_itr(shuffle=False)
    got = list(epoch)
    for _ in epoch._itr:  # let the DataLoader end by itself: its workers then exit at once
        raise AssertionError("more batches than len(iterator)")
    return got


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_are_consecutive_pieces_of_disjoint_streams(data, workers):
    task, _, _ = setup(data, tokens_per_sample=3)
    tokens = torch.arange(23)  # 4 streams of 5 tokens: 0-4, 5-9, 10-14, 15-19; 20-22 dropped
    seen = []
    for shard in range(2):
        got = batches(task, tokens, 2, shards=2, shard=shard, workers=workers)
        rows = torch.arange(20).view(4, 5)[2 * shard:2 * shard + 2]
        assert [b["segment"] for b in got] == [0, 1]
        assert torch.equal(got[0]["net_input"]["src_tokens"], rows[:, 0:3])
        assert torch.equal(got[0]["target"], rows[:, 1:4])
        assert torch.equal(got[1]["net_input"]["src_tokens"], rows[:, 3:4])  # last, shorter
        assert torch.equal(got[1]["target"], rows[:, 4:5])
        assert got[0]["id"].tolist() == [2 * shard, 2 * shard + 1]
        pieces = [got[0]["net_input"]["src_tokens"], got[1]["net_input"]["src_tokens"], got[1]["target"]]
        seen += torch.cat(pieces, 1).flatten().tolist()
    assert sorted(seen) == list(range(20))  # the workers' streams are disjoint and cover all


def test_stream_groups_take_turns_on_the_training_split_only(data):
    task, _, _ = setup(data, tokens_per_sample=4, groups=2)
    task.load_dataset("train")
    task.load_dataset("valid")
    train = task.dataset("train")
    got = batches(task, train, 3, shards=2, shard=1)
    rows = split_streams(train, 3 * 2 * 2)[6:]  # worker 1 of 2 owns the last 6 streams
    segments = -(-(rows.shape[1] - 1) // 4)
    assert [(b["segment"], b["group"]) for b in got] == [(k, g) for k in range(segments)
                                                          for g in range(2)]
    for b in got:
        k, g = b["segment"], b["group"]
        assert b["id"].tolist() == [6 + g, 8 + g, 10 + g]  # every 2nd stream: each group spans all
        piece = rows[g::2, 4 * k:4 * k + 5]  # the last one is shorter
        assert torch.equal(b["net_input"]["src_tokens"], piece[:, :-1])
        assert torch.equal(b["target"], piece[:, 1:])
    valid = batches(task, task.dataset("valid"), 3)
    assert {b["group"] for b in valid} == {0} and valid[0]["id"].tolist() == [0, 1, 2]


def test_shuffled_streams_are_whole_pieces_of_one_rotation_in_a_seeded_order():
    tokens = torch.arange(23)
    rows = shuffled_streams(tokens, 4, seed=5)  # 4 streams of 5 tokens, 3 dropped
    assert ((rows[:, 1:] - rows[:, :-1]) % 23 == 1).all()  # each row: consecutive tokens
    starts = sorted(rows[:, 0].tolist(), key=lambda v: (v - rows[:, 0].min()) % 23)
    assert all((b - a) % 23 == 5 for a, b in zip(starts, starts[1:]))  # one rotation, cut evenly
    assert torch.equal(shuffled_streams(tokens, 4, seed=5), rows)
    others = [shuffled_streams(tokens, 4, seed=k) for k in range(6, 10)]
    assert not all(torch.equal(rows, o) for o in others)


def test_shuffle_streams_deals_training_streams_anew_each_epoch(data):
    task, _, _ = setup(data, tokens_per_sample=4, groups=2)
    task.cfg.shuffle_streams = True
    for split in ("train", "valid"):
        task.load_dataset(split)
    train = task.dataset("train")

    def first_sources(epoch, shard=0):
        itr = task.get_batch_iterator(train, max_sentences=3, num_shards=2, shard_id=shard,
                                      epoch=epoch)
        return [b["net_input"]["src_tokens"] for b in itr.next_epoch_itr(shuffle=False)][:2]

    rows = shuffled_streams(train, 12, seed=task.cfg.seed * 100_003 + 1)[6:]  # worker 1 of 2
    got = first_sources(1, shard=1)
    assert torch.equal(got[0], rows[0::2, :4]) and torch.equal(got[1], rows[1::2, :4])
    assert not torch.equal(first_sources(2, shard=1)[0], got[0])  # another deal next epoch
    valid = batches(task, task.dataset("valid"), 3)[0]["net_input"]["src_tokens"]
    assert torch.equal(valid, split_streams(task.dataset("valid"), 3)[:, :4])  # as it is


@torch.no_grad()
def test_grouped_segments_with_carried_state_equal_one_pass_per_stream(data):
    task, model, _ = setup(data, groups=2)
    task.load_dataset("train")
    stream = task.dataset("train")
    carrier = StateCarrier()

    def with_state(samples):
        for b in samples:
            b["net_input"]["carried_state"] = carrier.box_for(b["segment"], b["group"])
            yield b

    result = eval_lm.eval_lm([model], task.source_dictionary,
                             with_state(batches(task, stream, 3)))
    assert abs(result["loss"] - single_pass_loss(model, stream, 6)) <= 1e-5


def test_split_stream_is_eos_then_lines_in_order(data):
    task, _, _ = setup(data)
    task.load_dataset("valid")
    lines = (data.parent / "valid.txt").read_text().splitlines()
    d = task.dictionary
    expected = [d.eos()] + [t for line in lines for t in d.encode_line(line, add_if_not_exist=False)]
    assert task.dataset("valid").tolist() == expected


@pytest.mark.parametrize("arch", ["durnn_lm", "dilated_durnn_lm"])
def test_two_carried_segments_equal_one_long_segment(data, arch):
    _, model, _ = setup(data, arch)
    tokens = torch.randint(4, 30, (3, 11))
    full = model(tokens)[0]
    box = StateBox()
    first = model(tokens[:, :5], carried_state=box)[0]
    assert box.state is not None and not any(t.requires_grad for layer in box.state for t in layer)
    # the carried state owns its memory: a view would keep (and checkpoint) the whole output
    assert all(t.untyped_storage().nbytes() == t.numel() * t.element_size()
               for layer in box.state for t in layer)
    second = model(tokens[:, 5:], carried_state=box)[0]
    torch.testing.assert_close(torch.cat([first, second], 1), full, atol=1e-5, rtol=1e-5)
    assert (model(tokens[:, 5:])[0] - full[:, 5:]).abs().max() > 1e-4  # the state matters


def single_pass_loss(model, stream, streams):
    """Mean negative log2-likelihood of one forward over each whole stream."""
    rows = split_streams(stream, streams)
    lprobs = torch.log_softmax(model(rows[:, :-1])[0], -1)
    return -lprobs.gather(-1, rows[:, 1:, None]).mean().item() / math.log(2)


@torch.no_grad()
def test_eval_lm_with_carried_state_equals_a_single_pass(data):
    task, model, _ = setup(data)
    task.load_dataset("test")
    stream = task.dataset("test")
    itr = task.eval_lm_dataloader(stream, batch_size=3, num_workers=0)
    assert len(itr) == math.ceil((len(stream) // 3 - 1) / 8) > 2
    result = eval_lm.eval_lm([model], task.source_dictionary, itr)
    assert abs(result["loss"] - single_pass_loss(model, stream, 3)) <= 1e-5
    fresh = eval_lm.eval_lm([model], task.source_dictionary, (
        {**b, "net_input": {**b["net_input"], "carried_state": StateBox()}}
        for b in batches(task, stream, 3)))
    assert abs(fresh["loss"] - result["loss"]) > 1e-4  # segment-wise without state differs


def test_carrier_resets_at_epoch_start_and_with_probability():
    carrier = StateCarrier()
    box = carrier.box_for(0)
    box.state = "s0"
    assert carrier.box_for(1) is box
    assert carrier.box_for(0).state is None  # a new epoch (or validation pass) starts fresh
    assert carrier.box_for(3).state is None  # not the successor of the last segment
    draws = []
    for _ in range(2):
        carrier, box, resets = StateCarrier(0.5, seed=7), None, []
        for k in range(40):
            new = carrier.box_for(k)
            resets.append(new is not box)
            box = new
        draws.append(resets)
    assert draws[0] == draws[1] and 5 < sum(draws[0]) < 35  # seeded, and resets do happen


def test_carrier_keeps_one_state_per_group_and_saves_them():
    carrier = StateCarrier()
    first, other = carrier.box_for(0, 0), carrier.box_for(0, 1)
    assert first is not other
    first.state, other.state = [(torch.ones(1, 2, 3),)], [(torch.zeros(1, 2, 3),)]
    assert carrier.box_for(1, 0) is first and carrier.box_for(1, 1) is other
    restored = StateCarrier()
    restored.load_state_dict(carrier.state_dict())
    assert restored.box_for(2, 1).state[0][0].sum() == 0
    assert restored.box_for(2, 0).state[0][0].sum() == 6
    assert restored.box_for(2, 0).state is None  # segment 2 again: not a successor
    old = StateCarrier()  # the format written before stream groups existed
    old.load_state_dict({"next_segment": 4, "rng": random.Random(1).getstate(),
                         "state": [(torch.ones(1, 2, 3),)]})
    assert old.box_for(4).state[0][0].sum() == 6


@torch.no_grad()
def test_after_a_reset_the_output_equals_a_fresh_start(data):
    _, model, _ = setup(data)
    tokens = torch.randint(4, 30, (2, 10))
    carrier = StateCarrier(1.0)
    model(tokens[:, :5], carried_state=carrier.box_for(0))
    after_reset = model(tokens[:, 5:], carried_state=carrier.box_for(1))[0]
    torch.testing.assert_close(after_reset, model(tokens[:, 5:])[0], atol=0, rtol=0)


class Backward:
    def backward(self, loss):
        loss.backward()


def test_dummy_and_valid_batches_leave_the_training_state_alone(data):
    task, model, criterion = setup(data)
    task.load_dataset("train")
    first, second = batches(task, task.dataset("train"), 3)[:2]
    task.train_step(first, model, criterion, Backward(), 0)
    box = task.carriers["train"].boxes[0]
    state = box.state
    task.train_step(first, model, criterion, Backward(), 0, ignore_grad=True)  # dummy replay
    task.valid_step(first, model, criterion)
    assert task.carriers["train"].boxes[0] is box and box.state is state
    task.train_step(second, model, criterion, Backward(), 1)
    assert second["net_input"]["carried_state"] is box and box.state is not state
    valid = [task.valid_step(b, model, criterion)[0].item() for b in (first, second, first)]
    assert valid[2] == valid[0]  # validation restarts from a fresh state at segment 0


@pytest.mark.slow
def test_fairseq_train_and_eval_lm(data, tmp_path):
    common = [str(data)] + TASK + ["--tokens-per-sample", "16", "--batch-size", "4"]
    argv = common + ["--arch", "durnn_lm", "--optimizer", "adam", "--lr", "0.01",
                     "--max-update", "25", "--state-reset-prob", "0.1", "--save-dir", str(tmp_path),
                     "--no-progress-bar", "--num-workers", "2", "--log-interval", "5",
                     "--seed", "1", "--u-gamma", "1"] + TINY_MODEL
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    distributed_utils.call_main(convert_namespace_to_omegaconf(args), train.main)
    results = []
    for workers in ["0", "2"]:
        argv = common + ["--path", str(tmp_path / "checkpoint_last.pt"), "--gen-subset", "test",
                         "--num-workers", workers]
        args = options.parse_args_and_arch(options.get_eval_lm_parser(), argv)
        results.append(eval_lm.main(convert_namespace_to_omegaconf(args)))
    assert 1.0 < results[0]["perplexity"] < 34
    assert abs(float(results[0]["loss"]) - float(results[1]["loss"])) <= 1e-6


def test_a_recurrent_bound_above_one_is_refused(data):
    argv = [str(data)] + TASK + ["--arch", "durnn_lm", "--u-gamma", "2"] + TINY_MODEL
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    with pytest.raises(InvalidOptionError, match=r"--u-gamma=2.0: must be at most 1 with --task"):
        task.build_model(cfg.model)


@pytest.mark.slow
def test_a_stateless_checkpoint_with_a_bound_above_one_still_evaluates(data, tmp_path, caplog):
    from fairseq_runs import train_lm
    train_lm(data, tmp_path, "durnn_lm", TINY_MODEL, updates=2)  # default --u-gamma 2
    argv = [str(data)] + TASK + ["--tokens-per-sample", "16", "--batch-size", "4",
                                 "--path", str(tmp_path / "checkpoint_last.pt"), "--gen-subset", "test"]
    args = options.parse_args_and_arch(options.get_eval_lm_parser(), argv)
    result = eval_lm.main(convert_namespace_to_omegaconf(args))
    assert math.isfinite(result["perplexity"]) and result["perplexity"] > 1.0
    assert any("--u-gamma=2.0 > 1" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("workers", [1, 2])
def test_state_cache_blocks_are_each_workers_piece_in_a_seeded_order(workers):
    tokens = torch.arange(203)
    pieces = split_streams(tokens, workers)
    for shard in range(workers):
        blocks = worker_blocks(tokens, 4, 8, workers, shard, seed=5)
        K = (pieces.shape[1] - 1) // 8
        assert blocks.num_blocks == K and len(blocks) == K // 4
        seen = []
        for j in range(len(blocks)):
            ids, source, target = blocks[j]
            for n, src, tgt in zip(ids.tolist(), source, target):
                assert torch.equal(src, pieces[shard, 8 * n:8 * n + 8])
                assert torch.equal(tgt, pieces[shard, 8 * n + 1:8 * n + 9])
            seen += ids.tolist()
        assert len(set(seen)) == len(seen) == K // 4 * 4  # K mod 4 blocks wait for another epoch
        again, other = worker_blocks(tokens, 4, 8, workers, shard, 5), \
            worker_blocks(tokens, 4, 8, workers, shard, 6)
        assert torch.equal(again.batches, blocks.batches)
        assert not torch.equal(other.batches, blocks.batches)
    with pytest.raises(OneLineError, match=r"^--state-cache: a worker's piece of the split has "
                                           r"\d+ blocks of 8 tokens, fewer than the batch size 99"):
        worker_blocks(tokens, 99, 8, workers)


@torch.no_grad()
def test_state_cache_chains_blocks_taken_in_order_into_one_pass(data):
    _, model, _ = setup(data)
    tokens = torch.randint(4, 30, (1, 41))
    cache = StateCache()
    cache.ensure(5)
    outputs = []
    for n in range(5):
        box = cache.box_for(torch.tensor([n]))
        assert (box.state is None) == (n == 0)
        outputs.append(model(tokens[:, 8 * n:8 * n + 8], carried_state=box)[0])
        cache.store(torch.tensor([n]), box)
    torch.testing.assert_close(torch.cat(outputs, 1), model(tokens[:, :40])[0])


def test_state_cache_gives_each_row_its_predecessors_entry_or_zeros():
    cache = StateCache()
    cache.ensure(6)
    box = cache.box_for(torch.tensor([3, 0]))
    assert box.state is None
    box.state = [(torch.tensor([[[1.0, 1.0], [2.0, 2.0]]]), torch.tensor([[[3.0], [4.0]]]))]
    cache.store(torch.tensor([2, 4]), box)
    restored = StateCache()
    restored.load_state_dict(cache.state_dict())
    restored.ensure(6)  # the same size: the entries stay
    for c in (cache, restored):
        s, h = c.box_for(torch.tensor([3, 5, 1, 0, 4])).state[0]
        assert s[0].tolist() == [[1, 1], [2, 2], [0, 0], [0, 0], [0, 0]]
        assert h[0, :, 0].tolist() == [3, 4, 0, 0, 0]
    restored.ensure(7)
    assert restored.box_for(torch.tensor([3])).state is None


def test_state_cache_training_steps_fill_the_cache_and_dummies_do_not(data):
    task, model, criterion = setup(data, extra=["--state-cache"])
    task.load_dataset("train")
    first, second = [task.get_batch_iterator(task.dataset("train"), max_sentences=3, epoch=e)
                     .next_epoch_itr(shuffle=False) for e in (1, 2)]
    batch = next(first)
    assert not torch.equal(batch["blocks"], next(second)["blocks"])  # each epoch its own order
    task.train_step(batch, model, criterion, Backward(), 0, ignore_grad=True)
    assert not task.cache.filled.any()
    task.train_step(batch, model, criterion, Backward(), 0)
    assert task.cache.filled.nonzero().flatten().tolist() == sorted(batch["blocks"].tolist())
    final = batch["net_input"]["carried_state"].state
    successor = torch.tensor([int(batch["blocks"][0]) + 1])
    torch.testing.assert_close(task.cache.box_for(successor).state[0][1][:, 0], final[0][1][:, 0])
    task.load_dataset("valid")
    valid = task.get_batch_iterator(task.dataset("valid"), max_sentences=3)
    assert "segment" in next(valid.next_epoch_itr(shuffle=False))  # validation reads streams


@pytest.mark.parametrize("extra", [["--stream-groups", "2"], ["--shuffle-streams"],
                                   ["--state-reset-prob", "0.1"]])
def test_state_cache_refuses_the_stream_options_it_replaces(data, extra):
    argv = [str(data)] + TASK + ["--arch", "durnn_lm", "--u-gamma", "1", "--state-cache",
                                 *extra] + TINY_MODEL
    cfg = convert_namespace_to_omegaconf(
        options.parse_args_and_arch(options.get_training_parser(), argv))
    with pytest.raises(InvalidOptionError, match=r"^invalid --state-cache=True: must be only "
                                                 r"without --stream-groups, --shuffle-streams"):
        tasks.setup_task(cfg.task)
