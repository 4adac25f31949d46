"""The command-line hook for one-line errors (``durnn_plugin.cli_errors``): one line, status 2,
and a normal interpreter shutdown (``atexit`` handlers run); a bad ``DURNN_BACKEND`` is refused
the same way before fairseq reads any data."""
import os
import subprocess
import sys

import pytest

from durnn_plugin.cli_errors import check_environment
from durnn_plugin.errors import OneLineError
from fairseq_runs import BIN, PLUGIN

SCRIPT = """
import atexit
atexit.register(print, "atexit handler ran")
import durnn_plugin  # installs the hook
from durnn_plugin.errors import InvalidOptionError
try:
    raise InvalidOptionError("short_rho", 1.2, "in (0, 1)")
except ValueError as error:
    raise RuntimeError("fairseq's wrapper") from error
"""


def test_one_line_error_exits_2_after_atexit_handlers(tmp_path):
    script = tmp_path / "tool.py"
    script.write_text(SCRIPT)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert run.returncode == 2, run.stderr[-3000:]
    assert run.stdout == "atexit handler ran\n"
    assert run.stderr.strip().splitlines()[-1] == (
        "tool.py: error: invalid --short-rho=1.2: must be in (0, 1)")
    assert "Traceback" not in run.stderr, run.stderr[-3000:]


@pytest.mark.slow
def test_bad_backend_is_refused_before_data_is_read(tmp_path):
    """The data directory does not exist: a run that got as far as reading data would fail there."""
    run = subprocess.run(
        [str(BIN / "fairseq-train"), str(tmp_path / "no-data"), "--user-dir", PLUGIN,
         "--task", "language_modeling", "--arch", "durnn_lm", "--optimizer", "adam",
         "--max-tokens", "300", "--max-update", "1", "--save-dir", str(tmp_path / "save"), "--cpu"],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, DURNN_BACKEND="bogus", PYTHONWARNINGS="ignore"))
    assert run.returncode == 2, run.stderr[-3000:]
    assert run.stderr.strip().splitlines()[-1] == (
        "fairseq-train: error: DURNN_BACKEND='bogus' is not a backend here; allowed: auto, "
        "compiled, cpu, reference, scan, triton, triton_pipelined, triton_scan")
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert not (tmp_path / "save").exists()


@pytest.mark.parametrize("value, message", [
    ("short=magic", "DURNN_BACKEND: 'short=magic' is not a short-term backend here; allowed: "
                    "short=auto, short=compiled, short=cpu, short=cudnn, short=triton"),
    ("cpu,scan", "DURNN_BACKEND='cpu,scan' names two indrnn backends; name at most one")])
def test_check_environment_refuses_every_bad_value(value, message, monkeypatch):
    monkeypatch.setenv("DURNN_BACKEND", value)
    with pytest.raises(OneLineError) as error:
        check_environment()
    assert str(error.value) == message
    monkeypatch.setenv("DURNN_BACKEND", "triton_scan, short=cpu")
    check_environment()
