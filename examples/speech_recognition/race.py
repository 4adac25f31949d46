#!/usr/bin/env python3
"""Speech races on CPU: ``s2t_durnn`` against fairseq's speech models, and the augmentation
ablation; a WER table per held-out voice and learning curves.

Run from the repository root, with the project's venv::

    .venv/bin/python -m examples.speech_recognition.race race --count-only   # parameters only
    .venv/bin/python -m examples.speech_recognition.race race --jobs 2 --threads 1     # 4 x 20 min
    .venv/bin/python -m examples.speech_recognition.race ablation --jobs 2 --threads 1 # 10 x 10

Plans (:data:`PLANS`):

- ``race``: ``s2t_durnn_s`` vs fairseq's ``s2t_transformer_xs`` and ``s2t_berard``, resized so
  that their parameter counts are within 5% of ``s2t_durnn_s``'s (:data:`RACE`; checked on the
  data's dictionary before any training, the run is refused otherwise), on the same data
  (``prepare_speech.py`` defaults plus ``--prepare-args``), 20 minutes each; a fourth run,
  ``durnn-ctc``, is ``s2t_durnn_s`` with an auxiliary CTC loss on its encoder
  (``--encoder-ctc``, fairseq's ``label_smoothed_cross_entropy_with_ctc``, weight 0.3).
- ``ablation``: ``s2t_durnn_s`` on the digits and numbers texts (:data:`ABLATION_TEXTS`), one
  data directory per augmentation option (:data:`ABLATION`, one option at a time, then all
  together), 10 minutes each.

Every run is ``run_digits.sh`` with ``PREPARE=0`` on a data directory prepared once per
variant (``WORK/<plan>/data-<variant>``, the speech itself synthesised once in
``WORK/<plan>/wav``), so all runs share its training and decoding settings: ``--seed 1``, Adam
2e-3 with 200 warm-up updates, ``--stop-time-hours`` = the budget (fairseq's clock, from the
trainer's creation, validation and saving included), beam 5. ``--jobs N`` runs N at a time,
each with ``--threads`` threads (the table's header states both). Outputs:
``WORK/<plan>/<run>/`` (``run_digits.sh``'s), ``WORK/<plan>/table.md`` (WER per test set and
held-out voice, parameters, updates, the machine, the date, every command) and
``WORK/<plan>/curves.png`` (dev loss and accuracy against seconds since the fairseq-train
process started, from its log's time stamps). ``--skip-train`` rebuilds table and plot from
the runs' ``results.txt`` and logs.
"""
import argparse
import datetime
import logging
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PARAM_TOLERANCE = 0.05
RUN_SCRIPT = "examples/speech_recognition/run_digits.sh"


@dataclass(frozen=True)
class Run:
    name: str
    arch: str
    model_args: str
    data: str  # data variant name
    prepare_args: str
    train_args: str = ""  # more fairseq-train options (run_digits.sh's TRAIN_ARGS)


# parameters within 5% of s2t_durnn_s with a 256-entry dictionary (tests check it); s2t_berard's
# decoder starts from the mean encoder output, so --decoder-hidden-dim = 2 x --lstm-size
RACE = {
    "durnn": ("s2t_durnn_s", "", ""),
    "transformer": ("s2t_transformer_xs",
                    "--encoder-embed-dim 128 --decoder-embed-dim 128 --encoder-layers 3 "
                    "--decoder-layers 2 --encoder-ffn-embed-dim 256 --decoder-ffn-embed-dim 256 "
                    "--encoder-attention-heads 4 --decoder-attention-heads 4 --conv-channels 128",
                    ""),
    "berard": ("s2t_berard",
               "--input-layers [128,64] --num-blstm-layers 3 --lstm-size 84 "
               "--decoder-num-layers 1 --decoder-hidden-dim 168 --attention-dim 168", ""),
    # the trial of an auxiliary CTC loss on the encoder (its output layer is left out of the
    # count: decoding does not use it)
    "durnn-ctc": ("s2t_durnn_s", "--encoder-ctc",
                  "--criterion label_smoothed_cross_entropy_with_ctc --ctc-weight 0.3"),
}
ABLATION_TEXTS = ("--train-texts digit=20,digits=150,number=150,time=40,date=40 "
                  "--eval-texts digit=11,digits=40,number=40,time=15,date=15")
