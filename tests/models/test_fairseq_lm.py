"""durnn_lm through fairseq: CLIs, checkpoints, incremental decoding, errors."""
import importlib
from argparse import Namespace

import pytest
import torch

from fairseq import checkpoint_utils, utils

from durnn_plugin.modules.constraints import spectral_norm
from fairseq_runs import (PLUGIN, REPO, TINY_MODEL, eval_lm_on, generate_from, preprocess_lm,
                          run_cli, train_lm)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return preprocess_lm(tmp_path_factory.mktemp("lm"))


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A tiny durnn_lm trained hard enough (lr, u near its bound) to touch the constraints."""
    save = tmp_path_factory.mktemp("ckpt")
    train_lm(data, save, "durnn_lm", TINY_MODEL + ["--short-rho", "0.5", "--u-gamma", "1.5",
                                                   "--u-time-steps", "2", "--dropout", "0"],
             updates=20)
    return save / "checkpoint_last.pt"


ARCHS = ["durnn_lm", "indrnn_lm", "dilated_durnn_lm"]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_train_eval_generate_each_arch(arch, data, tmp_path):
    train_lm(data, tmp_path, arch, TINY_MODEL + (["--num-layers", "3"] if "dilated" in arch else []))
    checkpoint = tmp_path / "checkpoint_last.pt"  # "best" is process-global state in fairseq
    result = eval_lm_on(data, checkpoint)
    assert 1.0 < result["perplexity"] < 200  # the vocabulary has 34 symbols
    beam = generate_from(data, checkpoint, tmp_path / "beam", ["--beam", "3"])
    non_empty = 24  # of the 30 valid lines, 6 are empty (fairseq skips those when generating)
    assert beam.count("\nH-") >= non_empty
    sampled = generate_from(data, checkpoint, tmp_path / "sample",
                            ["--sampling", "--beam", "1", "--sampling-topk", "5", "--seed", "3"])
    assert sampled.count("\nH-") >= non_empty


@pytest.mark.slow
def test_interactive_sampling(trained, data):
    out = run_cli("fairseq-interactive", [data, "--user-dir", PLUGIN, "--task", "language_modeling",
                                          "--path", trained, "--sampling", "--beam", "1",
                                          "--max-len-b", "5", "--cpu"], stdin="w1 w2\nw3\n")
    assert out.returncode == 0, out.stderr[-2000:]
    hyps = [line for line in out.stdout.splitlines() if line.startswith("H-")]
    assert len(hyps) == 2 and hyps[0].split("\t")[2].startswith("w1 w2")


def load(checkpoint):
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(checkpoint)])
    return models[0].eval(), task


@pytest.mark.slow
def test_checkpoint_holds_the_constraints(trained):
    state = torch.load(trained)  # torch's default (weights_only) loader
    bound = 1.5 ** (1 / 2) * (1 + 1e-7)  # the fp32 value nearest to the bound may lie above it
    us = [v for k, v in state["model"].items() if k.endswith(".u")]
    Us = [v for k, v in state["model"].items() if k.endswith(".U_s")]
    assert len(us) == 2 and len(Us) == 2
    assert max(u.abs().max().item() for u in us) <= bound
    assert max(u.abs().max().item() for u in us) > 0.9 * bound  # training reached the bound
    assert max(spectral_norm(U).item() for U in Us) <= 0.5 * (1 + 1e-5)
    model, _ = load(trained)
    for name, p in model.named_parameters():
        if name.endswith(".U_s"):
            assert spectral_norm(p) <= 0.5 * (1 + 1e-5)


@pytest.mark.slow
def test_incremental_decoding_equals_full_forward(trained):
    model, task = load(trained)
    torch.manual_seed(0)
    tokens = torch.randint(4, len(task.target_dictionary), (3, 9))
    full = model(tokens)[0]
    state = {}
    steps = [model.decoder(tokens[:, :t + 1], incremental_state=state)[0][:, -1]
             for t in range(tokens.shape[1])]
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_beam_reorder_picks_the_right_rows(trained):
    model, task = load(trained)
    torch.manual_seed(1)
    tokens = torch.randint(4, len(task.target_dictionary), (3, 6))
    state = {}
    for t in range(4):
        model.decoder(tokens[:, :t + 1], incremental_state=state)
    order = torch.tensor([2, 0, 0, 1])
    model.decoder.reorder_incremental_state_scripting(state, order)
    reordered = tokens[order]
    step = model.decoder(reordered[:, :5], incremental_state=state)[0][:, -1]
    full = model(reordered[:, :5])[0][:, -1]
    torch.testing.assert_close(step, full, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_padding_does_not_change_scores(trained):
    model, task = load(trained)
    pad = task.target_dictionary.pad()
    torch.manual_seed(2)
    tokens = torch.randint(4, len(task.target_dictionary), (2, 7))
    padded = tokens.clone()
    padded[1, 4:] = pad
    out = model(padded)[0]
    torch.testing.assert_close(out[1, :4], model(tokens[1:, :4])[0][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[0], model(tokens[:1])[0][0], atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_adaptive_softmax_and_tied_embeddings(data, tmp_path):
    train_lm(data, tmp_path / "a", "durnn_lm",
             TINY_MODEL + ["--adaptive-softmax-cutoff", "10,20", "--criterion", "adaptive_loss",
                           "--ddp-backend", "legacy_ddp"])
    assert eval_lm_on(data, tmp_path / "a" / "checkpoint_last.pt")["perplexity"] < 200
    train_lm(data, tmp_path / "t", "durnn_lm", TINY_MODEL + ["--share-input-output-embed"])
    model, _ = load(tmp_path / "t" / "checkpoint_last.pt")
    assert model.decoder.output_weight is None and model.decoder.project_out is not None


@pytest.mark.slow
def test_tensorboard_logdir_gets_event_files(data, tmp_path):
    train_lm(data, tmp_path / "ck", "durnn_lm", TINY_MODEL + ["--tensorboard-logdir", tmp_path / "tb"])
    assert list((tmp_path / "tb" / "train").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_hydra_train_with_configs_yaml(data, tmp_path):
    out = run_cli("fairseq-hydra-train", [
        "--config-dir", REPO / "configs", "--config-name", "durnn_lm", f"task.data={data}",
        "task.sample_break_mode=eos", "optimization.max_update=3", "model.hidden_size=16",
        "model.embed_dim=8", f"checkpoint.save_dir={tmp_path / 'ck'}", "common.cpu=true"],
        cwd=REPO)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert (tmp_path / "ck" / "checkpoint_last.pt").exists()
    (REPO / "hydra_train.log").unlink(missing_ok=True)


BAD_FLAGS = [
    (["--short-rho", "1.2"], "invalid --short-rho=1.2: must be in (0, 1)"),
    (["--selection", "gate"], "invalid --selection=gate: must be one of input+short, short, input, none"),
    (["--num-layers", "2", "--dilations", "1,2,4"],
     "invalid --dilations=1,2,4: must be one value per layer (2 layers, got 3 values)"),
    (["--hidden-size", "-4"], "invalid --hidden-size=-4: must be a positive integer"),
]


@pytest.mark.slow
@pytest.mark.parametrize("flags,message", BAD_FLAGS)
def test_bad_config_stops_with_one_line(flags, message, data, tmp_path):
    out = run_cli("fairseq-train", [data, "--user-dir", PLUGIN, "--task", "language_modeling",
                                    "--arch", "durnn_lm", "--optimizer", "adam",
                                    "--max-update", "2", "--max-tokens", "300", "--save-dir", tmp_path,
                                    "--cpu"] + flags)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == f"fairseq-train: error: {message}"
    assert not list(tmp_path.glob("*.pt"))


def test_importing_the_plugin_twice_is_harmless():
    import durnn_plugin

    for _ in range(2):
        utils.import_user_module(Namespace(user_dir=PLUGIN))
    importlib.reload(durnn_plugin)
    from fairseq.models import ARCH_MODEL_REGISTRY

    assert {"durnn_lm", "indrnn_lm", "dilated_durnn_lm"} <= set(ARCH_MODEL_REGISTRY)
