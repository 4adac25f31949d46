"""The sequential Triton IndRNN recurrence (docs/model.md section 1): one program per block of columns
loops over all of time.

    h_t = relu(a_t + u ⊙ h_{t-d})

It is the chunked scan of :mod:`.indrnn_triton_scan` with a single chunk (``K = T``): no chunk
summaries are formed, the forward is its chunk kernel started from ``h0`` and the backward its
chunk kernel started from a zero incoming gradient, so one set of kernels serves both backends::

    ∂a_t = m_t ⊙ (g_t + u ⊙ ∂a_{t+1})      ∂h_{-1} = u ⊙ ∂a_0      ∂u = Σ_t ∂a_t ⊙ h_{t-1}

with ``m_t = 1[h_t > 0]``. Layout, dtypes (state and ∂u in fp32, fp64 for fp64 inputs; inputs and
outputs fp32, bf16, fp16 or fp64), the deterministic ∂u (per-column sums reduced in torch, no
atomics) and ``T`` as a runtime argument (no recompilation for new lengths) are described there.
"""
from typing import Optional

from torch import Tensor

from .indrnn_triton_scan import ONE_CHUNK, IndRNNTritonChunks
from .time_dilation import on_dilated_view
from .triton_support import cannot_run_reason


def indrnn_triton(a: Tensor, u: Tensor, h0: Optional[Tensor] = None, dilation: int = 1,
                  block: Optional[int] = None) -> Tensor:
    """Same contract as :func:`.indrnn_cpu.indrnn_loop`: a ``(T, B, N)``, u ``(N,)``, h0
    ``(d, B, N)`` or ``None`` (zeros); returns h ``(T, B, N)`` in ``a``'s dtype. ``block``
    overrides the columns per program (a power of two; tests use it to get several programs and
    a ragged last block). Raises ``RuntimeError`` (one line) where it cannot run."""
    reason = cannot_run_reason(a)
    if reason is not None:
        raise RuntimeError(f"indrnn_triton cannot run here: {reason}")
    return on_dilated_view(IndRNNTritonChunks.apply, a, u, h0, dilation, ONE_CHUNK, block)
