"""One-line errors on the command line.

A :class:`~durnn_plugin.errors.OneLineError` (an invalid option value, a bad data row, a
checkpoint that does not fit the model, data too small for the task) that reaches the top of a fairseq command
prints as one line (``fairseq-train: error: invalid --short-rho=1.2: must be in (0, 1)``) and
exits with status 2, like argparse. This also holds when fairseq wraps it in an exception of its
own (``trainer.load_checkpoint`` re-raises any load failure as a generic ``Exception``): the hook
looks along the exception's chain (``__cause__`` / ``__context__``). Every other exception keeps
Python's usual report. Library callers still receive the exceptions themselves.
"""
import os
import sys
from typing import Optional

from .errors import OneLineError


def one_line_error(error: Optional[BaseException]) -> Optional[OneLineError]:
    """The first :class:`OneLineError` in ``error``'s chain of causes and contexts, or ``None``."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OneLineError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _one_line(previous):
    def hook(kind, value, traceback):
        error = one_line_error(value)
        if error is not None:
            print(f"{os.path.basename(sys.argv[0] or 'python')}: error: {error}", file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        previous(kind, value, traceback)

    hook.durnn_one_line = True
    return hook


def install() -> None:
    if not getattr(sys.excepthook, "durnn_one_line", False):
        sys.excepthook = _one_line(sys.excepthook)
