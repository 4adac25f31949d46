"""The package's errors for bad input, and the checks that raise them: one clear line naming the
option or data row and what is allowed. Torch-free and fairseq-free (``modules`` imports it);
``cli_errors`` prints these errors as one line on the command line."""
from typing import Any, Iterable


class OneLineError(ValueError):
    """An error whose message alone says what is wrong and what to do (one line): the command
    line tools print just that line (see ``durnn_plugin.cli_errors``), even when fairseq wraps it
    in an exception of its own."""


class InvalidOptionError(OneLineError):
    """An option value outside its allowed range. The message is one line:
    ``invalid --short-rho=1.2: must be in (0, 1)``; the option is named as on the command line
    (its Python/YAML name is the same with ``_`` for ``-``)."""

    def __init__(self, name: str, value: Any, allowed: str):
        self.option, self.value, self.allowed = name, value, allowed
        super().__init__(f"invalid --{name.replace('_', '-')}={value}: must be {allowed}")


class InvalidDataError(OneLineError):
    """A data item that cannot be used. The message is one line naming the file and the row (or
    item) and what is allowed, e.g. ``train.tsv line 7 (id 'u3'): audio 'x.npy' not found; ...``."""


def check(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise InvalidOptionError(name, value, allowed)


def check_positive_int(name: str, value: Any) -> None:
    check(isinstance(value, int) and not isinstance(value, bool) and value > 0, name, value,
          "a positive integer")


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    choices = list(choices)
    check(value in choices, name, value, "one of " + ", ".join(choices))


def check_range(name: str, value: Any, lo: float, hi: float, lo_open: bool = False,
                hi_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    left, right = "(" if lo_open else "[", ")" if hi_open else "]"
    check(ok, name, value, f"in {left}{lo:g}, {hi:g}{right}")
