"""The benchmark scripts run end to end (tiny shapes, CPU) and print their tables."""
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "examples" / "benchmarks"

RUNS = [
    ("layer_speed.py", ["--T", "8", "--B", "2", "--N", "16", "--repeat", "1"], "| DuRNN (N_s=4) |"),
    ("scan_speed.py", ["--cols", "4", "--T", "32", "--repeat", "1"], "loop/scan"),
    ("compiled_speed.py", ["--scale", "0.002", "--repeat", "1", "--threads", "1"],
     "| DuRNN short-term, Brown LM |"),
    ("gpu_speed.py", ["--device", "cpu", "--T", "8", "--B", "2", "--N", "8", "--paper-N", "0",
                      "--scan-T", "32", "--scan-cols", "4", "--repeat", "1", "--dtypes", "fp32"],
     "% of copy"),
    ("generate_speed.py", ["--vocab", "50", "--lengths", "6", "--batches", "2", "--threads", "1",
                           "--profile", "6"], "| transformer_lm | 2 | 6 |"),
    ("ctc_decoding_speed.py", ["--vocab", "12", "--beams", "2", "--lm-hidden", "16",
                               "--lm-embed", "8", "--frames", "20", "--repeat", "1"],
     "| prefix beam | 2 | 2 x 16 | flat |"),
]


@pytest.mark.parametrize("script,args,expect", RUNS)
def test_benchmark_script_runs(script, args, expect):
    out = subprocess.run([sys.executable, str(BENCH / script)] + args, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert expect in out.stdout
