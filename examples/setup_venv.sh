#!/usr/bin/env bash
# Create ./.venv (Python 3.11) and install the plugin with fairseq-fixed, torchaudio, pytest and matplotlib.
# Idempotent: does nothing when the venv already holds an install made from the current setup.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=.venv/.durnn_installed
want=$(sha1sum setup.py | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && .venv/bin/python -c "import durnn_plugin, fairseq" 2>/dev/null; then
  exit 0
fi
# The venv takes about 6 GB (fairseq-fixed needs torchaudio, whose PyPI wheels need torch's CUDA
# build): say so in one line instead of failing half-way with "No space left on device".
need_gb=7
avail_kb=$(df -Pk . | awk 'NR == 2 {print $4}')
if [ "$avail_kb" -lt $((need_gb * 1024 * 1024)) ]; then
  echo "error: only $((avail_kb / 1024 / 1024)) GB free on $(df -P . | awk 'NR == 2 {print $6}'); installing ./.venv needs about $need_gb GB" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip=".venv/bin/python -m pip"
$pip install -q --upgrade pip setuptools wheel
# torch first: fairseq-fixed compiles extensions against the torch in the venv
# (--no-build-isolation), and torchaudio 2.11 loads beside torch 2.14.1.
$pip install -q torch==2.14.1 'numpy<2' cython
$pip install -q --no-build-isolation -e '.[speech,test,plots]'
echo "$want" > "$stamp"
