"""adding_problem and pixel_sequence: samples, splits, permutation, one-line errors, training."""
from pathlib import Path

import numpy as np
import pytest
import torch

from classify_runs import TINY, common_train_args, run_train, write_pixels
from durnn_plugin.errors import InvalidOptionError
from durnn_plugin.tasks.adding_problem import AddingProblemConfig, AddingProblemTask
from durnn_plugin.tasks.idx_files import read_idx, write_idx
from durnn_plugin.tasks.pixel_sequence import (PixelSequenceConfig, PixelSequenceTask,
                                               pixel_permutation)
from durnn_plugin.tasks.value_sequences import InvalidDataRow
from fairseq import checkpoint_utils
from fairseq_runs import PLUGIN, run_cli


def adding_task(**options):
    cfg = AddingProblemConfig(**{"seq_len": 9, "train_size": 6, "valid_size": 4, "test_size": 4,
                                 "seed": 3, "classification_head_name": "h", **options})
    return AddingProblemTask.setup_task(cfg)


def pixel_task(data, **options):
    cfg = PixelSequenceConfig(**{"data": str(data), "valid_size": 4,
                                 "classification_head_name": "h", **options})
    return PixelSequenceTask.setup_task(cfg)


def batch_of(task, split):
    task.load_dataset(split)
    dataset = task.dataset(split)
    return dataset.collater([dataset[i] for i in range(len(dataset))])


def test_adding_samples_and_seed_policy():
    task = adding_task()
    batch = batch_of(task, "train")
    x, y = batch["net_input"]["src_values"], batch["target"]
    assert x.shape == (6, 9, 2) and x.dtype == torch.float32 and y.shape == (6,)
    assert torch.equal(batch["net_input"]["src_lengths"], torch.full((6,), 9))
    marker = x[..., 1]
    assert torch.equal(marker.sum(1), torch.full((6,), 2.0))
    assert torch.equal(marker[:, :5].sum(1), torch.ones(6))  # one marker in each half (ceil(9/2))
    assert torch.allclose(y, (x[..., 0] * marker).sum(1))
    assert bool(((x[..., 0] >= 0) & (x[..., 0] < 1)).all())

    again = batch_of(adding_task(), "train")["net_input"]["src_values"]
    assert torch.equal(x, again)  # same seed, same data
    task.dataset("train").set_epoch(2)
    epoch2 = task.dataset("train").collater([task.dataset("train")[i] for i in range(6)])
    assert not torch.equal(epoch2["net_input"]["src_values"], x)  # fresh data every epoch
    valid = batch_of(task, "valid")["net_input"]["src_values"]
    task.dataset("valid").set_epoch(5)
    assert np.array_equal(task.dataset("valid")[0]["values"], valid[0].numpy())  # valid is fixed
    assert not torch.equal(batch_of(task, "test")["net_input"]["src_values"], valid)


def test_pixel_splits_scaling_and_permutation(tmp_path):
    train_images, test_images = write_pixels(tmp_path, n_train=24, n_test=8)
    task = pixel_task(tmp_path)
    batch = batch_of(task, "train")
    x = batch["net_input"]["src_values"]
    assert x.shape == (20, 16, 1)
    assert torch.allclose(x[3, :, 0], torch.from_numpy(train_images[3].reshape(-1) / 255).float())
    assert torch.equal(batch["target"], torch.arange(20) % 10)
    valid = batch_of(task, "valid")
    assert torch.equal(valid["target"], torch.arange(20, 24) % 10)  # the last 4 training images
    test = batch_of(task, "test")
    assert test["net_input"]["src_values"].shape == (8, 16, 1)

    perm = pixel_permutation(16, 7)
    assert np.array_equal(perm, pixel_permutation(16, 7))  # same seed, same permutation
    assert not np.array_equal(perm, pixel_permutation(16, 8))
    assert sorted(perm.tolist()) == list(range(16))
    permuted = batch_of(pixel_task(tmp_path, permute=True, permute_seed=7), "train")
    assert torch.equal(permuted["net_input"]["src_values"][:, :, 0], x[:, perm, 0])


def test_idx_round_trip(tmp_path):
    for dtype in (np.uint8, np.int32, np.float32, np.float64):
        array = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
        write_idx(tmp_path / "a.idx", array)
        back = read_idx(tmp_path / "a.idx")
        assert back.dtype == array.dtype and np.array_equal(back, array)
    (tmp_path / "b.idx").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05abc")
    with pytest.raises(InvalidDataRow, match="do not match"):
        read_idx(tmp_path / "b.idx")


@pytest.mark.parametrize("bad, message", [
    (np.nan, r"^invalid data in \S+train-images-idx3-ubyte.gz, row 5: contains NaN or inf$"),
    (np.inf, "row 5: contains NaN or inf"),
    (1.5, r"row 5: float pixels outside \[0, 1\]")])
