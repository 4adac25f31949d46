"""``DURNN_DETERMINISTIC=1``: deterministic kernels for every run that imports the plugin.

fairseq 0.12 has no switch for this, so the plugin reads the environment when it is imported
(fairseq-train, its spawned distributed workers, eval-lm, ... all import it through
``--user-dir`` before building a model) and then

- calls ``torch.use_deterministic_algorithms(True)``: the CUDA backward passes of
  ``nn.Embedding``, ``torch.gather`` (bidirectional and dilated stacks), ``index_put`` with
  accumulation (adaptive softmax) and ``NLLLoss`` switch to deterministic algorithms, and any op
  without one raises instead of silently varying;
- sets ``torch.backends.cudnn.deterministic = True`` and ``benchmark = False`` (the DuRNN
  short-term ``rnn_relu`` / ``rnn_tanh`` runs through cuDNN on GPU);
- sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless already set, which cuBLAS (CUDA ≥ 10.2) needs
  for reproducible GEMMs and which torch demands in deterministic mode.

The Triton IndRNN kernels use no atomics (∂u is reduced by a torch ``sum``), so they are
deterministic either way. ``0`` or unset changes nothing; any other value is refused in one line.
"""
import os
from typing import Mapping

import torch

from .errors import OneLineError

VARIABLE = "DURNN_DETERMINISTIC"


def apply_from_environment(environ: Mapping[str, str] = os.environ) -> bool:
    """Switch torch to deterministic kernels if ``DURNN_DETERMINISTIC=1``; returns whether it did."""
    value = environ.get(VARIABLE, "0")
    if value not in ("0", "1"):
        raise OneLineError(f"{VARIABLE}={value!r}: must be 0 or 1")
    if value == "0":
        return False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return True
