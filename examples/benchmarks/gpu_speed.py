"""GPU speed of the recurrent layers, side by side in one run (issue: fused Triton kernels).

    python examples/benchmarks/gpu_speed.py                 # the full grid on cuda
    python examples/benchmarks/gpu_speed.py --device cpu --T 64 --B 4 --N 32 --paper-N 0 \
        --scan-T 256 --repeat 1                             # a smoke run without a GPU

Three tables, each with the device name and date:

1. fwd+bwd seconds of one IndRNN layer, one DuRNN layer (N_s = N/4), ``nn.LSTM`` and
   ``nn.GRU`` (cuDNN) of equal width N, for each T and dtype, with speed-ups over the LSTM
   (goals at T = 1024 bf16: IndRNN >= 12x, DuRNN >= 5x). ``--paper-N`` adds the IndRNN paper's
   width (128) at the same T values.
2. Effective bandwidth of the fused recurrence kernel (fwd+bwd moves 5 elements per (t, b, n):
   a and h in the forward; g, h and ∂a in the backward) against the device's copy bandwidth
   (``y.copy_(x)``, 2 elements per element copied). Goal: >= 80%.
3. The chunked scans (``triton_scan``: Triton kernels; ``scan``: vectorised torch) against the
   sequential kernel for few columns and long T (goal: >= 10x at B·N <= 1024, T >= 16k). On a
   device where triton cannot run (CPU without ``TRITON_INTERPRET``) the ``triton_scan`` column
   shows ``-``.
"""
import argparse

import torch
from bench_utils import fwd_bwd, header, median_seconds

from durnn_plugin.modules import DuRNNCell, IndRNNCell
from durnn_plugin.ops import (
    indrnn_loop, indrnn_recurrence, indrnn_scan, indrnn_triton, indrnn_triton_scan,
)
from durnn_plugin.ops.triton_support import cannot_run_reason

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def layer_table(args, N: int) -> None:
    print(f"\nfwd+bwd seconds, B={args.B}, N={N}, {header(args.device)}")
    print("| dtype | T | IndRNN | DuRNN | LSTM | GRU | IndRNN speed-up | DuRNN speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for dname in args.dtypes:
        dtype = DTYPES[dname]
        for T in args.T:
            bound = 2.0 ** (1 / T)
            layers = {
                "IndRNN": IndRNNCell(N, N, bound),
                "DuRNN": DuRNNCell(N, N // 4, N - N // 4, u_bound=bound),
                "LSTM": torch.nn.LSTM(N, N),
                "GRU": torch.nn.GRU(N, N),
            }
            x = torch.randn(T, args.B, N, device=args.device, dtype=dtype, requires_grad=True)
            t = {}
            for name, layer in layers.items():
                layer.to(args.device, dtype)
                t[name] = median_seconds(fwd_bwd(lambda m=layer: m(x)[0], x, *layer.parameters()),
                                         args.repeat, args.device)
            print(f"| {dname} | {T} | {t['IndRNN']:.4f} | {t['DuRNN']:.4f} | {t['LSTM']:.4f} | "
                  f"{t['GRU']:.4f} | {t['LSTM'] / t['IndRNN']:.1f}x | {t['LSTM'] / t['DuRNN']:.1f}x |",
                  flush=True)


def copy_bandwidth(args, dtype) -> float:
    x = torch.randn(64 * 2 ** 20, device=args.device).to(dtype)
    y = torch.empty_like(x)
    s = median_seconds(lambda: y.copy_(x), args.repeat, args.device)
    return 2 * x.numel() * x.element_size() / s / 1e9


def bandwidth_table(args) -> None:
    print(f"\nrecurrence kernel (DURNN_BACKEND=auto) fwd+bwd bandwidth, B={args.B}, N={args.N}, "
          f"{header(args.device)}")
    print("| dtype | T | seconds | GB/s | copy GB/s | % of copy |")
    print("|---|---|---|---|---|---|")
    for dname in args.dtypes:
        dtype = DTYPES[dname]
        copy = copy_bandwidth(args, dtype)
        for T in args.T:
            a = torch.randn(T, args.B, args.N, device=args.device, dtype=dtype, requires_grad=True)
            u = torch.rand(args.N, device=args.device, dtype=dtype, requires_grad=True)
            s = median_seconds(fwd_bwd(lambda: indrnn_recurrence(a, u), a, u), args.repeat, args.device)
            gbs = 5 * a.numel() * a.element_size() / s / 1e9
            print(f"| {dname} | {T} | {s:.5f} | {gbs:.0f} | {copy:.0f} | {100 * gbs / copy:.0f}% |",
                  flush=True)


def scan_table(args) -> None:
    sequential = indrnn_triton if args.device == "cuda" else indrnn_loop
    print(f"\nscans vs sequential recurrence ({sequential.__name__}), fp32, fwd+bwd seconds, "
          f"{header(args.device)}")
    print("| B·N | T | sequential | triton_scan | scan (torch) | triton_scan speed-up | "
          "scan speed-up |")
    print("|---|---|---|---|---|---|---|")
    for cols in args.scan_cols:
        for T in args.scan_T:
            a = torch.randn(T, 1, cols, device=args.device, requires_grad=True)
            u = (torch.rand(cols, device=args.device) * 2 - 1).requires_grad_()

            def seconds(fn):
                return median_seconds(fwd_bwd(lambda: fn(a, u), a, u), args.repeat, args.device)

            seq, scan = seconds(sequential), seconds(indrnn_scan)
            if cannot_run_reason(a) is None:
                tscan = seconds(indrnn_triton_scan)
                tscan_s, tscan_x = f"{tscan:.4f}", f"{seq / tscan:.1f}x"
            else:
                tscan_s = tscan_x = "-"
            print(f"| {cols} | {T} | {seq:.4f} | {tscan_s} | {scan:.4f} | {tscan_x} | "
                  f"{seq / scan:.1f}x |", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--T", type=int, nargs="+", default=[256, 512, 1024, 4096])
    p.add_argument("--B", type=int, default=64)
    p.add_argument("--N", type=int, default=1024)
    p.add_argument("--paper-N", type=int, default=128, help="second width (0: skip)")
    p.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=sorted(DTYPES))
    p.add_argument("--scan-cols", type=int, nargs="+", default=[128, 1024])
    p.add_argument("--scan-T", type=int, nargs="+", default=[4096, 16384, 65536])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    torch.manual_seed(0)
    layer_table(args, args.N)
    if args.paper_N:
        layer_table(args, args.paper_N)
    bandwidth_table(args)
    scan_table(args)


if __name__ == "__main__":
    main()
