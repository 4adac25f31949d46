"""Choose the recurrence implementations per call: the IndRNN recurrence and the DuRNN short-term
recurrence.

``DURNN_BACKEND`` is a comma-separated list with at most one IndRNN name and at most one
``short=NAME`` item; an op not named uses ``auto``. IndRNN names:

* ``auto`` (default): the fastest path that can run on the tensors (rule below);
* ``reference``: the autograd loop (ground truth, slow);
* ``cpu``: the custom-function loop over time in torch ops (any device);
* ``compiled``: the same loop compiled (:mod:`.indrnn_compiled`; CPU, fp32/fp64; built on first
  use, see :mod:`.cpu_extension`);
* ``triton``: the fused Triton kernel (CUDA tensors; CPU tensors only under ``TRITON_INTERPRET=1``);
* ``scan``: the exact chunked parallel-in-time scan in torch (any device);
* ``triton_scan``: the same chunked scan as Triton kernels (where ``triton`` runs).

Short-term names (``s_t = φ(W_s x_t + b_s + U_s s_{t-1})``, :func:`short_rnn_recurrence`):

* ``short=auto`` (default): ``cudnn`` for CUDA tensors; on the CPU ``compiled`` where it can run
  (fp32/fp64 and a built extension), else ``cpu``;
* ``short=cpu``: one GEMM for all ``W_s x_t``, then the custom-function loop over time
  (:mod:`.short_rnn_cpu`; any device);
* ``short=compiled``: one GEMM, then the same loop compiled (:mod:`.short_rnn_compiled`; CPU,
  fp32/fp64);
* ``short=cudnn``: ``torch.rnn_relu`` / ``rnn_tanh`` (:mod:`.short_rnn_cudnn`; cuDNN on CUDA, bf16
  run in fp32; on the CPU torch's own kernel with its O(T²) backward);
* ``short=triton``: one GEMM, then the fused Triton kernels (:mod:`.short_rnn_triton`; where
  ``triton`` runs). Not chosen by ``auto``: it has not been timed on a GPU yet.

Example: ``DURNN_BACKEND=triton,short=triton``.

IndRNN ``auto``, with ``C = d·B·N`` columns and ``S = ceil(T/d)`` sequential steps of the dilated
view:

* CUDA tensors, triton importable, dtype fp32/bf16/fp16/fp64 → ``triton_scan`` if
  ``C ≤ TRITON_SCAN_MAX_COLUMNS`` and ``S ≥ TRITON_SCAN_MIN_STEPS``, else ``triton``;
* CPU tensors the compiled loop can run (fp32/fp64, extension built) → ``compiled``, except
  with 1 torch thread and ``C > COMPILED_ONE_THREAD_MAX_COLUMNS``;
* otherwise (other CPU dtypes, no extension, or CUDA without triton) → ``scan`` if
  ``C ≤ SCAN_MAX_COLUMNS`` and ``S ≥ SCAN_MIN_STEPS``, else ``cpu``.

The CUDA thresholds come from ``examples/benchmarks/gpu_speed.py`` (fwd+bwd, fp32) on an H100
(examples/benchmarks/README.md, GPU): ``triton_scan`` against the sequential kernel measured 1.0-1.5x at
C = 128, T = 4096, 1.8x at C = 1024, T = 4096, 4.4-8.0x at T = 16384 and 20-28x at T = 65536;
wider C was not measured, so it keeps the sequential kernel. The torch ``scan`` on CUDA measured
0.1-0.8x of the sequential kernel, so it is not chosen there when triton is available.
The CPU thresholds come from ``examples/benchmarks/scan_speed.py`` (fwd+bwd) on a 2-core Xeon
VM shared with a training job: with C ≤ 512 and T ≥ 8192 the scan measured faster with 1 torch
thread (C = 128: 4.4-4.7x, C = 512: 1.2-1.3x) and with 2 (C = 128: 1.3-3.3x, C = 512:
1.0-1.2x); at C = 1024 it was a tie at best, and for T ≤ 4096 it lost with 2 threads (its few
whole-tensor ops stall when the cores are shared).

The CPU rule comes from ``examples/benchmarks/compiled_speed.py`` (fwd+bwd, fp32, 1 and 2
threads, a 2-core AMD EPYC, examples/benchmarks/README.md, CPU): with 2 threads the compiled
IndRNN loop was 1.3-17x faster than the torch loop and faster than the scan at every shape
measured; with 1 thread it was faster at 4,800 columns (1.2x) and 128 columns (17x) but
0.8-0.9x at 16,384 and 19,200 columns, where the torch loop stays. The compiled short-term loop
was faster at every shape and thread count (1.1-1.7x).

A backend forced through ``DURNN_BACKEND`` that cannot run raises one line, e.g.
``DURNN_BACKEND=triton cannot run here: tensors are on cpu and TRITON_INTERPRET is not set``
(``DURNN_BACKEND=short=triton cannot run here: ...`` for the short-term op).
Nothing is compiled or imported from triton at import time.
"""
import functools
import os
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from .cpu_extension import unavailable_reason
from .indrnn_compiled import indrnn_compiled
from .indrnn_cpu import indrnn_loop
from .indrnn_reference import indrnn_reference
from .indrnn_scan import indrnn_scan
from .indrnn_triton import indrnn_triton
from .indrnn_triton_pipelined import indrnn_triton_pipelined
from .indrnn_triton_scan import indrnn_triton_scan
from .short_rnn_compiled import short_rnn_compiled
from .short_rnn_cpu import short_rnn_loop
from .short_rnn_cudnn import short_rnn_cudnn
from .short_rnn_triton import short_rnn_triton
from .single_step import indrnn_step, short_rnn_step
from .triton_support import cannot_run_reason

