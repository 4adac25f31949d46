"""One-line errors on the command line.

A :class:`~durnn_plugin.errors.OneLineError` (an invalid option value, a bad data row, a
checkpoint that does not fit the model, data too small for the task) that reaches the top of a
fairseq command prints as one line (``fairseq-train: error: invalid --short-rho=1.2: must be in
(0, 1)``) and exits with status 2, like argparse, through the interpreter's normal shutdown
(``atexit`` handlers, such as the flush of tensorboard's writers, still run). This also holds when
fairseq wraps it in an exception of its own (``trainer.load_checkpoint`` re-raises any load failure
as a generic ``Exception``): the hook looks along the exception's chain (``__cause__`` /
``__context__``). Every other exception keeps Python's usual report. Library callers still
receive the exceptions themselves.

:func:`check_environment` refuses a bad ``DURNN_BACKEND`` the same way when the plugin is imported
(fairseq imports ``--user-dir`` while parsing the command line), before any data or model.
"""
import os
import sys
from typing import Optional

from .errors import OneLineError
from .ops.dispatch import forced_backends


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
            raise SystemExit(2)  # from the hook: Python exits with 2 after its usual cleanup
        previous(kind, value, traceback)

    hook.durnn_one_line = True
    return hook


def install() -> None:
    if not getattr(sys.excepthook, "durnn_one_line", False):
        sys.excepthook = _one_line(sys.excepthook)


def check_environment() -> None:
    """Raise a :class:`OneLineError` if ``DURNN_BACKEND`` is not a valid list of backends (the
    recurrences read it again on every call, so this only moves the refusal to start-up)."""
    try:
        forced_backends()
    except ValueError as error:
        raise OneLineError(str(error)) from None
