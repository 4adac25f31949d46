"""One runner for the recipes' races: a plan of runs, at most N at a time, one log per run;
fairseq-train's log read on one time base; the tables, the learning curves, parameter counts.

A :class:`Run` is a name, a command (any: ``fairseq-train``, ``run_digits.sh``, an evaluation
tool), the environment it adds, its thread count (``OMP_NUM_THREADS`` = ``MKL_NUM_THREADS``)
and its log. :func:`run_all` starts the plan's runs in order, at most ``jobs`` at a time, each
from the repository root with its stdout and stderr in its log (whose first line is the
command, as :func:`shown` writes it), and returns every run's exit status; :func:`check` then
stops naming each run that failed.

Time base: :func:`read_log` reads fairseq-train's ``--log-format simple`` log, whose lines
fairseq stamps to the second; a validation is at the seconds from the log's first stamped line
to its ``valid on`` line: training, validation and checkpoint saving since fairseq-train began
logging (its start-up, about the same for every run, left out).

The recipes' races (``language_model/compare.py``, ``speech_recognition/race.py``,
``long_range/race.py``) keep only their plans and metrics and share the options of
:func:`add_options`.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN = os.path.join(REPO, "durnn_plugin")
BIN = os.path.dirname(sys.executable)


@dataclass(frozen=True)
class Run:
    name: str
    command: Tuple[str, ...]
    log: str  # stdout and stderr of the command
    threads: int = 2
    env: Mapping[str, str] = field(default_factory=dict)  # added to this process's


def rel(path: str) -> str:
    """``path`` relative to the repository root when it lies below it."""
    path = str(path)
    return os.path.relpath(path, REPO) if path.startswith(REPO + os.sep) else path


def environment(run: Run) -> Dict[str, str]:
    """This process's environment, quiet Python warnings unless it sets them, the run's
    variables, unbuffered output and the run's thread count."""
    threads = str(run.threads)
    return {**os.environ, "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", "ignore"),
            **run.env, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads}


def shown(run: Run) -> str:
    """The shell line that reruns ``run`` from the repository root."""
    env = dict(run.env, OMP_NUM_THREADS=str(run.threads), MKL_NUM_THREADS=str(run.threads))
    return " ".join([f"{k}={shlex.quote(rel(v))}" for k, v in env.items()]
                    + [shlex.quote(rel(c)) for c in run.command])


