"""fairseq-train on tiny data for the reliability tests (distributed, resume, determinism,
hostile input): deterministic command lines, runs as subprocesses or in this process, JSON log
parsing, checkpoint parameters."""
import json
import logging
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Dict, List

import torch

from fairseq import checkpoint_utils, distributed_utils, options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq_cli import preprocess, train

from fairseq_runs import BIN, PLUGIN, TINY_MODEL

# No dropout, one log line per update in JSON, fixed seed; OMP_NUM_THREADS=1 is set by ENV.
DETERMINISTIC = ["--dropout", "0", "--embed-dropout", "0", "--seed", "1", "--log-format", "json",
                 "--log-interval", "1", "--no-progress-bar", "--num-workers", "0", "--cpu",
                 "--optimizer", "adam", "--lr", "0.01"]
TASK_ARGS = {
    "language_modeling": ["--task", "language_modeling", "--sample-break-mode", "eos",
                          "--tokens-per-sample", "64", "--max-tokens", "64"],
    "durnn_language_modeling": ["--task", "durnn_language_modeling", "--tokens-per-sample", "8",
                                "--batch-size", "2", "--stream-groups", "2", "--u-gamma", "1"],
    "durnn_language_modeling --state-cache": [
        "--task", "durnn_language_modeling", "--tokens-per-sample", "8", "--batch-size", "2",
        "--state-cache", "--u-gamma", "1"],
}
TIMING = {"wps", "ups", "wall", "free"}  # log fields (after any prefix_) that are not results
ENV = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def train_argv(data: Path, save_dir: Path, task: str = "language_modeling", extra=()) -> List[str]:
    """A complete, deterministic fairseq-train command line (without the program name)."""
    return ([str(data), "--user-dir", PLUGIN, "--arch", "durnn_lm", "--save-dir", str(save_dir)]
            + TINY_MODEL + TASK_ARGS[task] + DETERMINISTIC + [str(a) for a in extra])


def binarize(text_dir: Path, srcdict: Path = None) -> Path:
    """``text_dir/{train,valid,test}.txt`` -> ``text_dir/bin`` (fairseq-preprocess --only-source),
    with the dictionary ``srcdict`` if given, else one built from the train split."""
    argv = ["--only-source", "--destdir", str(text_dir / "bin"), "--workers", "1"]
    argv += [arg for split in ("train", "valid", "test")
             for arg in (f"--{split}pref", str(text_dir / f"{split}.txt"))]
    if srcdict is not None:
        argv += ["--srcdict", str(srcdict)]
    preprocess.main(options.get_preprocessing_parser().parse_args(argv))
    return text_dir / "bin"


def run_tool(tool: str, argv) -> subprocess.CompletedProcess:
    """Run a fairseq command (one torch thread) with stdout and stderr captured apart."""
    return subprocess.run([str(BIN / tool)] + [str(a) for a in argv], env=ENV, text=True,
                          capture_output=True, timeout=300)


def start(tool: str, argv) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / tool)] + [str(a) for a in argv], env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen, timeout: float = 300) -> str:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out[-3000:]
    return out


def run_train(argv) -> str:
    """Run fairseq-train to the end; its output (stdout and stderr)."""
    return finish(start("fairseq-train", argv))


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(f"time | {record.levelname} | {record.name} | {record.getMessage()}")


def train_in_process(argv) -> str:
    """fairseq-train's ``main`` in this process with one torch thread, like the subprocesses;
    returns its log lines in the format of the command's output."""
    handler, root, threads = _Lines(), logging.getLogger(), torch.get_num_threads()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    torch.set_num_threads(1)
    if hasattr(checkpoint_utils.save_checkpoint, "best"):  # fairseq keeps it per process
        del checkpoint_utils.save_checkpoint.best
    try:
        args = options.parse_args_and_arch(options.get_training_parser(), [str(a) for a in argv])
        distributed_utils.call_main(convert_namespace_to_omegaconf(args), train.main)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        torch.set_num_threads(threads)
    return "\n".join(handler.lines)


def train_until_killed(argv, kill_after_update: int) -> str:
    """Start fairseq-train and SIGKILL it as soon as it logs update ``kill_after_update``."""
    process = start("fairseq-train", argv)
    lines = []
    for line in process.stdout:
        lines.append(line)
        record = parse_record(line)
        if record and record.get("num_updates") == kill_after_update:
            process.send_signal(signal.SIGKILL)
            break
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "".join(lines)[-3000:] + rest
    return "".join(lines) + rest


def parse_record(line: str):
    """The JSON record of a fairseq log line (``... | train_inner | {...}``), tagged with its
    kind (train_inner, valid, train) and with numbers parsed; ``None`` for other lines."""
    parts = line.rstrip("\n").split(" | ", 3)
    if len(parts) != 4 or parts[2] not in ("train_inner", "train", "valid"):
        return None
    record = {k: _number(v) for k, v in json.loads(parts[3]).items()}
    record["kind"] = parts[2]
    return record


def _number(value):
    try:
        return float(value) if "." in str(value) else int(value)
    except ValueError:
        return value


def results(log: str, after_update: int = 0) -> List[Dict]:
    """The logged results (no timings) of every record after update ``after_update``."""
    records = [parse_record(line) for line in log.splitlines()]
    return [{k: v for k, v in r.items() if k.rsplit("_", 1)[-1] not in TIMING} for r in records
            if r is not None and _updates(r) > after_update]


def _updates(record: Dict) -> int:
    """The update count of a record: ``num_updates``, ``valid_num_updates`` or ``train_...``."""
    return next(v for k, v in record.items() if k.endswith("num_updates"))


def parameters(checkpoint: Path) -> Dict[str, torch.Tensor]:
    return torch.load(checkpoint)["model"]


def num_updates(checkpoint: Path) -> int:
    return torch.load(checkpoint)["optimizer_history"][-1]["num_updates"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
