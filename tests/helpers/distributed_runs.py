"""fairseq's launch paths with two CPU workers (gloo, ``legacy_ddp``), for every model family.

Each launch runs as subprocesses, each in a process group of its own (so that a SIGKILL reaches a
launcher and its workers together, like a lost job), from the directory it is given:

* by hand: one ``fairseq-train --distributed-no-spawn --distributed-rank R`` per rank;
* spawn: ``fairseq-train ... --distributed-world-size 2 --distributed-init-method tcp://...``,
  through :mod:`cuda_count_launcher` reporting 2 CUDA devices;
* torchrun: ``torchrun --nproc_per_node 2 ... --distributed-world-size 2``, reporting 1;
* ``fairseq-hydra-train`` with the same spawn, options as ``key=value`` overrides.

The families' command lines (:func:`family_argv`) train tiny models on tiny generated data,
without dropout, with plain SGD (``nag --momentum 0``): its step is linear in the gradient, so two
workers and one process differ only by the gradient's rounding (see
tests/distributed/test_distributed.py).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List

from fairseq_runs import BIN, PLUGIN, TINY_MODEL
from reliability_runs import ENV, free_port, parse_record

LAUNCHER = Path(__file__).resolve().parent / "cuda_count_launcher.py"
SGD = ["--optimizer", "nag", "--momentum", "0", "--lr", "0.2", "--seed", "1", "--cpu",
       "--log-format", "json", "--log-interval", "1", "--no-progress-bar", "--num-workers", "0"]
TWO_WORKERS = ["--distributed-world-size", "2", "--distributed-backend", "gloo",
               "--ddp-backend", "legacy_ddp"]
TOLERANCE = 1e-4  # max abs difference per parameter, as in tests/distributed/test_distributed.py
NO_DROPOUT = {"durnn_lm": ["--dropout", "0", "--embed-dropout", "0"],
              "durnn_classifier": ["--dropout", "0", "--embed-dropout", "0"],
              "seq2seq": ["--dropout", "0"]}
SEQ2SEQ_TINY = ["--encoder-hidden-size", "16", "--decoder-hidden-size", "16",
                "--encoder-short-size", "4", "--decoder-short-size", "4",
                "--encoder-embed-dim", "8", "--decoder-embed-dim", "8",
                "--required-batch-size-multiple", "1"]


def family_argv(family: str, data: Path) -> List[str]:
    """Data, task and model options of ``family`` (no --user-dir, optimiser or save dir):
    ``durnn_lm`` (language_modeling), ``durnn_lm stateful`` (durnn_language_modeling: two
    streams per worker), ``durnn`` (translation), ``s2t_durnn`` (speech_to_text) and
    ``durnn_classifier`` (sentence_prediction)."""
    argv = {
        "durnn_lm": ["--task", "language_modeling", "--sample-break-mode", "eos",
                     "--tokens-per-sample", "64", "--max-tokens", "64", "--arch", "durnn_lm",
                     *TINY_MODEL, *NO_DROPOUT["durnn_lm"]],
        "durnn_lm stateful": ["--task", "durnn_language_modeling", "--tokens-per-sample", "8",
                              "--batch-size", "2", "--stream-groups", "2", "--u-gamma", "1",
                              "--arch", "durnn_lm", *TINY_MODEL, *NO_DROPOUT["durnn_lm"]],
        "durnn": ["--task", "translation", "--arch", "durnn_s", "--max-tokens", "60",
                  *SEQ2SEQ_TINY, *NO_DROPOUT["seq2seq"]],
        "s2t_durnn": ["--task", "speech_to_text", "--config-yaml", "config.yaml",
                      "--train-subset", "train", "--valid-subset", "valid",
                      "--arch", "s2t_durnn_s", "--conv-channels", "8", "--max-tokens", "250",
                      "--criterion", "label_smoothed_cross_entropy", *SEQ2SEQ_TINY,
                      *NO_DROPOUT["seq2seq"]],
        "durnn_classifier": ["--task", "sentence_prediction", "--num-classes", "2",
                             "--max-positions", "32", "--arch", "durnn_classifier",
                             "--criterion", "sentence_prediction", "--batch-size", "8",
                             "--bidirectional", *TINY_MODEL, *NO_DROPOUT["durnn_classifier"]],
    }[family]
    return [str(data)] + argv


def one_process_equivalent(family: str) -> List[str]:
    """What one process adds to train on the batches of two workers: ``--update-freq 2``
    (fairseq deals the batch list round-robin); for the stateful task, whose workers each own
    their streams, twice the streams per batch."""
    return ["--batch-size", "4"] if family == "durnn_lm stateful" else ["--update-freq", "2"]


def start(argv: List[str], cwd: Path, devices: int, env=None) -> subprocess.Popen:
    """Run ``argv`` (a command) in a process group of its own, fairseq's log lines on stdout;
    ``env``: variables added to the environment."""
    env = dict(ENV, REPORTED_CUDA_DEVICES=str(devices), **(env or {}))
    return subprocess.Popen([str(a) for a in argv], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def spawn(argv, cwd: Path, command: str = "train", env=None) -> subprocess.Popen:
    """fairseq's own spawn of two workers on this host (``argv`` holds TWO_WORKERS)."""
    port = free_port()
    init = (["--distributed-init-method", f"tcp://127.0.0.1:{port}"] if command == "train" else
            [f"distributed_training.distributed_init_method=tcp://127.0.0.1:{port}"])
    return start([sys.executable, LAUNCHER, command, *argv, *init], cwd, devices=2, env=env)


