"""Run fairseq's own command-line entry points in-process on tiny generated data."""
import os
import random
import subprocess
import sys
from pathlib import Path

from fairseq import distributed_utils, options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq_cli import eval_lm, generate, preprocess, train

REPO = Path(__file__).resolve().parents[2]
PLUGIN = str(REPO / "durnn_plugin")
BIN = Path(sys.executable).parent
TINY_MODEL = ["--hidden-size", "16", "--short-size", "4", "--embed-dim", "8", "--num-layers", "2"]


def write_text(data_dir: Path, seed: int = 0) -> None:
    """train/valid/test text with empty lines and one-token lines among ordinary ones."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(30)]
    for split, n in [("train", 300), ("valid", 30), ("test", 30)]:
        lines = []
        for i in range(n):
            k = [0, 1, 2, 5, 9][i % 5]
            lines.append(" ".join(rng.choice(words) for _ in range(k)))
        (data_dir / f"{split}.txt").write_text("\n".join(lines) + "\n")


def preprocess_lm(data_dir: Path) -> Path:
    write_text(data_dir)
    dest = data_dir / "bin"
    parser = options.get_preprocessing_parser()
    args = parser.parse_args(["--only-source", "--trainpref", str(data_dir / "train.txt"),
                              "--validpref", str(data_dir / "valid.txt"),
                              "--testpref", str(data_dir / "test.txt"),
                              "--destdir", str(dest), "--workers", "1"])
    preprocess.main(args)
    return dest


def lm_args(data: Path) -> list:
    return [str(data), "--user-dir", PLUGIN, "--task", "language_modeling",
            "--sample-break-mode", "eos", "--tokens-per-sample", "64", "--cpu"]


def train_lm(data: Path, save_dir: Path, arch: str, extra=(), updates: int = 8) -> None:
    argv = lm_args(data) + ["--arch", arch, "--optimizer", "adam", "--lr", "0.01",
                            "--max-tokens", "300", "--max-update", str(updates),
                            "--save-dir", str(save_dir), "--no-progress-bar", "--num-workers", "0",
                            "--log-interval", "1", "--seed", "1"] + [str(a) for a in extra]
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    distributed_utils.call_main(convert_namespace_to_omegaconf(args), train.main)


def eval_lm_on(data: Path, checkpoint: Path, subset: str = "test") -> dict:
    argv = lm_args(data) + ["--path", str(checkpoint), "--gen-subset", subset,
                            "--max-tokens", "300", "--num-workers", "0"]
    args = options.parse_args_and_arch(options.get_eval_lm_parser(), argv)
    return eval_lm.main(convert_namespace_to_omegaconf(args))


def generate_from(data: Path, checkpoint: Path, results: Path, extra=()) -> str:
    argv = lm_args(data) + ["--path", str(checkpoint), "--gen-subset", "valid",
                            "--batch-size", "8", "--max-len-b", "6", "--num-workers", "0",
                            "--results-path", str(results)] + list(extra)
    args = options.parse_args_and_arch(options.get_generation_parser(), argv)
    generate.main(convert_namespace_to_omegaconf(args))
    return (results / "generate-valid.txt").read_text()


def run_cli(tool: str, args, cwd=None, stdin=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([str(BIN / tool)] + [str(a) for a in args], cwd=cwd, env=env,
                          input=stdin, capture_output=True, text=True, timeout=600)
