"""Run-to-run determinism of ``durnn_lm`` training on one device: the same ``fairseq-train``
command run twice by default and twice with ``DURNN_DETERMINISTIC=1``, parameters compared bit
for bit.

    python examples/reliability/determinism.py                      # GPU, synthetic data
    python examples/reliability/determinism.py --cpu --updates 3    # a smoke run on the CPU

The model uses every op that docs/reliability.md (Determinism) lists as non-deterministic on GPU by default: the
embedding backward, a dilated stack (``gather``), adaptive softmax (``index_put`` with
accumulation), ``NLLLoss``, and the DuRNN short-term part through cuDNN; dropout is on (fairseq
reseeds it each update). Prints one row per mode: whether the two runs' final parameters are
bit-identical, the largest absolute parameter difference, and each run's last logged loss.
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

import torch
from mixed_precision import HERE, add_lm_train_options, lm_train_argv, synthetic_data, train_logs

FAIRSEQ_TRAIN = Path(sys.executable).parent / "fairseq-train"
MODES = {"default": {}, "DURNN_DETERMINISTIC=1": {"DURNN_DETERMINISTIC": "1"}}


def train(data: Path, save: Path, env: dict, a) -> float:
    """One fairseq-train run into ``save``; its last logged loss."""
    save.mkdir(parents=True, exist_ok=True)
    argv = [str(FAIRSEQ_TRAIN)] + lm_train_argv(data, save, a) + [
        "--dilations", "1,2", "--dropout", "0.2", "--embed-dropout", "0.1", "--criterion",
        "adaptive_loss", "--adaptive-softmax-cutoff", "50,100", "--no-epoch-checkpoints",
        "--ddp-backend", "legacy_ddp"]
    (save / "log.txt").unlink(missing_ok=True)
    done = subprocess.run(argv, env=dict(os.environ, **env), text=True, capture_output=True)
    if done.returncode != 0:
        sys.exit(f"fairseq-train failed in {save}:\n{done.stderr[-3000:]}")
    return train_logs(save / "log.txt")[-1]["loss"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, default=HERE / "work" / "determinism")
    add_lm_train_options(p, updates=100, embed_dim=128)
    a = p.parse_args(argv)
    data = synthetic_data(a.work / "data")
    device = "cpu" if a.cpu else torch.cuda.get_device_name()
    print(f"{a.updates} updates, {device}, torch {torch.__version__}")
    print("| mode | parameters bit-identical | max abs difference | last loss, run 1 | run 2 |")
    print("|---|---|---:|---:|---:|")
    rows = []
    for mode, env in MODES.items():
        saves = [a.work / mode.replace("=", "-") / f"run{i}" for i in (1, 2)]
        losses = [train(data, save, env, a) for save in saves]
        first, second = (torch.load(s / "checkpoint_last.pt")["model"] for s in saves)
        same = all(torch.equal(first[k], second[k]) for k in first)
        diff = max((first[k].double() - second[k].double()).abs().max().item() for k in first)
        rows.append({"mode": mode, "identical": same, "max_diff": diff, "losses": losses})
        print(f"| {mode} | {'yes' if same else 'no'} | {diff:.3g} | {losses[0]:.6f} | "
              f"{losses[1]:.6f} |", flush=True)
    return rows


if __name__ == "__main__":
    main()
