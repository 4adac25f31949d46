"""One-line errors on the command line.

An :class:`~durnn_plugin.modules.options.InvalidOptionError` (or ``InvalidDataError``, a bad
data row) that reaches the top of a fairseq command prints as one line (``fairseq-train: error:
invalid --short-rho=1.2: must be in (0, 1)``) and exits with status 2, like argparse; every
other exception keeps Python's usual report. Library callers still receive the exception itself.
"""
import os
import sys

from .modules.options import InvalidDataError, InvalidOptionError


def _one_line(previous):
    def hook(kind, value, traceback):
        if isinstance(value, (InvalidOptionError, InvalidDataError)):
            print(f"{os.path.basename(sys.argv[0] or 'python')}: error: {value}", file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        previous(kind, value, traceback)

    hook.durnn_one_line = True
    return hook


def install() -> None:
    if not getattr(sys.excepthook, "durnn_one_line", False):
        sys.excepthook = _one_line(sys.excepthook)
