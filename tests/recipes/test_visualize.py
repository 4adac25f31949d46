"""examples/visualize.py writes its plots from a real (tiny) checkpoint."""
import subprocess
import sys

import pytest

from fairseq_runs import REPO, TINY_MODEL, preprocess_lm, train_lm

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("arch,plots", [("durnn_lm", {"u_hist.png", "gate.png", "contribution.png"}),
                                        ("indrnn_lm", {"u_hist.png"})])
def test_visualize_writes_plots(tmp_path, arch, plots):
    data = preprocess_lm(tmp_path)
    train_lm(data, tmp_path / "ckpt", arch, TINY_MODEL, updates=2)
    out = tmp_path / "plots"
    run = subprocess.run([sys.executable, str(REPO / "examples" / "visualize.py"), "--checkpoint",
                          str(tmp_path / "ckpt" / "checkpoint_last.pt"), "--data", str(data),
                          "--index", "3", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert {p.name for p in out.iterdir()} == plots
    for name in plots:
        assert (out / name).stat().st_size > 5000  # a real figure, not an empty canvas


def test_visualize_names_a_bad_index(tmp_path):
    data = preprocess_lm(tmp_path)
    train_lm(data, tmp_path / "ckpt", "durnn_lm", TINY_MODEL, updates=1)
    run = subprocess.run([sys.executable, str(REPO / "examples" / "visualize.py"), "--checkpoint",
                          str(tmp_path / "ckpt" / "checkpoint_last.pt"), "--data", str(data),
                          "--index", "100000"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("visualize.py: error: --index=100000")