BACKENDS = {
    "reference": indrnn_reference,
    "cpu": indrnn_loop,
    "compiled": indrnn_compiled,
    "triton": indrnn_triton,
    "scan": indrnn_scan,
    "triton_scan": indrnn_triton_scan,
    "triton_pipelined": indrnn_triton_pipelined,
}
BACKEND_NAMES = ("auto",) + tuple(sorted(BACKENDS))
SHORT_BACKEND_NAMES = ("auto", "compiled", "cpu", "cudnn", "triton")
SHORT_PREFIX = "short="
ENV_VAR = "DURNN_BACKEND"

SCAN_MAX_COLUMNS = 512  # d·B·N, CPU
SCAN_MIN_STEPS = 8192  # ceil(T/d), CPU
COMPILED_ONE_THREAD_MAX_COLUMNS = 8192  # d·B·N, CPU, 1 torch thread
TRITON_SCAN_MAX_COLUMNS = 1024  # d·B·N, CUDA
TRITON_SCAN_MIN_STEPS = 4096  # ceil(T/d), CUDA
TRITON_BACKENDS = ("triton", "triton_scan", "triton_pipelined")


def forced_backends() -> Dict[str, str]:
    """``{"indrnn": name, "short": name}`` from ``DURNN_BACKEND`` (``auto`` where not named);
    raises one line naming the allowed values."""
    return dict(parse_backends(os.environ.get(ENV_VAR, "")))


@functools.lru_cache(maxsize=8)
def parse_backends(value: str) -> Tuple[Tuple[str, str], ...]:
    """:func:`forced_backends` of one ``DURNN_BACKEND`` value, parsed once per value (every
    recurrence call reads it)."""
    names = {"indrnn": "auto", "short": "auto"}
    named = set()
    for item in value.split(","):
        item = item.strip().lower()
        if not item:
            continue
        if item.startswith(SHORT_PREFIX):
            op, name, allowed = "short", item[len(SHORT_PREFIX):], SHORT_BACKEND_NAMES
            if name not in allowed:
                raise ValueError(f"{ENV_VAR}: {item!r} is not a short-term backend here; allowed: "
                                 f"{', '.join(SHORT_PREFIX + n for n in allowed)}")
        else:
            op, name = "indrnn", item
            if name not in BACKEND_NAMES:
                raise ValueError(f"{ENV_VAR}={name!r} is not a backend here; allowed: "
                                 f"{', '.join(BACKEND_NAMES)}")
        if op in named:
            raise ValueError(f"{ENV_VAR}={value!r} names two {op} backends; name at most one")
        named.add(op)
        names[op] = name
    return tuple(names.items())


def selected_backend() -> str:
    """The IndRNN backend named by ``DURNN_BACKEND`` (``auto`` if none)."""
    return forced_backends()["indrnn"]