ABLATION = {
    "none": "",
    "speed": "--speed-perturb 0.9,1.0,1.1",
    "tempo": "--tempo-jitter 0.1",
    "pitch": "--pitch-jitter 150",
    "noise": "--noise-prob 0.5 --snr-db 5,30",
    "reverb": "--reverb-prob 0.3",
    "telephone": "--telephone-prob 0.3",
    "gain": "--gain-db 20",
    "no-specaugment": "--no-specaugment",
    "all": "--speed-perturb 0.9,1.0,1.1 --tempo-jitter 0.1 --pitch-jitter 150 --noise-prob 0.5 "
           "--reverb-prob 0.3 --telephone-prob 0.3 --gain-db 20",
}
PLANS = {"race": 20, "ablation": 10}  # minutes per run
VALID = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \| INFO \| \S+ \| .*valid on 'dev' "
                   r"subset \| loss ([0-9.]+) .*\| accuracy ([0-9.]+) .*\| num_updates (\d+)")
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \|")
RESULT_SET = re.compile(r"^(test_\w+) \(fairseq-generate: (.*)\):$")
RESULT_VOICE = re.compile(r"^\s+(\S+)\s+WER\s+([0-9.]+) \((\d+) words, (\d+) utterances\)$")


def plan_runs(plan: str, prepare_args: str = "") -> List[Run]:
    if plan == "race":
        return [Run(name, arch, args, "race", prepare_args, train_args)
                for name, (arch, args, train_args) in RACE.items()]
    return [Run(name, "s2t_durnn_s", "", name, f"{ABLATION_TEXTS} {args} {prepare_args}".strip())
            for name, args in ABLATION.items()]


def build_model(data_dir: str, arch: str, model_args: str):
    """``arch`` with ``model_args`` built by fairseq's ``speech_to_text`` task on ``data_dir``
    (its ``config.yaml`` and dictionary)."""
    import durnn_plugin  # noqa: F401
    from fairseq import options, tasks

    for name in ("fairseq", "durnn_plugin", "hydra", "matplotlib"):  # build and plot quietly
        logging.getLogger(name).setLevel(logging.WARNING)
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser(default_task="speech_to_text")
    args = options.parse_args_and_arch(parser, [data_dir, "--task", "speech_to_text",
                                                "--arch", arch, *shlex.split(model_args)])
    cfg = convert_namespace_to_omegaconf(args)
    return tasks.setup_task(cfg.task).build_model(cfg.model)


def param_count(data_dir: str, arch: str, model_args: str) -> int:
    """Parameters used in decoding (a CTC output layer, used in training only, is left out)."""
    return sum(p.numel() for name, p in build_model(data_dir, arch, model_args).named_parameters()
               if "ctc_proj" not in name)


def check_counts(counts: Dict[str, int]) -> str:
    """One line per run, ValueError if a count is more than 5% away from the first's."""
    ref_name, ref = next(iter(counts.items()))
    lines = []
    for name, n in counts.items():
        lines.append(f"{name:<16} {n:>10,} parameters ({100 * (n / ref - 1):+.1f}% vs {ref_name})")
        if abs(n / ref - 1) > PARAM_TOLERANCE:
            raise ValueError(f"{name}: {n:,} parameters, {100 * (n / ref - 1):+.1f}% vs "
                             f"{ref_name}'s {ref:,}; must be within 5% (resize it in RACE)")
    return "\n".join(lines)


