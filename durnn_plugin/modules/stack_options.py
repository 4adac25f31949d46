"""Options of a recurrent stack, as a plain dataclass (no fairseq import).

The fairseq model configs inherit these fields, so a field here is also a command-line flag
(``short_rho`` <-> ``--short-rho``) and a YAML key; ``help`` metadata becomes ``--help`` text.
:meth:`StackOptions.validate` raises :class:`.options.InvalidOptionError`, one line naming the
option and its allowed values.
"""
from dataclasses import dataclass, field, fields
from typing import List, Optional

from .durnn_cell import LONG_INPUTS, MODULE_OUTPUTS, SELECTIONS, SHORT_ACTIVATIONS
from .norms import NORMS
from ..errors import check, check_choice, check_positive_int, check_range

CELLS = ("durnn", "indrnn", "lstm", "gru")
BLOCKS = ("post-norm", "residual", "dense")
DEFAULT_TIME_STEPS = 100  # T of the recurrent bound where neither option nor task gives one


def _help(text: str):
    return {"help": text}


@dataclass
class StackOptions:
    cell: str = field(default="durnn", metadata=_help("recurrent module: " + ", ".join(CELLS)))
    num_layers: int = field(default=2, metadata=_help("number of stacked modules L"))
    hidden_size: int = field(default=512, metadata=_help(
        "output width N of every module (DuRNN: N_s + N_l with concat output, N_l with long)"))
    short_size: Optional[int] = field(default=None, metadata=_help(
        "DuRNN short-term size N_s (default hidden_size // 4)"))
    short_activation: str = field(default="relu", metadata=_help(
        "DuRNN short-term activation: " + ", ".join(SHORT_ACTIVATIONS)))
    selection: str = field(default="input+short", metadata=_help(
        "DuRNN selection gate inputs: " + ", ".join(SELECTIONS) + " (none: g = 1)"))
    long_input: str = field(default="selected", metadata=_help(
        "DuRNN long-term input: " + ", ".join(LONG_INPUTS)))
    module_output: str = field(default="concat", metadata=_help(
        "DuRNN module output: concat ([s; h]) or long (h)"))
    short_rho: float = field(default=0.9, metadata=_help(
        "DuRNN bound on the largest singular value of U_s, in (0, 1)"))
    u_gamma: float = field(default=2.0, metadata=_help(
        "IndRNN bound abs(u) <= gamma^(1/T); gamma > 0 (below 1: a bound just under 1)"))
    u_time_steps: Optional[int] = field(default=None, metadata=_help(
        "T in the recurrent bound abs(u) <= gamma^(1/T). Default: the task's training length, "
        "fixed when the model is built and kept in its checkpoint (--tokens-per-sample for "
        "language models, --seq-len for adding_problem, the pixel count for pixel_sequence; "
        "for speech the encoder's subsampled frame bound and the decoder's "
        "--max-target-positions); 100 where the task has no natural length (translation, "
        "sentence_prediction)"))
    u_last_eps: float = field(default=0.0, metadata=_help(
        "if > 0, the last layer's u starts in U(eps^(1/T), gamma^(1/T)) for long memory; "
        "must be < gamma"))
    u_last_clamp: bool = field(default=False, metadata=_help(
        "keep the last layer's u in [eps^(1/T), gamma^(1/T)] (eps = --u-last-eps) during "
        "training too, clamped like the upper bound, so its memory cannot fade"))
    long_input_init_std: float = field(default=0.0, metadata=_help(
        "if > 0, the input matrices of the independent recurrences (IndRNN's W, DuRNN's W_l "
        "and W_li) start from N(0, std^2) instead of U(+-1/sqrt(fan_in)), so a state with u "
        "near 1 does not sum large inputs over T steps at the start (the IndRNN paper's "
        "adding-problem code uses 0.001)"))
    norm: str = field(default="layer", metadata=_help(
        "normalisation between modules: " + ", ".join(NORMS)))
    block: str = field(default="post-norm", metadata=_help(
        "layer structure: post-norm (norm(cell(x) + skip(x))), residual (docs/model.md section 4: "
        "skip(x) + cell(norm(cell(norm(x)))), two cells per layer) or dense (docs/model.md section 4: "
        "[x ; norm(cell(x))], each layer reads the input and all earlier layers' outputs)"))
    no_residual: bool = field(default=False, metadata=_help(
        "no residual connections (by default each module adds its input, through a linear "
        "projection where sizes differ)"))
    bidirectional: bool = field(default=False, metadata=_help(
        "add a second stack over the reversed valid part of each sequence (encoders)"))
    dilations: Optional[str] = field(default=None, metadata=_help(
        "comma-separated dilation per layer, e.g. 1,2,4 (overrides --dilation-base)"))
    dilation_base: int = field(default=1, metadata=_help(
        "layer l recurs over t - M^(l-1); 1 = no dilation"))
    layer_dropout: float = field(default=0.0, metadata=_help(
        "dropout between modules, one mask shared over time"))

    @classmethod
    def of(cls, config) -> "StackOptions":
        """The stack options held by ``config``, a model config that inherits these fields."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})

    def layer_dilations(self) -> List[int]:
        if self.dilations:
            return [int(v) for v in str(self.dilations).split(",")]
        return [self.dilation_base ** layer for layer in range(self.num_layers)]

    def short_and_long_sizes(self):
        """(N_s, N_l) of a DuRNN module."""
        short = self.short_size if self.short_size is not None else max(1, self.hidden_size // 4)
        long = self.hidden_size - short if self.module_output == "concat" else self.hidden_size
        return short, long

    def time_steps(self) -> int:
        """T of the recurrent bound: ``u_time_steps``, or :data:`DEFAULT_TIME_STEPS` unset."""
        return self.u_time_steps if self.u_time_steps is not None else DEFAULT_TIME_STEPS

    def u_bound(self) -> float:
        return self.u_gamma ** (1.0 / self.time_steps())

    def validate(self) -> None:
        check_choice("cell", self.cell, CELLS)
        check_positive_int("num_layers", self.num_layers)
        check_positive_int("hidden_size", self.hidden_size)
        check_choice("short_activation", self.short_activation, SHORT_ACTIVATIONS)
        check_choice("selection", self.selection, SELECTIONS)
        check_choice("long_input", self.long_input, LONG_INPUTS)
        check_choice("module_output", self.module_output, MODULE_OUTPUTS)
        check_choice("norm", self.norm, NORMS)
        check_choice("block", self.block, BLOCKS)
        check(not (self.no_residual and self.block != "post-norm"), "no_residual", True,
              f"off with --block {self.block} (its skip connection is the point of the block)")
        check_range("short_rho", self.short_rho, 0, 1, lo_open=True, hi_open=True)
        check_range("u_gamma", self.u_gamma, 0, float("inf"), lo_open=True, hi_open=True)
        if self.u_time_steps is not None:
            check_positive_int("u_time_steps", self.u_time_steps)
        check_range("u_last_eps", self.u_last_eps, 0, self.u_gamma, hi_open=True)
        check(not self.u_last_clamp or self.u_last_eps > 0, "u_last_clamp", True,
              "used with --u-last-eps > 0 (the floor is eps^(1/T))")
        check_range("long_input_init_std", self.long_input_init_std, 0, float("inf"),
                    hi_open=True)
        check(self.long_input_init_std == 0 or self.cell in ("durnn", "indrnn"),
              "long_input_init_std", self.long_input_init_std,
              f"0 with --cell {self.cell} (it sets DuRNN's and IndRNN's input init)")
        check_range("layer_dropout", self.layer_dropout, 0, 1, hi_open=True)
        check_positive_int("dilation_base", self.dilation_base)
        if self.cell == "durnn":
            if self.short_size is not None:
                check_positive_int("short_size", self.short_size)
            check(self.module_output != "concat" or self.short_and_long_sizes()[0] < self.hidden_size,
                  "short_size", self.short_size, f"below hidden_size ({self.hidden_size}) with "
                  "concat output, which leaves the rest to the long-term part")
        if self.dilations:
            parts = str(self.dilations).split(",")
            ok = all(p.strip().isdigit() and int(p) > 0 for p in parts)
            check(ok, "dilations", self.dilations, "comma-separated positive integers")
            check(len(parts) == self.num_layers, "dilations", self.dilations,
                  f"one value per layer ({self.num_layers} layers, got {len(parts)} values)")
