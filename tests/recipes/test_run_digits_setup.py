"""run_digits.sh on a machine without the speech engines' Debian packages: one line naming them
(not root), or apt-get install of just those (root). dpkg, id and apt-get are stand-ins on PATH
that record their calls, so nothing is installed."""
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "examples" / "speech_recognition" / "run_digits.sh"
MISSING = "flite festvox-kdlpc16k"


def fake_bin(tmp_path: Path, uid: int, apt_ok: bool = True) -> dict:
    """PATH with dpkg (MISSING not installed until apt-get installs them), id -u and apt-get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    installed, calls = tmp_path / "installed", tmp_path / "apt-calls"
    scripts = {
        "dpkg": f'[ "$1" = -s ] || exit 0\n[ -e {installed} ] && exit 0\n'
                f'case " {MISSING} " in *" $2 "*) exit 1;; esac\nexit 0\n',
        "id": f'[ "$1" = -u ] && echo {uid} || exec /usr/bin/id "$@"\n',
        "apt-get": f'echo "$@" >> {calls}\n'
                   + (f'[ "$1" = install ] && touch {installed}\nexit 0\n' if apt_ok
                      else "exit 100\n"),
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "WORK": str(tmp_path / "work"), "VENV": str(REPO / ".venv"),
            "PREPARE_ARGS": "--no-such-option"}  # stops the run at prepare_speech if reached


def run(env):
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=300)


def test_not_root_names_the_missing_packages_in_one_line(tmp_path):
    done = run(fake_bin(tmp_path, uid=1000))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: the speech engines need the Debian packages {MISSING}; install them with "
        f"'sudo apt-get install {MISSING}' or run this script as root"]
    assert not (tmp_path / "apt-calls").exists()


def test_root_installs_just_the_missing_packages(tmp_path):
    done = run(fake_bin(tmp_path, uid=0))
    calls = (tmp_path / "apt-calls").read_text().splitlines()
    assert calls == ["update -qq", f"install -y -qq --no-install-recommends {MISSING}"]
    assert f"== setup: apt-get install {MISSING}" in done.stdout
    assert "--no-such-option" in done.stderr  # went on to prepare_speech
    assert done.returncode != 0


def test_a_failed_install_is_one_line(tmp_path):
    done = run(fake_bin(tmp_path, uid=0, apt_ok=False))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: apt-get install {MISSING} failed"]