def say(line: str) -> None:
    """``line`` on stdout in one write, so lines of runs ending together do not interleave."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run_all(plan: Sequence[Run], jobs: int = 1) -> Dict[str, int]:
    """Each run of ``plan``, at most ``jobs`` at a time (0: all at once), in plan order;
    ``{name: exit status}`` once every one has ended (127: the command could not start)."""
    names = [r.name for r in plan]
    if len(set(names)) != len(names):
        raise ValueError(f"run names must differ: {names}")
    if jobs < 0:
        raise ValueError(f"--jobs {jobs}: must be 0 (all at once) or more")

    def one(run: Run) -> int:
        os.makedirs(os.path.dirname(os.path.abspath(run.log)), exist_ok=True)
        line = shown(run)
        say(f"== {run.name} ({datetime.datetime.utcnow():%H:%M:%S} UTC): {line}")
        t0 = time.time()
        with open(run.log, "w", encoding="utf-8") as log:
            log.write(f"$ {line}\n")
            log.flush()
            try:
                rc = subprocess.call(list(run.command), cwd=REPO, env=environment(run),
                                     stdout=log, stderr=subprocess.STDOUT)
            except OSError as err:
                log.write(f"{type(err).__name__}: {err}\n")
                rc = 127
        say(f"== {run.name}: exit {rc} after {time.time() - t0:.0f} s, log {rel(run.log)}")
        return rc

    with ThreadPoolExecutor(max(1, jobs or len(plan))) as pool:
        return dict(zip(names, pool.map(one, plan)))


def check(plan: Sequence[Run], codes: Mapping[str, int]) -> None:
    """SystemExit naming every run of ``plan`` that failed, its exit status and its log."""
    bad = [f"{r.name} (exit {codes[r.name]}, log {rel(r.log)})" for r in plan if codes.get(r.name)]
    if bad:
        raise SystemExit(f"{len(bad)} of {len(plan)} runs failed: " + ", ".join(bad))


STAMPED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \| \w+ \| \S+ \| (.*)$")
VALID = re.compile(r"valid on '([^']+)' subset \| (.*)$")
UPDATES = re.compile(r"num_updates[ =](\d+)")
PARAMS = re.compile(r"num\. shared model params: ([0-9,]+)")
DONE = re.compile(r"done training in ([0-9.]+) seconds")
ERROR = re.compile(r"^\w*Error: .*$", re.M)


@dataclass
class Point:
    seconds: float  # since the log's first stamped line
    updates: int
    values: Dict[str, float]  # every field of the valid line: loss, ppl, accuracy, ...


@dataclass
class TrainLog:
    command: Optional[str] = None  # the first line, when run_all wrote the log
    start: Optional[datetime.datetime] = None  # the first stamped line
    params: Optional[int] = None  # "num. shared model params"
    updates: int = 0  # the last num_updates
    seconds: Optional[float] = None  # fairseq's "done training in"
    error: Optional[str] = None  # the last "...Error: " line
    valid: Dict[str, List[Point]] = field(default_factory=dict)  # by subset

    def params_shown(self) -> str:
        return f"{self.params:,}" if self.params is not None else "?"

    def curve(self, metric: str, subset: Optional[str] = None) -> List[Tuple[float, int, float]]:
        """``[(seconds, updates, metric)]`` of ``subset`` (default: the first validated)."""
        points = self.valid.get(subset or next(iter(self.valid), ""), [])
        return [(p.seconds, p.updates, p.values[metric]) for p in points if metric in p.values]


def number(text: str):
    try:
        return int(text)
    except ValueError:
        return float(text)


def read_log(path: str) -> TrainLog:
    """What fairseq-train's log (``--log-format simple``) at ``path`` says (nothing, if there
    is no such file: the run did not start)."""
    out = TrainLog()
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if text.startswith("$ "):
        out.command = text.splitlines()[0][2:]
    for line in text.splitlines():
        stamped = STAMPED.match(line)
        if stamped:
            at = datetime.datetime.fromisoformat(stamped.group(1))
            out.start = out.start or at
            valid = VALID.search(stamped.group(2))
            if valid:
                values = {}
                for item in valid.group(2).split(" | "):
                    key, _, value = item.strip().partition(" ")
                    try:
                        values[key] = number(value)
                    except ValueError:
                        pass
                out.valid.setdefault(valid.group(1), []).append(
                    Point((at - out.start).total_seconds(), values.get("num_updates", 0), values))
    params, done = PARAMS.search(text), DONE.search(text)
    out.params = int(params.group(1).replace(",", "")) if params else None
    out.seconds = float(done.group(1)) if done else None
    out.updates = int((UPDATES.findall(text) or [0])[-1])
    out.error = (ERROR.findall(text) or [None])[-1]
    return out


def started(logs: Sequence[TrainLog]) -> datetime.datetime:
    """When the first of ``logs`` began (now, if none has a stamped line)."""
    return min((log.start for log in logs if log.start), default=datetime.datetime.utcnow())


def add_options(ap: argparse.ArgumentParser, known: Sequence[str], default_runs: Sequence[str],
                work: Optional[str], budget_seconds: Optional[float], threads: int = 2,
                work_help: str = "%(default)s") -> None:
    """The options every race shares (with the names earlier versions used as aliases)."""
    ap.add_argument("--runs", "--only", default=",".join(default_runs),
                    help="comma-separated, from: " + ", ".join(known) +
                    f" (default: {','.join(default_runs) or 'every run of the plan'})")
    ap.add_argument("--work", "--workdir", default=work,
                    help=f"output directory (default: {work_help})")
    ap.add_argument("--budget-seconds", type=float, default=budget_seconds,
                    help="training wall clock per run, fairseq's --stop-time-hours")
    ap.add_argument("--threads", type=int, default=threads,
                    help="torch threads per run (default: %(default)s)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="runs at a time, 0: all at once (default 1; jobs x threads should not "
                    "exceed the cores)")
    ap.add_argument("--concurrent", dest="jobs", action="store_const", const=0,
                    help="all runs at once (--jobs 0)")
    ap.add_argument("--skip-train", "--report-only", action="store_true",
                    help="train nothing: rebuild the tables and curves from the runs in --work")
    ap.add_argument("--count-only", action="store_true",
                    help="print the parameter counts, train nothing")


def selected(ap: argparse.ArgumentParser, args, known: Sequence[str]) -> List[str]:
    """``--runs`` in the order of ``known``; an unknown name stops the parser in one line."""
    names = [n for n in args.runs.split(",") if n]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        ap.error(f"--runs {args.runs}: unknown runs {unknown}; allowed: {', '.join(known)}")
    if args.threads < 1 or args.jobs < 0:
        ap.error(f"--threads {args.threads} --jobs {args.jobs}: threads must be 1 or more, "
                 "jobs 0 (all at once) or more")
    return [n for n in known if n in names]


def build_model(args: Sequence[str]):
    """The model fairseq-train builds from the options ``args`` (data, ``--task``, ``--arch``
    and the model's options; the plugin's ``--user-dir`` is added)."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    for name in ("fairseq", "durnn_plugin", "hydra"):  # build quietly
        logging.getLogger(name).setLevel(logging.WARNING)
    parsed = options.parse_args_and_arch(options.get_training_parser(),
                                         [*args, "--user-dir", PLUGIN])
    cfg = convert_namespace_to_omegaconf(parsed)
    return tasks.setup_task(cfg.task).build_model(cfg.model)


