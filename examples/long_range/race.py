#!/usr/bin/env python3
"""Long-range benchmarks: DuRNN vs IndRNN vs LSTM (and DuRNN ablations) under one time budget.

    python examples/long_range/race.py adding --seq-len 1000 --budget-seconds 300
    python examples/long_range/race.py adding --seq-len 1000 --runs durnn,durnn-selection-none,durnn-short-rho-0.999,durnn-output-long
    python examples/long_range/race.py pixel --data /usr/share/datasets/fashion-mnist [--permute]

Every run is one ``fairseq-train`` (``--arch durnn_classifier``, same options except the run's
own, ``--seed 1``) stopped by ``--stop-time-hours``; runs go one after another. The script
reads fairseq's log: validation every ``--validate-every`` updates (adding: MSE on the fixed
valid sequences, "solved" = MSE < 0.01; pixel: accuracy on the first ``--valid-batches``
batches of the valid split), and writes under ``--workdir/<benchmark>/``: one folder per run
(``train.log``, checkpoints), ``curves.png`` (valid metric against updates and against
seconds) and ``results.md`` (table + the exact commands). With ``--test`` the best checkpoint
of each run is also scored on the whole test split (``examples/classification/evaluate.py``).
"""
import argparse
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

RUNS = {  # name -> options added to the common ones
    "durnn": ["--cell", "durnn"],
    "indrnn": ["--cell", "indrnn"],
    "lstm": ["--cell", "lstm"],
    "durnn-selection-none": ["--cell", "durnn", "--selection", "none"],
    # the bound must stay below 1 (StackOptions: short_rho in (0, 1)); 0.999 all but lifts it
    "durnn-short-rho-0.999": ["--cell", "durnn", "--short-rho", "0.999"],
    "durnn-output-long": ["--cell", "durnn", "--module-output", "long"],
}
VALID = re.compile(r"\| valid \| .*?\| (?:mse|accuracy) ([0-9.e+-]+) .*?\| num_updates (\d+)")
WALL = re.compile(r"\| train_inner \| .*?num_updates=(\d+),.*?, wall=(\d+)")
PARAMS = re.compile(r"num\. shared model params: ([0-9,]+)")
DONE = re.compile(r"done training in ([0-9.]+) seconds")


def benchmark_args(args) -> tuple:
    """(fairseq options of the benchmark, metric name, higher is better)."""
    if args.benchmark == "adding":
        return (["--task", "adding_problem", "--seq-len", args.seq_len, "--train-size", 100000,
                 "--valid-size", args.valid_size or 500, "--criterion", "mse"], "mse", False)
    task = [args.data, "--task", "pixel_sequence", "--valid-size", args.valid_size or 5000,
            "--criterion", "sentence_prediction",
            "--max-valid-steps", args.valid_batches]
    if args.permute:
        task += ["--permute", "--permute-seed", args.permute_seed]
    return task, "accuracy", True


def command(args, name: str, task: list, save_dir: Path) -> list:
    model = ["--arch", "durnn_classifier", "--num-layers", args.num_layers,
             "--hidden-size", args.hidden_size, "--embed-dim", args.embed_dim,
             "--pooling", args.pooling, "--dropout", "0", "--embed-dropout", "0",
             "--u-last-eps", args.u_last_eps]
    train = ["--optimizer", "adam", "--lr", args.lr, "--clip-norm", "1.0",
             "--batch-size", args.batch_size, "--stop-time-hours", args.budget_seconds / 3600,
             "--max-epoch", 1000, "--validate-interval-updates", args.validate_every,
             "--save-dir", save_dir, "--no-epoch-checkpoints", "--log-format", "simple",
             "--log-interval", 10, "--seed", 1, "--num-workers", 0] + ([] if args.gpu else ["--cpu"])
    return [str(a) for a in [BIN / "fairseq-train", "--user-dir", REPO / "durnn_plugin"]
            + task + model + RUNS[name] + train + args.extra.split()]


def parse(log: str):
    """(valid curve [(updates, seconds, value)], parameter count, training seconds); a point's
    seconds are those of the last training log line at or before its update (None if none)."""
    walls = {int(u): int(w) for u, w in WALL.findall(log)}
    curve = []
    for value, updates in VALID.findall(log):
        updates = int(updates)
        known = [u for u in walls if u <= updates]
        curve.append((updates, walls[max(known)] if known else None, float(value)))
    params, done = PARAMS.search(log), DONE.search(log)
    seconds = float(done.group(1)) if done else None
    if curve and curve[-1][1] is None:  # ended before its first training log line
        curve[-1] = (curve[-1][0], seconds, curve[-1][2])
    return curve, params.group(1) if params else "?", seconds


