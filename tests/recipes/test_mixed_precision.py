"""bf16 training through fairseq's trainer on the CPU (the config route of
examples/reliability/mixed_precision.py: fairseq-train's --bf16 would also set --tpu)."""
import importlib.util

import pytest

from fairseq_runs import REPO

pytestmark = pytest.mark.slow

SCRIPT = REPO / "examples" / "reliability" / "mixed_precision.py"


def test_bf16_updates_stay_finite_and_close_to_fp32(tmp_path):
    spec = importlib.util.spec_from_file_location("mixed_precision", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rows = script.main(["--cpu", "--modes", "fp32,bf16", "--updates", "6",
                        "--hidden-size", "32", "--embed-dim", "16", "--max-tokens", "512",
                        "--tokens-per-sample", "32", "--work", str(tmp_path)])
    by_mode = {r["mode"]: r for r in rows}
    assert all("error" not in r for r in rows), rows
    assert all(r["updates"] == 6 and r["non_finite"] == 0 for r in rows), rows
    assert abs(by_mode["bf16"]["loss"] - by_mode["fp32"]["loss"]) < 0.1, rows