def learning_curve(log_path: str) -> List[Tuple[float, int, float, float]]:
    """``[(seconds since the log's first line, updates, dev loss, dev accuracy)]`` from a
    fairseq-train log (``--log-format simple``)."""
    start, points = None, []
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            stamp = STAMP.match(line)
            if stamp and start is None:
                start = datetime.datetime.fromisoformat(stamp.group(1))
            m = VALID.match(line)
            if m:
                t = (datetime.datetime.fromisoformat(m.group(1)) - start).total_seconds()
                points.append((t, int(m.group(4)), float(m.group(2)), float(m.group(3))))
    return points


def read_results(path: str) -> Dict[str, Dict[str, Tuple[float, int]]]:
    """``{test set: {voice or "all": (WER %, words)}}`` from ``run_digits.sh``'s
    ``results.txt``."""
    out, current = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            s = RESULT_SET.match(line)
            if s:
                current = out.setdefault(s.group(1), {})
                continue
            v = RESULT_VOICE.match(line)
            if v and current is not None:
                current[v.group(1)] = (float(v.group(2)), int(v.group(3)))
    return out


def table(runs: Sequence[Run], results: Dict[str, dict], extra: Dict[str, str]) -> str:
    """Markdown: one table per test set, a row per run, a column per held-out voice."""
    sets = sorted({s for r in results.values() for s in r})
    lines = []
    for test_set in sets:
        voices = sorted({v for r in results.values() for v in r.get(test_set, {}) if v != "all"})
        lines += [f"**{test_set}** (WER %)", "",
                  "| run | " + " | ".join(voices) + " | all | parameters | updates |",
                  "|---" * (len(voices) + 4) + "|"]
        for run in runs:
            got = results.get(run.name, {}).get(test_set, {})
            cells = [f"{got[v][0]:.2f}" if v in got else "-" for v in voices + ["all"]]
            lines.append(f"| {run.name} | " + " | ".join(cells) + f" | {extra.get(run.name, '')} |")
        lines.append("")
    return "\n".join(lines)


