"""Mixed-precision training of ``durnn_lm`` through fairseq's own trainer, one run per precision.

Prints, per precision: updates made, how many logged losses / gradient norms were not finite,
the last logged loss, its difference from the fp32 run, and updates per second.

Precisions (fairseq 0.12):

- ``fp32``: the default.
- ``fp16`` (``--fp16``): fp16 weights and activations, an fp32 master copy, dynamic loss scale.
- ``memory-efficient-fp16`` (``--memory-efficient-fp16``): the same without the fp32 copy.
- ``amp`` (``--amp``): fp32 weights, ``torch.cuda.amp.autocast`` (fp16), loss scaling.
- ``bf16`` / ``memory-efficient-bf16``: fairseq-train's ``--bf16`` also sets ``--tpu``
  (``fairseq/options.py``) and then fails without torch_xla, so these runs set ``common.bf16``
  (and ``common.memory_efficient_bf16``) in the config, as ``fairseq-hydra-train ...
  common.bf16=true`` does.

``fp16``, ``memory-efficient-fp16`` and ``amp`` need CUDA; ``bf16`` also runs on the CPU.

    python examples/reliability/mixed_precision.py                       # GPU, synthetic data
    python examples/reliability/mixed_precision.py --data data-bin --updates 500
    python examples/reliability/mixed_precision.py --cpu --modes fp32,bf16 --updates 20
"""
import argparse
import json
import logging
import math
import random
import shutil
import time
from pathlib import Path

from fairseq import distributed_utils, options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq_cli import preprocess, train

HERE = Path(__file__).resolve().parent
PLUGIN = HERE.parents[1] / "durnn_plugin"
MODES = {  # precision -> (command-line flags, config fields set as fairseq-hydra-train would)
    "fp32": ([], {}),
    "fp16": (["--fp16"], {}),
    "memory-efficient-fp16": (["--memory-efficient-fp16"], {}),
    "amp": (["--amp"], {}),
    "bf16": ([], {"bf16": True}),
    "memory-efficient-bf16": ([], {"bf16": True, "memory_efficient_bf16": True}),
}


def synthetic_data(work: Path, lines: int = 3000, seed: int = 0) -> Path:
    """A corpus with some structure (word k is often followed by word k+1), binarized once."""
    dest = work / "data-bin"
    if (dest / "dict.txt").exists():
        return dest
    rng = random.Random(seed)
    text = work / "text"
    text.mkdir(parents=True, exist_ok=True)
    for split, n in [("train", lines), ("valid", lines // 10), ("test", lines // 10)]:
        rows = []
        for _ in range(n):
            k = rng.randrange(200)
            rows.append(" ".join(f"w{(k + i if rng.random() < 0.7 else rng.randrange(200)) % 200}"
                                 for i in range(rng.randrange(5, 30))))
        (text / f"{split}.txt").write_text("\n".join(rows) + "\n")
    preprocess.main(options.get_preprocessing_parser().parse_args(
        ["--only-source", "--destdir", str(dest), "--workers", "1"]
        + [a for s in ("train", "valid", "test") for a in (f"--{s}pref", str(text / f"{s}.txt"))]))
    return dest


def train_logs(log_file: Path):
    """The per-update records of a fairseq ``--log-file`` written with ``--log-format json``
    (one JSON object per line; epoch summaries have ``train_``-prefixed keys instead)."""
    records = []
    for line in log_file.read_text().splitlines():
        if line.startswith('{"') and '"loss"' in line:
            records.append({k: float(v) for k, v in json.loads(line).items()})
    return records


def add_lm_train_options(p: argparse.ArgumentParser, updates: int, embed_dim: int) -> None:
    """The command-line options that :func:`lm_train_argv` reads."""
    p.add_argument("--updates", type=int, default=updates)
    p.add_argument("--hidden-size", type=int, default=512)
    p.add_argument("--embed-dim", type=int, default=embed_dim)
    p.add_argument("--tokens-per-sample", type=int, default=128)
    p.add_argument("--max-tokens", type=int, default=4096)
    p.add_argument("--cpu", action="store_true")


def lm_train_argv(data: Path, save: Path, a) -> list:
    """fairseq-train options (no program name) of a short ``durnn_lm`` run on ``data`` into
    ``save``: 2 layers of ``a.hidden_size``, ``a.updates`` Adam updates, seed 1, one JSON record
    per update in ``save/log.txt``, no validation, ``--cpu`` if ``a.cpu``."""
    return [str(data), "--user-dir", str(PLUGIN), "--task", "language_modeling", "--arch",
            "durnn_lm", "--hidden-size", str(a.hidden_size), "--embed-dim", str(a.embed_dim),
            "--num-layers", "2", "--tokens-per-sample", str(a.tokens_per_sample),
            "--max-tokens", str(a.max_tokens), "--optimizer", "adam", "--lr", "0.002",
            "--clip-norm", "0.25", "--max-update", str(a.updates), "--seed", "1",
            "--log-format", "json", "--log-interval", "1", "--log-file", str(save / "log.txt"),
            "--no-progress-bar", "--save-dir", str(save), "--disable-validation",
            "--num-workers", "0"] + (["--cpu"] if a.cpu else [])


def run_mode(mode: str, data: Path, work: Path, a) -> dict:
    flags, fields = MODES[mode]
    save = work / mode
    shutil.rmtree(save, ignore_errors=True)
    save.mkdir(parents=True)
    argv = lm_train_argv(data, save, a) + ["--no-save"] + flags
    cfg = convert_namespace_to_omegaconf(
        options.parse_args_and_arch(options.get_training_parser(), argv))
    for key, value in fields.items():
        cfg.common[key] = value
    # the per-update JSON records are INFO messages of this logger (also when imported)
    logging.getLogger("fairseq.logging.progress_bar").setLevel(logging.INFO)
    start = time.perf_counter()
    try:
        distributed_utils.call_main(cfg, train.main)
    except Exception as error:  # report and go on with the other precisions
        return {"mode": mode, "error": f"{type(error).__name__}: {error}".splitlines()[0]}
    seconds = time.perf_counter() - start
    records = train_logs(save / "log.txt")
    bad = sum(not (math.isfinite(r["loss"]) and math.isfinite(r.get("gnorm", 0.0)))
              for r in records)
    return {"mode": mode, "updates": int(records[-1]["num_updates"]) if records else 0,
            "non_finite": bad, "loss": records[-1]["loss"] if records else float("nan"),
            "seconds": seconds}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, help="a fairseq-preprocess --only-source data-bin "
                   "(default: a synthetic corpus written under --work)")
    p.add_argument("--work", type=Path, default=HERE / "work" / "mixed_precision")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated, of: " + ", ".join(MODES))
    add_lm_train_options(p, updates=300, embed_dim=256)
    a = p.parse_args(argv)
    modes = a.modes.split(",")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        p.error(f"invalid --modes value {unknown[0]}: must be one of {', '.join(MODES)}")
    data = a.data or synthetic_data(a.work / "data")
    rows = [run_mode(m, data, a.work, a) for m in modes]
    fp32 = next((r["loss"] for r in rows if r["mode"] == "fp32" and "loss" in r), None)
    print("| precision | updates | non-finite losses/gnorms | last loss | vs fp32 | updates/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['mode']} | failed: {r['error']} | | | | |")
            continue
        diff = f"{r['loss'] - fp32:+.3f}" if fp32 is not None else ""
        print(f"| {r['mode']} | {r['updates']} | {r['non_finite']} | {r['loss']:.3f} | {diff} | "
              f"{r['updates'] / r['seconds']:.1f} |")
    return rows


if __name__ == "__main__":
    main()
