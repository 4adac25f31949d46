#!/usr/bin/env python3
"""Long-range benchmarks: DuRNN vs IndRNN vs LSTM (and DuRNN ablations) under one time budget.

    python examples/long_range/race.py adding --seq-len 1000 --budget-seconds 300
    python examples/long_range/race.py adding --seq-len 1000 --runs durnn,durnn-selection-none,durnn-short-rho-0.999,durnn-output-long
    python examples/long_range/race.py pixel --data /usr/share/datasets/fashion-mnist [--permute]

Every run is one ``fairseq-train`` (``--arch durnn_classifier``, same options except the run's
own, ``--seed 1``) stopped by ``--stop-time-hours``; the runs go through ``examples/runs.py``,
one after another (``--jobs N``: N at a time, each with ``--threads`` threads), with the options
of the other races (``--runs``, ``--work``, ``--skip-train``; ``--workdir`` and
``--report-only`` still work). The script reads fairseq's log: validation every
``--validate-every`` updates (adding: MSE on the fixed valid sequences, "solved" = MSE < 0.01;
pixel: accuracy on the first ``--valid-batches`` batches of the valid split), and writes under
``--work/<benchmark>/``: one folder per run (``train.log``, checkpoints), ``curves.png`` (valid
metric against updates and against seconds since fairseq-train's first log line) and
``results.md`` (table + the exact commands). With ``--test`` the best checkpoint of each run is
also scored on the whole test split (``examples/classification/evaluate.py``, its output in
``<run>/test.log``).
"""
import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from examples import runs  # noqa: E402  (the repository root, put first just above)

RUNS = {  # name -> options added to the common ones
    "durnn": ["--cell", "durnn"],
    "indrnn": ["--cell", "indrnn"],
    "lstm": ["--cell", "lstm"],
    "durnn-selection-none": ["--cell", "durnn", "--selection", "none"],
    # the bound must stay below 1 (StackOptions: short_rho in (0, 1)); 0.999 all but lifts it
    "durnn-short-rho-0.999": ["--cell", "durnn", "--short-rho", "0.999"],
    "durnn-output-long": ["--cell", "durnn", "--module-output", "long"],
}
SOLVED = 0.01  # adding problem: valid MSE below it
CHANCE_MSE = 1 / 6  # adding problem: the MSE of always predicting 1


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
             "--log-interval", 10, "--seed", 1, "--num-workers", 0]
    train += [] if args.gpu else ["--cpu"]
    return [str(a) for a in [Path(runs.BIN) / "fairseq-train", "--user-dir", runs.PLUGIN]
            + task + model + RUNS[name] + train + args.extra.split()]


def test_score(run: runs.Run) -> str:
    """evaluate.py's result line in its log ("test: ..."), "" if it holds none."""
    if not Path(run.log).exists():
        return ""
    lines = [line for line in Path(run.log).read_text().splitlines()
             if line.startswith("test: ")]
    return lines[-1] if lines else ""


def curves_panels(logs: dict, metric: str) -> list:
    """The valid metric against updates and against seconds, one curve per run (adding: on a
    log scale, with the solved line and the MSE of always predicting 1)."""
    lines, log_y = ((SOLVED, CHANCE_MSE), True) if metric == "mse" else ((), False)
    return [runs.Panel(xlabel, f"valid {metric}",
                       {name: [(p[i], p[2]) for p in log.curve(metric)]
                        for name, log in logs.items()}, log_y, lines)
            for i, xlabel in ((1, "updates"), (0, "seconds since fairseq-train's first log line"))]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("benchmark", choices=("adding", "pixel"))
    runs.add_options(ap, list(RUNS), ["durnn", "indrnn", "lstm"], "examples/long_range/work",
                     300)
    ap.add_argument("--seq-len", type=int, default=1000, help="adding: T")
    ap.add_argument("--valid-size", type=int, default=None,
                    help="valid sequences (adding, default 500) / held-out training images "
                    "(pixel, default 5000)")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist",
                    help="pixel: IDX dir")
    ap.add_argument("--permute", action="store_true", help="pixel: permuted pixels")
    ap.add_argument("--permute-seed", type=int, default=0)
    ap.add_argument("--valid-batches", type=int, default=10, help="pixel: valid batches scored")
    ap.add_argument("--num-layers", type=int, default=2)
    ap.add_argument("--hidden-size", type=int, default=128)
    ap.add_argument("--embed-dim", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--pooling", choices=("last", "mean"), default="last",
                    help="classifier input: the last step's output or the mean over steps")
    ap.add_argument("--u-last-eps", type=float, default=0.5,
                    help="the last recurrent layer's u starts in U(eps^(1/T), 2^(1/T)) "
                    "(long memory from the start, as the IndRNN paper does for these "
                    "tasks; 0: U(0, 2^(1/T)) like the other layers)")
    ap.add_argument("--validate-every", type=int, default=50)
    ap.add_argument("--extra", default="", help="more fairseq-train options for every run")
    ap.add_argument("--test", action="store_true", help="score best checkpoints on test")
    ap.add_argument("--gpu", action="store_true", help="train on CUDA (default: --cpu)")
    ap.add_argument("--tag", default=None, help="output folder name (default from options)")
    return ap


