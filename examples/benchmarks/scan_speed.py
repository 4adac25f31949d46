"""Forward+backward time of the IndRNN recurrence: chunked scan (``indrnn_scan``) against the
sequential loop (``indrnn_loop``), and the Triton kernel when CUDA is present, over a grid of
column counts B·N and sequence lengths T. Prints a table with the machine's name.

    python examples/benchmarks/scan_speed.py                      # B·N in {128, 1024}, T in {4096, 16384, 65536}
    python examples/benchmarks/scan_speed.py --cols 64 4096 --T 1024 8192 --device cuda

Inputs: a ~ N(0, 1) of shape (T, 1, B·N), u ~ U(-1, 1); the loss is h's sum. Times are the
median of --repeat runs after one warm-up run (seconds).
"""
import argparse

import torch
from bench_utils import fwd_bwd, header, median_seconds

from durnn_plugin.ops import indrnn_loop, indrnn_scan


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cols", type=int, nargs="+", default=[128, 1024], help="B·N values")
    p.add_argument("--T", type=int, nargs="+", default=[4096, 16384, 65536])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    fns = {"loop": indrnn_loop, "scan": indrnn_scan}
    if args.device == "cuda":
        from durnn_plugin.ops.indrnn_triton import indrnn_triton

        fns["triton"] = indrnn_triton
    print(f"IndRNN recurrence fwd+bwd seconds, {header(args.device)}")
    head = f"{'B*N':>6} {'T':>7} " + " ".join(f"{k:>9}" for k in fns) + f" {'loop/scan':>9}"
    print(head)
    gen = torch.Generator().manual_seed(0)
    for cols in args.cols:
        for T in args.T:
            a = torch.randn(T, 1, cols, generator=gen).to(args.device).requires_grad_()
            u = (torch.rand(cols, generator=gen) * 2 - 1).to(args.device).requires_grad_()
            t = {k: median_seconds(fwd_bwd(lambda f=f: f(a, u), a, u), args.repeat, args.device)
                 for k, f in fns.items()}
            row = f"{cols:>6} {T:>7} " + " ".join(f"{t[k]:>9.4f}" for k in fns)
            print(row + f" {t['loop'] / t['scan']:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
