"""The compiled CPU recurrences (``csrc/cpu_recurrences.cpp``), built on first use, never at
import.

:func:`compiled_module` compiles the file once per machine and source version with
``torch.utils.cpp_extension.load`` (g++ ``-O3 -fopenmp``; no ``-march``, so one cache serves
every CPU of the same architecture) into ``TORCH_EXTENSIONS_DIR`` (default: torch's
``~/.cache/torch_extensions/...``); later processes load the cached library in a fraction of a
second. The parallel loops are ``at::parallel_for`` over torch's own OpenMP runtime, so
``torch.set_num_threads`` holds. Where the build cannot run (no compiler, no ninja, a failed
compile), :func:`compiled_module` returns ``None``, the callers run the torch loops, and the
reason is logged once, in one line.

A build killed midway leaves ``lock`` in its folder, which makes every later build wait for it
forever; a lock older than :data:`STALE_LOCK_SECONDS` (a build takes about a minute) is removed
first.
"""
import functools
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Optional

import torch

NAME = "durnn_cpu_recurrences"
SOURCE = Path(__file__).parent / "csrc" / "cpu_recurrences.cpp"
STALE_LOCK_SECONDS = 600
DTYPES = (torch.float32, torch.float64)

logger = logging.getLogger(__name__)


def build_directory() -> Path:
    """Where the extension is built and cached: one folder per Python and torch version."""
    from torch.utils import cpp_extension

    root = os.environ.get("TORCH_EXTENSIONS_DIR") or cpp_extension.get_default_build_root()
    version = f"py{sys.version_info.major}{sys.version_info.minor}_torch{torch.__version__}"
    return Path(root) / f"{NAME}_{version}".replace("+", "_").replace(".", "_")


def remove_stale_lock(folder: Path) -> None:
    lock = folder / "lock"
    try:
        if time.time() - lock.stat().st_mtime > STALE_LOCK_SECONDS:
            lock.unlink()
    except FileNotFoundError:
        pass


def ninja_on_path() -> None:
    """``cpp_extension`` runs ``ninja`` from ``PATH``; the ``ninja`` package of the venv puts it
    in a folder that is on ``PATH`` only in an activated venv."""
    if shutil.which("ninja") is None:
        try:
            import ninja
        except ImportError:
            return
        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")


@functools.lru_cache(maxsize=1)
def compiled_module() -> Optional[ModuleType]:
    """The loaded extension (built now if it is not cached), or ``None`` where it cannot be
    built; the reason is logged once."""
    try:
        from torch.utils import cpp_extension

        folder = build_directory()
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_lock(folder)
        ninja_on_path()
        return cpp_extension.load(NAME, [str(SOURCE)], extra_cflags=["-O3", "-fopenmp"],
                                  extra_ldflags=["-fopenmp"], build_directory=str(folder),
                                  verbose=False)
    except Exception as error:  # any failure of the build means: run the torch loops
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        logger.warning("compiled CPU recurrences unavailable, running the torch loops: %s",
                       first_line[:300])
        return None


def unavailable_reason(*tensors: torch.Tensor) -> Optional[str]:
    """Why the compiled recurrences cannot run on these tensors (``None``: they can): CPU
    tensors of one dtype, fp32 or fp64, and a built extension."""
    dtype = tensors[0].dtype
    if any(t.device.type != "cpu" for t in tensors):
        return "the compiled recurrences take CPU tensors"
    if dtype not in DTYPES or any(t.dtype != dtype for t in tensors):
        return f"the compiled recurrences take fp32 or fp64 tensors of one dtype, not {dtype}"
    if compiled_module() is None:
        return "the extension could not be built (see the warning above)"
    return None