def torchrun(argv, cwd: Path) -> subprocess.Popen:
    """``torchrun --standalone --nproc_per_node 2`` of fairseq-train (env:// initialisation;
    ``--standalone`` lets torchrun take a free port itself, with no race for one)."""
    return start([BIN / "torchrun", "--standalone", "--nproc_per_node", "2",
                  LAUNCHER, "train", *argv], cwd, devices=1)


def by_hand(argv, cwd: Path) -> List[subprocess.Popen]:
    """One fairseq-train process per rank (``--distributed-no-spawn``), rank 0 first (``argv``
    holds TWO_WORKERS)."""
    init = ["--distributed-no-spawn", "--distributed-init-method",
            f"tcp://127.0.0.1:{free_port()}"]
    return [start([BIN / "fairseq-train", *argv, *init, "--distributed-rank", rank], cwd, devices=0)
            for rank in (0, 1)]


def finish(processes, timeout: float = 300) -> str:
    """Wait for a launch (a process, or the processes of :func:`by_hand`); the output of the
    first."""
    processes = processes if isinstance(processes, list) else [processes]
    with ThreadPoolExecutor(len(processes)) as pool:  # read every pipe at once
        outputs = list(pool.map(lambda p: p.communicate(timeout=timeout)[0], processes))
    for process, out in zip(processes, outputs):
        assert process.returncode == 0, out[-3000:]
    return outputs[0]


def kill_after(processes, update: int) -> str:
    """SIGKILL a launch (a launcher and its workers, or every rank of :func:`by_hand`) as soon
    as the first process logs update ``update``; the output of the first."""
    processes = processes if isinstance(processes, list) else [processes]
    lines = []
    for line in processes[0].stdout:
        lines.append(line)
        record = parse_record(fairseq_format(line))
        if record and record.get("num_updates") == update:
            for process in processes:
                os.killpg(process.pid, signal.SIGKILL)
            break
    rests = [process.communicate(timeout=60)[0] for process in processes]
    output = "".join(lines) + rests[0]
    for process, rest in zip(processes, rests):
        assert process.returncode == -signal.SIGKILL, output[-3000:] + rest
    return output


RECORD = re.compile(r"(?:^|[\s|:\[])(train_inner|train|valid)(?: \| |:|\]\[INFO\] - )(\{.*\})$")


def fairseq_format(log: str) -> str:
    """The result records of ``log`` as fairseq's own log lines (``time | INFO | kind |
    {...}``), for :func:`reliability_runs.results`. Spawned workers log with Python's default
    format (``INFO:train_inner:{...}``) and fairseq-hydra-train with hydra's
    (``[time][train_inner][INFO] - {...}``)."""
    matches = (RECORD.search(line) for line in log.splitlines())
    return "\n".join(f"time | INFO | {m[1]} | {m[2]}" for m in matches if m)


def plugin_copy(folder: Path, trace: Path) -> Path:
    """A copy of the plugin as ``folder/my_durnn`` (a user who never installed it) whose
    ``__init__`` appends ``pid module-name file`` to ``trace`` when imported, and a folder
    ``folder/shadow`` to put first on PYTHONPATH, where ``import durnn_plugin`` fails: a process
    that imports the installed package instead of the copy fails."""
    copy = folder / "my_durnn"
    shutil.copytree(PLUGIN, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / "__init__.py", "a") as init:
        init.write(f"\nwith open({str(trace)!r}, 'a') as _trace:\n"
                   "    _trace.write(f'{__import__(\"os\").getpid()} {__name__} {__file__}\\n')\n")
    shadow = folder / "shadow" / "durnn_plugin"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ImportError('the installed durnn_plugin was imported instead of the copy')\n")
    return copy
