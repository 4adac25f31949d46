"""The DuRNN short-term recurrence through torch's Elman RNN op (cuDNN on CUDA)::

    s_t = φ(W x_t + b + s_{t-1} Uᵀ)     x ``(T, B, D)``, W ``(N, D)``, b ``(N,)``, U ``(N, N)``,
                                         s_{-1} = s0 ``(B, N)``, φ = relu or tanh

``torch.rnn_relu`` / ``torch.rnn_tanh`` do the input GEMM themselves. cuDNN's bf16 RNN is slower
than its fp32 one (H100, T = 1024, B = 64, N = 256: examples/benchmarks/README.md), so bf16 inputs run in
fp32 and the result is cast back. On the CPU the same op runs torch's own kernel, which records
one autograd node per step (O(T²) backward): use :mod:`.short_rnn_cpu` there.
"""
import torch
from torch import Tensor


def short_rnn_cudnn(x: Tensor, W: Tensor, b: Tensor, U: Tensor, s0: Tensor,
                    activation: str = "relu", training: bool = True) -> Tensor:
    """s ``(T, B, N)`` in x's dtype; ``training`` is the op's ``train`` flag (cuDNN keeps what
    the backward needs only when it is set)."""
    rnn = torch.rnn_relu if activation == "relu" else torch.rnn_tanh
    dtype = torch.float32 if x.dtype == torch.bfloat16 else x.dtype
    params = [w.to(dtype) for w in (W, U, b, torch.zeros_like(b))]
    s = rnn(x.to(dtype), s0.unsqueeze(0).to(dtype).contiguous(), params, True, 1, 0.0, training,
            False, False)[0]
    return s.to(x.dtype)