def main():
    ap = parser()
    args = ap.parse_args()
    names = runs.selected(ap, args, list(RUNS))
    tag = args.tag or (f"adding_T{args.seq_len}" if args.benchmark == "adding" else
                       "pixel_" + Path(args.data).name + ("_permuted" if args.permute else ""))
    out = Path(args.work).resolve() / tag
    task, metric, higher = benchmark_args(args)
    plan = [runs.Run(name, tuple(command(args, name, task, out / name)),
                     str(out / name / "train.log"), args.threads) for name in names]
    if args.count_only:
        for run in plan:
            print(f"{run.name:24s} {runs.count_parameters(run.command[1:]):,}")
        return
    codes = {}
    if not args.skip_train:
        for name in names:  # fresh, nothing resumed
            shutil.rmtree(out / name, ignore_errors=True)
        codes = runs.run_all(plan, args.jobs)
    logs = {run.name: runs.read_log(run.log) for run in plan}
    tests = [runs.Run(f"{name} test", (sys.executable, str(Path(runs.REPO) / "examples" /
                                                            "classification" / "evaluate.py"),
                                       "--path", str(out / name / "checkpoint_best.pt")),
                      str(out / name / "test.log"), args.threads)
             for name in names if args.test and (out / name / "checkpoint_best.pt").exists()]
    codes.update(runs.run_all(tests, args.jobs))
    scores = {run.name.split()[0]: test_score(run) for run in tests}
    solved = metric == "mse"
    title = (f"adding problem T={args.seq_len}" if args.benchmark == "adding" else tag) + \
        f", {args.budget_seconds:g} s per run, {'GPU' if args.gpu else 'CPU'}"
    runs.plot(str(out / "curves.png"), curves_panels(logs, metric), title)
    header = ["run", "params", "updates", "training s", f"best valid {metric}",
              f"last valid {metric}"] + ["solved at update"] * solved + ["test"] * bool(tests)
    rows = []
    for name, log in logs.items():
        curve = log.curve(metric)
        if not curve:
            rows.append([name, log.params_shown(), f"failed, see {name}/train.log"]
                        + [""] * (len(header) - 3))
            continue
        best = (max if higher else min)(v for _, _, v in curve)
        row = [name, log.params_shown(), curve[-1][1], log.seconds or "?", f"{best:g}",
               f"{curve[-1][2]:g}"]
        if solved:
            hit = [u for _, u, v in curve if v < SOLVED]
            row.append(hit[0] if hit else "no")
        if tests:
            row.append(scores.get(name, ""))
        rows.append(row)
        print(f"{name}: valid {metric} " + ", ".join(f"{v:g}@{u}" for _, u, v in curve[-5:]))
    machine = runs.machine(args.threads, args.jobs, len(plan))
    text = "\n".join([f"# {title}", "",
                      f"Machine: {machine}, {runs.started(logs.values()):%Y-%m-%d} UTC", "",
                      *runs.markdown_table(header, rows), "", "Commands:", "", "```",
                      *(log.command or runs.shown(run) for run, log in zip(plan, logs.values())),
                      *(runs.shown(run) for run in tests), "```", ""])
    (out / "results.md").write_text(text)
    print(text)
    runs.check(plan + tests, codes)


if __name__ == "__main__":
    main()