def plot(results: dict, metric: str, path: Path, title: str, solved=None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, (curve, _, _) in results.items():
        if curve:
            axes[0].plot([c[0] for c in curve], [c[2] for c in curve], marker=".", label=name)
            timed = [c for c in curve if c[1] is not None]
            axes[1].plot([c[1] for c in timed], [c[2] for c in timed], marker=".", label=name)
    for ax, xlabel in zip(axes, ("updates", "seconds (training wall clock)")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"valid {metric}")
        if solved is not None:
            ax.axhline(solved, color="gray", linestyle="--", linewidth=1)
            ax.axhline(1 / 6, color="gray", linestyle=":", linewidth=1)
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("benchmark", choices=("adding", "pixel"))
    parser.add_argument("--runs", default="durnn,indrnn,lstm",
                        help="comma-separated, from: " + ", ".join(RUNS))
    parser.add_argument("--budget-seconds", type=float, default=300)
    parser.add_argument("--seq-len", type=int, default=1000, help="adding: T")
    parser.add_argument("--valid-size", type=int, default=None,
                        help="valid sequences (adding, default 500) / held-out training images "
                             "(pixel, default 5000)")
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="pixel: IDX dir")
    parser.add_argument("--permute", action="store_true", help="pixel: permuted pixels")
    parser.add_argument("--permute-seed", type=int, default=0)
    parser.add_argument("--valid-batches", type=int, default=10, help="pixel: valid batches scored")
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--embed-dim", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--pooling", choices=("last", "mean"), default="last",
                        help="classifier input: the last step's output or the mean over steps")
    parser.add_argument("--u-last-eps", type=float, default=0.5,
                        help="the last recurrent layer's u starts in U(eps^(1/T), 2^(1/T)) "
                             "(long memory from the start, as the IndRNN paper does for these "
                             "tasks; 0: U(0, 2^(1/T)) like the other layers)")
    parser.add_argument("--validate-every", type=int, default=50)
    parser.add_argument("--extra", default="", help="more fairseq-train options for every run")
    parser.add_argument("--test", action="store_true", help="score best checkpoints on test")
    parser.add_argument("--gpu", action="store_true", help="train on CUDA (default: --cpu)")
    parser.add_argument("--workdir", default="examples/long_range/work")
    parser.add_argument("--tag", default=None, help="output folder name (default from options)")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: rebuild results.md and curves.png from the logs")
    args = parser.parse_args()
    names = args.runs.split(",")
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        parser.error(f"unknown --runs {','.join(unknown)}; known: {', '.join(RUNS)}")
    tag = args.tag or (f"adding_T{args.seq_len}" if args.benchmark == "adding" else
                       "pixel_" + Path(args.data).name + ("_permuted" if args.permute else ""))
    out = Path(args.workdir) / tag
    out.mkdir(parents=True, exist_ok=True)
    task, metric, higher = benchmark_args(args)
    evaluate = [sys.executable, str(REPO / "examples" / "classification" / "evaluate.py")]
    results, commands, tests = {}, [], {}
    for name in names:
        save_dir = out / name
        cmd = command(args, name, task, save_dir)
        commands.append(" ".join(cmd))
        print(f"== {name}: {' '.join(RUNS[name])}", flush=True)
        if not args.report_only:
            subprocess.run(["rm", "-rf", str(save_dir)], check=True)  # fresh, nothing resumed
            save_dir.mkdir(parents=True)
            with open(save_dir / "train.log", "w") as log:
                subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
        results[name] = parse((save_dir / "train.log").read_text())
        if args.test and (save_dir / "checkpoint_best.pt").exists():
            line = subprocess.run(evaluate + ["--path", str(save_dir / "checkpoint_best.pt")],
                                  capture_output=True, text=True).stdout.strip()
            tests[name] = line
        curve = results[name][0]
        print(f"   valid {metric}: " + ", ".join(f"{v:g}@{u}" for u, _, v in curve[-5:]), flush=True)

    solved = 0.01 if metric == "mse" else None
    title = (f"adding problem T={args.seq_len}" if args.benchmark == "adding" else tag) + \
        f", {args.budget_seconds:g} s per run, {'GPU' if args.gpu else 'CPU'}"
    plot(results, metric, out / "curves.png", title, solved)
    rows = [f"| run | params | updates | training s | best valid {metric} | last valid {metric} |"
            + (" solved at update |" if solved else "") + (" test |" if tests else ""),
            "|---|---:|---:|---:|---:|---:|" + ("---:|" if solved else "") + ("---|" if tests else "")]
    for name, (curve, params, seconds) in results.items():
        if not curve:
            rows.append(f"| {name} | {params} | failed, see {name}/train.log |")
            continue
        best = (max if higher else min)(v for _, _, v in curve)
        row = f"| {name} | {params} | {curve[-1][0]} | {seconds} | {best:g} | {curve[-1][2]:g} |"
        if solved:
            hit = [u for u, _, v in curve if v < solved]
            row += f" {hit[0] if hit else 'no'} |"
        if tests:
            row += f" {tests.get(name, '')} |"
        rows.append(row)
    text = "\n".join([f"# {title}", "", *rows, "", "Commands:", "", "```",
                      *commands, "```", ""])
    (out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
