"""Choose an IndRNN recurrence implementation per call.

``DURNN_BACKEND`` selects one: ``auto`` (default), ``reference`` (the autograd loop) or ``cpu``
(the custom-function loop, which runs on any device). ``auto`` picks the fastest path that can
run on the tensors' device and dtype: today that is ``cpu`` everywhere. Nothing is compiled at
import time.
"""
import os
from typing import Optional

from torch import Tensor

from .indrnn_cpu import indrnn_loop
from .indrnn_reference import indrnn_reference

BACKENDS = {"reference": indrnn_reference, "cpu": indrnn_loop}
ENV_VAR = "DURNN_BACKEND"


def selected_backend() -> str:
    """The backend named by ``DURNN_BACKEND``; raises one line naming the allowed values."""
    name = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if name != "auto" and name not in BACKENDS:
        allowed = ", ".join(["auto"] + sorted(BACKENDS))
        raise ValueError(f"{ENV_VAR}={name!r} is not a backend here; allowed: {allowed}")
    return name


def indrnn_recurrence(a: Tensor, u: Tensor, h0: Optional[Tensor] = None, dilation: int = 1) -> Tensor:
    """``h_t = relu(a_t + u ⊙ h_{t-d})`` for a ``(T, B, N)``, u ``(N,)``, h0 ``(d, B, N)`` or
    ``None`` (zeros). Returns h ``(T, B, N)``; the final state is ``last_states(h0, h, ...)``."""
    name = selected_backend()
    if name == "auto":
        name = "cpu"
    return BACKENDS[name](a, u, h0, dilation)