def plot(curves: Dict[str, list], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for name, points in curves.items():
        if points:
            t, _, loss, acc = zip(*points)
            loss_ax.plot(t, loss, ".-", label=name)
            acc_ax.plot(t, acc, ".-", label=name)
    for ax, label in ((loss_ax, "dev loss"), (acc_ax, "dev token accuracy %")):
        ax.set_xlabel("seconds since fairseq-train started")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    loss_ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def run_all(runs: Sequence[Run], envs: Dict[str, dict], commands: Sequence[str], root: str,
            jobs: int, script: str = RUN_SCRIPT) -> None:
    """``script`` (``run_digits.sh``) for every run, ``jobs`` at a time, each with its
    environment from ``envs``; each run's output goes to ``ROOT/<run>.out``. Raises
    CalledProcessError naming the first run that failed, after the others have ended."""
    pending, active = list(zip(runs, commands)), []
    while pending or active:
        while pending and len(active) < jobs:
            run, cmd = pending.pop(0)
            print(f"== {run.name}: {cmd}", flush=True)
            out = open(os.path.join(root, f"{run.name}.out"), "w", encoding="utf-8")
            active.append((run, subprocess.Popen(
                ["bash", script], cwd=REPO,
                env=envs[run.name], stdout=out, stderr=subprocess.STDOUT), out))
        time.sleep(2)
        for entry in [a for a in active if a[1].poll() is not None]:
            run, proc, out = entry
            active.remove(entry)
            out.close()
            print(f"== {run.name}: exit {proc.returncode}", flush=True)
            if proc.returncode:
                for _, other, _ in active:
                    other.wait()
                raise subprocess.CalledProcessError(proc.returncode, f"run {run.name}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("plan", choices=sorted(PLANS))
    ap.add_argument("--minutes", type=float, default=None,
                    help="training budget per run (default: race 20, ablation 10)")
    ap.add_argument("--work", default=os.path.join(HERE, "work"),
                    help="work directory; the plan's files go to WORK/PLAN (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per run")
    ap.add_argument("--jobs", type=int, default=1,
                    help="runs at a time (default 1; jobs x threads should not exceed the cores)")
    ap.add_argument("--only", default="", help="comma-separated run names (default: all)")
    ap.add_argument("--prepare-args", default="",
                    help="more prepare_speech.py options for every data variant")
    ap.add_argument("--count-only", action="store_true",
                    help="prepare the data, print the parameter counts, train nothing")
    ap.add_argument("--skip-train", action="store_true",
                    help="rebuild table.md and curves.png from existing runs")
    args = ap.parse_args(argv)

    runs = plan_runs(args.plan, args.prepare_args)
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - {r.name for r in runs})
    if unknown:
        ap.error(f"--only {args.only}: unknown runs {unknown}; allowed: "
                 f"{', '.join(r.name for r in runs)}")
    runs = [r for r in runs if not names or r.name in names]
    minutes = args.minutes if args.minutes is not None else PLANS[args.plan]
    root = os.path.abspath(os.path.join(args.work, args.plan))
    python = sys.executable
    shown_python = os.path.relpath(python, REPO) if python.startswith(REPO + os.sep) else python
    commands = []

    def data_dir(run):
        return os.path.join(root, f"data-{run.data}")

    if not args.skip_train:
        for run in {r.data: r for r in runs}.values():
            cmd = [shown_python, "-m", "examples.speech_recognition.prepare_speech",
                   "--workdir", root, "--data-dir", data_dir(run),
                   *shlex.split(run.prepare_args)]
            commands.append(shlex.join(cmd))
            subprocess.run([python, *cmd[1:]], cwd=REPO, check=True)
    counts = {r.name: param_count(data_dir(r), r.arch, r.model_args) for r in runs}
    try:
        print(check_counts(counts), flush=True)
    except ValueError as err:
        sys.exit(f"race.py: error: {err}")
    if args.count_only:
        return
    envs = {}
    for run in runs:
        work = os.path.join(root, run.name)
        envs[run.name] = dict(os.environ, ARCH=run.arch, MODEL_ARGS=run.model_args, WORK=work,
                              DATA=data_dir(run), PREPARE="0", THREADS=str(args.threads),
                              TRAIN_MINUTES=f"{minutes:g}", TRAIN_ARGS=run.train_args,
                              VENV=os.path.dirname(os.path.dirname(python)))
        commands.append(" ".join(f"{k}={shlex.quote(envs[run.name][k])}" for k in
                                 ("ARCH", "MODEL_ARGS", "TRAIN_ARGS", "WORK", "DATA", "PREPARE",
                                  "THREADS", "TRAIN_MINUTES"))
                        + f" bash {RUN_SCRIPT}")
    if not args.skip_train:
        run_all(runs, envs, commands[-len(runs):], root, args.jobs)
    results, curves, extra = {}, {}, {}
    for run in runs:
        work = envs[run.name]["WORK"]
        results[run.name] = read_results(os.path.join(work, "results.txt"))
        curves[run.name] = learning_curve(os.path.join(work, "logs", "train.log"))
        updates = curves[run.name][-1][1] if curves[run.name] else "-"
        extra[run.name] = f"{counts[run.name]:,} | {updates}"
    header = (f"{args.plan}, {minutes:g} min per run, {args.threads} threads per run, "
              f"{args.jobs} run(s) at a time, "
              f"{platform.processor() or platform.machine()} ({os.cpu_count()} CPUs), "
              f"{datetime.date.today().isoformat()}\n\n")
    text = header + table(runs, results, extra) + "\ncommands:\n\n" + "\n".join(
        f"    {c}" for c in commands) + "\n"
    with open(os.path.join(root, "table.md"), "w", encoding="utf-8") as f:
        f.write(text)
    plot(curves, os.path.join(root, "curves.png"))
    print(text + f"\n{os.path.join(root, 'table.md')}, {os.path.join(root, 'curves.png')}")


if __name__ == "__main__":
    main()
