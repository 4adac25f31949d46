"""Fixtures shared by the test rooms.

The rooms follow the package: ``ops/``, ``modules/``, ``models/``, ``tasks/``; ``recipes/`` and
``distributed/`` hold the end-to-end runs (fairseq's commands, the examples' scripts, several
workers). The test modules' shared code lives in ``helpers/``, which ``pytest.ini`` puts on the
import path, so it is imported by bare name (``from fairseq_runs import REPO``). Markers
(``pytest.ini``): ``slow`` for the tests that train through fairseq (or use a fixture that does),
``cuda`` for the cases that need a CUDA device; neither deselects anything by default.
"""
import importlib

import pytest


@pytest.fixture
def device(request, monkeypatch):
    """The Triton kernel tests' device, parametrised indirectly with ``triton_cases.DEVICES``:
    ``"interpreter"`` runs the kernels through Triton's interpreter on the CPU (returns
    ``"cpu"``), ``"cuda"`` compiled on the GPU. Unwritten output elements are NaN."""
    support_module = importlib.import_module("durnn_plugin.ops.triton_support")
    monkeypatch.setattr(support_module, "DEBUG_FILL", float("nan"))  # unwritten elements -> NaN
    if request.param == "interpreter":
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        return "cpu"
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    return "cuda"


@pytest.fixture
def aot(monkeypatch, tmp_path):
    """Compiled mode (``TRITON_INTERPRET`` unset) with a private triton cache, for
    ``triton_cases.compile_for_sm90``. Decorating kernels in this mode compiles nothing."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))