def count_parameters(args: Sequence[str], leave_out: str = "") -> int:
    """Parameters of :func:`build_model`'s model, those named with ``leave_out`` left out."""
    return sum(p.numel() for name, p in build_model(args).named_parameters()
               if not leave_out or leave_out not in name)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> List[str]:
    """A Markdown table; a column whose cells are all numbers (or ``-``) is right-aligned."""
    numeric = re.compile(r"^([-+]?[0-9][0-9,.e+-]*%?|-|)$")
    align = ["---:" if rows and all(numeric.match(str(r[i])) for r in rows) else "---"
             for i in range(len(header))]
    return ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"] + [
        "| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def machine(threads: int, jobs: int, runs: int) -> str:
    """The CPU, the threads per run and how many ran at a time."""
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    at_once = runs if jobs == 0 else min(jobs, runs)
    return f"{cpu}, {os.cpu_count()} cores, {threads} threads per run, {at_once} run(s) at a time"


def command_line() -> str:
    """This process's command line, as run from the repository root."""
    return " ".join(shlex.quote(rel(a)) for a in [sys.executable, *sys.argv])


@dataclass
class Panel:
    xlabel: str
    ylabel: str
    series: Dict[str, Sequence[Tuple[float, float]]]  # label -> [(x, y)]
    log_y: bool = False
    lines: Sequence[float] = ()  # horizontal reference lines


def plot(path: str, panels: Sequence[Panel], title: str = "") -> None:
    """The panels side by side, one curve per series, into the PNG ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for label, points in panel.series.items():
            if points:
                ax.plot(*zip(*points), marker=".", label=label)
        for y in panel.lines:
            ax.axhline(y, color="gray", linestyle="--", linewidth=1)
        if panel.log_y:
            ax.set_yscale("log")
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
