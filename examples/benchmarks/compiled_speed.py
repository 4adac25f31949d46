"""Forward+backward time of the CPU recurrences: the compiled loops (``compiled``,
``short=compiled``) against the torch loops (``cpu``, ``short=cpu``) and the chunked scan, at the
shapes the recipes run, measured side by side in one run with the speed-up of each.

    python examples/benchmarks/compiled_speed.py                 # torch's default threads
    python examples/benchmarks/compiled_speed.py --threads 1

IndRNN rows time ``h_t = relu(a_t + u ⊙ h_{t-1})`` on a ``(T, B, N)``; DuRNN short-term rows time
``s_t = relu(p_t + s_{t-1} U_sᵀ)`` on p ``(T, B, N_s)``. The loss is the output's sum; times are
the median of --repeat runs after one warm-up run (the first call also builds the extension).
"""
import argparse

import torch
from bench_utils import fwd_bwd, header, median_seconds

from durnn_plugin.ops import indrnn_loop, indrnn_scan, short_rnn_loop
from durnn_plugin.ops.indrnn_compiled import indrnn_compiled
from durnn_plugin.ops.short_rnn_compiled import short_rnn_compiled

# (label, T, B, N): layer_speed.py's layer, the long-range recipes, few columns and long T
INDRNN_SHAPES = [("layer_speed", 1024, 32, 512), ("adding, T=5000", 5000, 50, 96),
                 ("pixel MNIST", 784, 50, 384), ("few columns", 16384, 1, 128)]
SHORT_SHAPES = [("layer_speed", 1024, 32, 128), ("adding, T=5000", 5000, 50, 32),
                ("pixel MNIST", 784, 50, 128), ("Brown LM", 128, 32, 128)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every T (tests: tiny)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    print(f"CPU recurrences fwd+bwd seconds, fp32, {header('cpu')}")
    print("| recurrence | shape (T, B, N) | torch loop | scan | compiled | compiled vs loop |")
    print("|---|---|---:|---:|---:|---:|")
    for label, T, B, N in INDRNN_SHAPES:
        T = max(1, int(T * args.scale))
        a = torch.randn(T, B, N, generator=gen).requires_grad_()
        u = (torch.rand(N, generator=gen) * 2 - 1).requires_grad_()
        t = {name: median_seconds(fwd_bwd(lambda f=f: f(a, u), a, u), args.repeat)
             for name, f in (("loop", indrnn_loop), ("scan", indrnn_scan),
                             ("compiled", indrnn_compiled))}
        print(f"| IndRNN, {label} | ({T}, {B}, {N}) | {t['loop']:.4f} | {t['scan']:.4f} | "
              f"{t['compiled']:.4f} | {t['loop'] / t['compiled']:.1f}x |", flush=True)
    for label, T, B, N in SHORT_SHAPES:
        T = max(1, int(T * args.scale))
        p_ = torch.randn(T, B, N, generator=gen).requires_grad_()
        U = (0.9 * torch.linalg.qr(torch.randn(N, N, generator=gen))[0]).requires_grad_()
        s0 = torch.zeros(B, N)
        t = {name: median_seconds(fwd_bwd(lambda f=f: f(p_, U, s0, "relu"), p_, U), args.repeat)
             for name, f in (("loop", short_rnn_loop), ("compiled", short_rnn_compiled))}
        print(f"| DuRNN short-term, {label} | ({T}, {B}, {N}) | {t['loop']:.4f} | – | "
              f"{t['compiled']:.4f} | {t['loop'] / t['compiled']:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