def test_pixel_bad_values_name_the_row(tmp_path, bad, message):
    images, _ = write_pixels(tmp_path, images_dtype=np.float32)
    images[5, 2, 1] = bad
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    with pytest.raises(InvalidDataRow, match=message):
        pixel_task(tmp_path).load_dataset("train")


def test_pixel_bad_labels_and_options(tmp_path):
    write_pixels(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 2, 3, 12, 0, 0, 0, 0], np.uint8))
    with pytest.raises(InvalidDataRow, match=r"row 3: label 12 outside 0..9$"):
        pixel_task(tmp_path).load_dataset("test")
    with pytest.raises(InvalidOptionError, match=r"^invalid --valid-size=24: must be below"):
        pixel_task(tmp_path, valid_size=24).load_dataset("valid")
    with pytest.raises(InvalidOptionError, match="--data"):
        pixel_task(tmp_path / "missing")
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(InvalidOptionError, match=r"holding t10k-images-idx3-ubyte or .*\.gz$"):
        pixel_task(tmp_path).load_dataset("test")
    with pytest.raises(InvalidOptionError, match="--permute-seed"):
        pixel_task(tmp_path, permute_seed=-1)


@pytest.mark.parametrize("options, name", [
    ({"seq_len": 1}, "--seq-len=1"), ({"train_size": 0}, "--train-size=0"),
    ({"valid_size": -2}, "--valid-size=-2")])
def test_adding_bad_options(options, name):
    with pytest.raises(InvalidOptionError, match=f"^invalid {name}: must be"):
        adding_task(**options)


def valid_outputs(checkpoint: Path, head: str):
    """The trained model's outputs on the whole ``valid`` split and its targets."""
    models, _, task = checkpoint_utils.load_model_ensemble_and_task([str(checkpoint)])
    batch = batch_of(task, "valid")
    with torch.no_grad():
        out, _ = models[0].eval()(**batch["net_input"], features_only=True,
                                  classification_head_name=head)
    return out, batch["target"]


@pytest.mark.slow
def test_adding_problem_learns(tmp_path):
    """Length 8, 200 updates: the valid MSE (200 sequences) falls well below the 1/6 of the
    best constant prediction (1), which needs the two marked values picked out."""
    run_train(["--task", "adding_problem", "--seq-len", "8", "--train-size", "2000",
               "--valid-size", "200", "--arch", "durnn_classifier", "--criterion", "mse",
               "--pooling", "last", "--batch-size", "50", "--required-batch-size-multiple", "1",
               "--dropout", "0", "--embed-dropout", "0"] + TINY + common_train_args(tmp_path, 200))
    pred, target = valid_outputs(tmp_path / "checkpoint_last.pt", "regression_head")
    assert len(target) == 200
    assert ((target - 1) ** 2).mean() > 0.12  # the constant 1: about 1/6
    mse = ((pred.view(-1) - target) ** 2).mean().item()
    assert mse < 0.02, mse


def write_spikes(data_dir: Path, n_train: int, n_test: int, seed: int = 0):
    """4 x 4 images of dim noise (0-59) with one bright pixel (255) at flat position
    ``label`` (0-9): the class is the time step of the spike."""
    rng = np.random.default_rng(seed)
    data_dir.mkdir(parents=True)
    for prefix, n in [("train", n_train), ("t10k", n_test)]:
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 16), dtype=np.uint8)
        images[np.arange(n), labels] = 255
        write_idx(data_dir / f"{prefix}-images-idx3-ubyte.gz", images.reshape(n, 4, 4))
        write_idx(data_dir / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))


@pytest.mark.slow
def test_pixel_sequence_learns(tmp_path):
    """Permuted 4 x 4 images whose class is where the spike is, 100 updates: accuracy on 200
    valid images far above chance (10 classes)."""
    write_spikes(tmp_path / "data", n_train=1200, n_test=8)
    run_train([tmp_path / "data", "--task", "pixel_sequence", "--valid-size", "200", "--permute",
               "--arch", "durnn_classifier", "--criterion", "sentence_prediction",
               "--cell", "indrnn", "--batch-size", "50"] + TINY
              + common_train_args(tmp_path / "ckpt", 100))
    logits, target = valid_outputs(tmp_path / "ckpt" / "checkpoint_last.pt",
                                   "sentence_classification_head")
    assert logits.shape == (200, 10)
    accuracy = (logits.argmax(-1) == target).float().mean().item()
    assert accuracy > 0.5, accuracy


@pytest.mark.slow
def test_cli_data_error_is_one_line(tmp_path):
    images, _ = write_pixels(tmp_path, images_dtype=np.float64)
    images[2, 0, 0] = np.nan
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    result = run_cli("fairseq-train", [tmp_path, "--user-dir", PLUGIN, "--task", "pixel_sequence",
                                       "--arch", "durnn_classifier", "--criterion",
                                       "sentence_prediction", "--cpu", "--batch-size", "4",
                                       "--save-dir", tmp_path / "ckpt"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(
        "train-images-idx3-ubyte.gz, row 2: contains NaN or inf")
    assert "Traceback" not in result.stderr