def scan_pays_off(a: Tensor, dilation: int, max_columns: int, min_steps: int) -> bool:
    """The few-columns / long-sequence rule of ``auto``: ``d·B·N ≤ max_columns`` and
    ``ceil(T/d) ≥ min_steps``."""
    T, B, N = a.shape
    d = dilation
    return d * B * N <= max_columns and -(-T // d) >= min_steps


def compiled_runs_on(*tensors: Tensor) -> bool:
    """``auto``'s CPU test: the compiled loops can run on these tensors (fp32/fp64 CPU tensors
    of one dtype; the extension is built on the first such call)."""
    return unavailable_reason(*tensors) is None


def compiled_pays_off(a: Tensor, dilation: int) -> bool:
    """``auto``'s CPU rule for the compiled IndRNN loop: with 2 or more torch threads always;
    with 1 thread only for ``d·B·N ≤ COMPILED_ONE_THREAD_MAX_COLUMNS`` (above it the torch loop
    measured as fast or faster)."""
    _, B, N = a.shape
    return torch.get_num_threads() > 1 or dilation * B * N <= COMPILED_ONE_THREAD_MAX_COLUMNS


def refuse_if_cannot_run(label: str, reason: Optional[str]) -> None:
    if reason is not None:
        raise RuntimeError(f"{ENV_VAR}={label} cannot run here: {reason}")


def choose_backend(a: Tensor, dilation: int = 1, u: Optional[Tensor] = None) -> str:
    """The backend a call on ``a`` (and ``u``) will use under the current ``DURNN_BACKEND``;
    raises a one-line ``RuntimeError`` if a forced backend cannot run on them."""
    name = selected_backend()
    tensors = (a,) if u is None else (a, u)
    if name in TRITON_BACKENDS:
        refuse_if_cannot_run(name, cannot_run_reason(a))
        return name
    if name == "compiled":
        refuse_if_cannot_run(name, unavailable_reason(*tensors))
    if name != "auto":
        return name
    if a.device.type == "cuda" and cannot_run_reason(a) is None:
        return ("triton_scan" if scan_pays_off(a, dilation, TRITON_SCAN_MAX_COLUMNS,
                                               TRITON_SCAN_MIN_STEPS) else "triton")
    if compiled_runs_on(*tensors) and compiled_pays_off(a, dilation):
        return "compiled"
    return "scan" if scan_pays_off(a, dilation, SCAN_MAX_COLUMNS, SCAN_MIN_STEPS) else "cpu"


def indrnn_recurrence(a: Tensor, u: Tensor, h0: Optional[Tensor] = None, dilation: int = 1) -> Tensor:
    """``h_t = relu(a_t + u ⊙ h_{t-d})`` for a ``(T, B, N)``, u ``(N,)``, h0 ``(d, B, N)`` or
    ``None`` (zeros). Returns h ``(T, B, N)``; the final state is ``last_states(h0, h, ...)``.
    Under ``auto``, a call with one step per sequence (``T ≤ d``) runs :func:`.indrnn_step`."""
    if a.shape[0] <= dilation and a.shape[0] > 0 and selected_backend() == "auto":
        return indrnn_step(a, u, h0)
    return BACKENDS[choose_backend(a, dilation, u)](a, u, h0, dilation)


def choose_short_backend(x: Tensor) -> str:
    """The short-term backend (``compiled``, ``cpu``, ``cudnn`` or ``triton``) a call on x will
    use under the current ``DURNN_BACKEND``; raises a one-line ``RuntimeError`` if
    ``short=triton`` or ``short=compiled`` is forced and cannot run on x."""
    name = forced_backends()["short"]
    if name == "triton":
        refuse_if_cannot_run(SHORT_PREFIX + name, cannot_run_reason(x))
    if name == "compiled":
        refuse_if_cannot_run(SHORT_PREFIX + name, unavailable_reason(x))
    if name != "auto":
        return name
    if x.device.type == "cuda":
        return "cudnn"
    return "compiled" if compiled_runs_on(x) else "cpu"


def short_rnn_recurrence(x: Tensor, W: Tensor, b: Tensor, U: Tensor, s0: Tensor,
                         activation: str = "relu", training: bool = True) -> Tensor:
    """``s_t = φ(W x_t + b + s_{t-1} Uᵀ)`` for x ``(T, B, D)``, W ``(N, D)``, b ``(N,)``, U
    ``(N, N)``, s0 ``(B, N)``; returns s ``(T, B, N)`` in x's dtype. ``training`` is cuDNN's
    ``train`` flag (the other backends ignore it). Under ``short=auto``, a call with one step
    (``T = 1``) runs :func:`.short_rnn_step`."""
    if x.shape[0] == 1 and forced_backends()["short"] == "auto":
        return short_rnn_step(x, W, b, U, s0, activation)
    name = choose_short_backend(x)
    if name == "cudnn":
        return short_rnn_cudnn(x, W, b, U, s0, activation, training)
    p = nn.functional.linear(x, W, b)
    op = {"triton": short_rnn_triton, "compiled": short_rnn_compiled}.get(name, short_rnn_loop)
    return op(p, U.to(p.dtype), s0.to(p.dtype), activation)
