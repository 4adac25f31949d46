"""Choose an IndRNN recurrence implementation per call.

``DURNN_BACKEND`` selects one:

* ``auto`` (default): the fastest path that can run on the tensors (rule below);
* ``reference``: the autograd loop (ground truth, slow);
* ``cpu``: the custom-function loop over time (any device);
* ``triton``: the fused Triton kernel (CUDA tensors; CPU tensors only under ``TRITON_INTERPRET=1``);
* ``scan``: the exact chunked parallel-in-time scan in torch (any device);
* ``triton_scan``: the same chunked scan as Triton kernels (where ``triton`` runs).

``auto``, with ``C = d·B·N`` columns and ``S = ceil(T/d)`` sequential steps of the dilated view:

* CUDA tensors, triton importable, dtype fp32/bf16/fp16/fp64 → ``triton_scan`` if
  ``C ≤ TRITON_SCAN_MAX_COLUMNS`` and ``S ≥ TRITON_SCAN_MIN_STEPS``, else ``triton``;
* otherwise (CPU, or CUDA without triton) → ``scan`` if ``C ≤ SCAN_MAX_COLUMNS`` and
  ``S ≥ SCAN_MIN_STEPS``, else ``cpu``.

The CUDA thresholds come from ``examples/benchmarks/gpu_speed.py`` (fwd+bwd, fp32) on an H100
(README, GPU speed): ``triton_scan`` against the sequential kernel measured 1.0-1.5x at
C = 128, T = 4096, 1.8x at C = 1024, T = 4096, 4.4-8.0x at T = 16384 and 20-28x at T = 65536;
wider C was not measured, so it keeps the sequential kernel. The torch ``scan`` on CUDA measured
0.1-0.8x of the sequential kernel, so it is not chosen there when triton is available.
The CPU thresholds come from ``examples/benchmarks/scan_speed.py`` (fwd+bwd) on a 2-core Xeon
VM shared with a training job: with C ≤ 512 and T ≥ 8192 the scan measured faster with 1 torch
thread (C = 128: 4.4-4.7x, C = 512: 1.2-1.3x) and with 2 (C = 128: 1.3-3.3x, C = 512:
1.0-1.2x); at C = 1024 it was a tie at best, and for T ≤ 4096 it lost with 2 threads (its few
whole-tensor ops stall when the cores are shared).

A backend forced through ``DURNN_BACKEND`` that cannot run raises one line, e.g.
``DURNN_BACKEND=triton cannot run here: tensors are on cpu and TRITON_INTERPRET is not set``.
Nothing is compiled or imported from triton at import time.
"""
import os
from typing import Optional

from torch import Tensor

from .indrnn_cpu import indrnn_loop
from .indrnn_reference import indrnn_reference
from .indrnn_scan import indrnn_scan
from .indrnn_triton import indrnn_triton
from .indrnn_triton_scan import indrnn_triton_scan
from .triton_support import cannot_run_reason

BACKENDS = {
    "reference": indrnn_reference,
    "cpu": indrnn_loop,
    "triton": indrnn_triton,
    "scan": indrnn_scan,
    "triton_scan": indrnn_triton_scan,
}
BACKEND_NAMES = ("auto",) + tuple(sorted(BACKENDS))
ENV_VAR = "DURNN_BACKEND"

SCAN_MAX_COLUMNS = 512  # d·B·N, CPU
SCAN_MIN_STEPS = 8192  # ceil(T/d), CPU
TRITON_SCAN_MAX_COLUMNS = 1024  # d·B·N, CUDA
TRITON_SCAN_MIN_STEPS = 4096  # ceil(T/d), CUDA
TRITON_BACKENDS = ("triton", "triton_scan")


def selected_backend() -> str:
    """The backend named by ``DURNN_BACKEND``; raises one line naming the allowed values."""
    name = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if name not in BACKEND_NAMES:
        raise ValueError(f"{ENV_VAR}={name!r} is not a backend here; allowed: {', '.join(BACKEND_NAMES)}")
    return name


def scan_pays_off(a: Tensor, dilation: int, max_columns: int, min_steps: int) -> bool:
    """The few-columns / long-sequence rule of ``auto``: ``d·B·N ≤ max_columns`` and
    ``ceil(T/d) ≥ min_steps``."""
    T, B, N = a.shape
    d = dilation
    return d * B * N <= max_columns and -(-T // d) >= min_steps


def choose_backend(a: Tensor, dilation: int = 1) -> str:
    """The backend a call on ``a`` will use under the current ``DURNN_BACKEND``; raises a one-line
    ``RuntimeError`` if a forced backend cannot run on ``a``."""
    name = selected_backend()
    if name in TRITON_BACKENDS:
        reason = cannot_run_reason(a)
        if reason is not None:
            raise RuntimeError(f"{ENV_VAR}={name} cannot run here: {reason}")
        return name
    if name != "auto":
        return name
    if a.device.type == "cuda" and cannot_run_reason(a) is None:
        return ("triton_scan" if scan_pays_off(a, dilation, TRITON_SCAN_MAX_COLUMNS,
                                               TRITON_SCAN_MIN_STEPS) else "triton")
    return "scan" if scan_pays_off(a, dilation, SCAN_MAX_COLUMNS, SCAN_MIN_STEPS) else "cpu"


def indrnn_recurrence(a: Tensor, u: Tensor, h0: Optional[Tensor] = None, dilation: int = 1) -> Tensor:
    """``h_t = relu(a_t + u ⊙ h_{t-d})`` for a ``(T, B, N)``, u ``(N,)``, h0 ``(d, B, N)`` or
    ``None`` (zeros). Returns h ``(T, B, N)``; the final state is ``last_states(h0, h, ...)``."""
    return BACKENDS[choose_backend(a, dilation)](a, u, h0, dilation)
