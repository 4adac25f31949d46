"""GPU speed of the recurrent layers and their recurrence kernels, side by side in one run.

    python examples/benchmarks/gpu_speed.py                 # the full grid on cuda
    python examples/benchmarks/gpu_speed.py --device cpu --T 64 --B 4 --N 32 --paper-N 0 \
        --scan-T 256 --repeat 1                             # a smoke run without a GPU

Four tables, each with the device name, torch version and date:

1. fwd+bwd seconds of one IndRNN layer, one DuRNN layer (N_s = N/4) with the default backends
   and with ``DURNN_BACKEND=short=triton`` (its short-term part through the fused Triton kernel),
   ``nn.LSTM`` and ``nn.GRU`` (cuDNN) of equal width N, for each T and dtype, with speed-ups over
   the LSTM (goals at T = 1024, B = 64, N = 1024, bf16: IndRNN >= 25x, DuRNN >= 10x).
   ``--paper-N`` adds the IndRNN paper's width (128) at the same T values.
2. The DuRNN short-term recurrence alone, ``s_t = relu(W x_t + b + U s_{t-1})`` with D = N inputs
   and N_s = N/4 units (σ_max(U) = 0.9), fwd+bwd: cuDNN ``rnn_relu`` (``short=cudnn``, bf16 run in
   fp32 as the layer does) against one GEMM plus the fused kernel (``short=triton``) for each
   ``--short-block-b`` (batch rows per program); and the kernel alone (``p`` given) with its
   effective bandwidth, counted as in table 3.
3. Effective bandwidth of the IndRNN recurrence kernels, the one ``auto`` picks and the pipelined
   one (``indrnn_triton_pipelined``) for each ``--pipelined-block`` and ``--pipelined-stages``:
   fwd+bwd moves 5 elements per (t, b, n) in the I/O dtype (a and h in the forward; g, h and ∂a
   in the backward), against the device's copy bandwidth (``y.copy_(x)``, 2 elements per element
   copied). Goal: >= 70% at T = 4096, B = 64, N = 1024 in fp32 and bf16.
4. The chunked scans (``triton_scan``: Triton kernels; ``scan``: vectorised torch) against the
   sequential kernel for few columns and long T (goal: >= 10x at B·N <= 1024, T >= 16k).

Where a Triton kernel cannot run (CPU without ``TRITON_INTERPRET``; a state matrix too large for
one program's shared memory) its cells show ``-`` and the reason is printed once under the table.
"""
import argparse
import contextlib
import os
from typing import Callable, Dict, Optional

import torch
from bench_utils import fwd_bwd, header, median_seconds

from durnn_plugin.modules import DuRNNCell, IndRNNCell
from durnn_plugin.ops import (
    choose_backend, indrnn_loop, indrnn_recurrence, indrnn_scan, indrnn_triton,
    indrnn_triton_pipelined, indrnn_triton_scan, short_rnn_cudnn, short_rnn_triton,
)
from durnn_plugin.ops.triton_support import cannot_run_reason

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@contextlib.contextmanager
def backend(value: str):
    """``DURNN_BACKEND=value`` inside the block."""
    old = os.environ.get("DURNN_BACKEND")
    os.environ["DURNN_BACKEND"] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ["DURNN_BACKEND"]
        else:
            os.environ["DURNN_BACKEND"] = old


def seconds_or_reason(step: Callable[[], None], args, reasons: Dict[str, None]) -> Optional[float]:
    """``median_seconds(step)``, or ``None`` (recording the one-line reason) where a Triton kernel
    says it cannot run here."""
    try:
        return median_seconds(step, args.repeat, args.device)
    except RuntimeError as e:
        if "cannot run here" not in str(e):
            raise
        reasons[str(e)] = None
        return None


def cell(seconds: Optional[float], digits: int = 4) -> str:
    return "-" if seconds is None else f"{seconds:.{digits}f}"


def ratio(num: float, den: Optional[float]) -> str:
    return "-" if den is None else f"{num / den:.1f}x"


def table_header(title: str, args, columns: str) -> None:
    """The title with the machine, torch version and date, then a markdown header row."""
    print(f"\n{title}, {header(args.device)}")
    print(f"| {columns} |")
    print("|" + "---|" * (columns.count("|") + 1))


def print_reasons(reasons: Dict[str, None]) -> None:
    for reason in reasons:
        print(f"- not run: {reason}")


def layer_table(args, N: int) -> None:
    table_header(f"fwd+bwd seconds, B={args.B}, N={N}", args,
                 "dtype | T | IndRNN | DuRNN | DuRNN short=triton | LSTM | GRU | IndRNN speed-up | "
                 "DuRNN speed-up | DuRNN short=triton speed-up")
    reasons: Dict[str, None] = {}
    for dname in args.dtypes:
        dtype = DTYPES[dname]
        for T in args.T:
            bound = 2.0 ** (1 / T)
            durnn = DuRNNCell(N, N // 4, N - N // 4, u_bound=bound)
            layers = {
                "IndRNN": IndRNNCell(N, N, bound),
                "DuRNN": durnn,
                "LSTM": torch.nn.LSTM(N, N),
                "GRU": torch.nn.GRU(N, N),
            }
            x = torch.randn(T, args.B, N, device=args.device, dtype=dtype, requires_grad=True)
            t = {}
            for name, layer in layers.items():
                layer.to(args.device, dtype)
                t[name] = median_seconds(fwd_bwd(lambda m=layer: m(x)[0], x, *layer.parameters()),
                                         args.repeat, args.device)
            with backend("short=triton"):
                fused = seconds_or_reason(fwd_bwd(lambda: durnn(x)[0], x, *durnn.parameters()),
                                          args, reasons)
            print(f"| {dname} | {T} | {t['IndRNN']:.4f} | {t['DuRNN']:.4f} | {cell(fused)} | "
                  f"{t['LSTM']:.4f} | {t['GRU']:.4f} | {t['LSTM'] / t['IndRNN']:.1f}x | "
                  f"{t['LSTM'] / t['DuRNN']:.1f}x | {ratio(t['LSTM'], fused)} |", flush=True)
    print_reasons(reasons)


def short_term_table(args) -> None:
    D, Ns = args.N, args.N // 4
    table_header(f"DuRNN short-term recurrence alone (relu), fwd+bwd seconds, B={args.B}, D={D}, "
                 f"N_s={Ns}", args, "dtype | T | block_b | cuDNN rnn_relu | GEMM + kernel | "
                 "speed-up | kernel alone | GB/s | copy GB/s | % of copy")
    reasons: Dict[str, None] = {}
    for dname in args.dtypes:
        dtype = DTYPES[dname]
        copy = copy_bandwidth(args, dtype)
        for T in args.T:
            def make(*shape, scale=1.0):
                return (torch.randn(*shape, device=args.device) * scale).to(dtype).requires_grad_()

            x, W, b = make(T, args.B, D), make(Ns, D, scale=D ** -0.5), make(Ns, scale=0.1)
            U = torch.randn(Ns, Ns, device=args.device, dtype=torch.float64)
            U = (U * 0.9 / torch.linalg.matrix_norm(U, 2)).to(dtype).requires_grad_()
            s0 = torch.zeros(args.B, Ns, device=args.device, dtype=dtype, requires_grad=True)
            p = make(T, args.B, Ns)
            cudnn = median_seconds(fwd_bwd(lambda: short_rnn_cudnn(x, W, b, U, s0), x, W, b, U, s0),
                                   args.repeat, args.device)
            for bb in args.short_block_b:
                def fused():
                    return short_rnn_triton(torch.nn.functional.linear(x, W, b), U, s0, block_b=bb)

                gemm_kernel = seconds_or_reason(fwd_bwd(fused, x, W, b, U, s0), args, reasons)
                alone = seconds_or_reason(
                    fwd_bwd(lambda: short_rnn_triton(p, U, s0, block_b=bb), p, U, s0), args, reasons)
                print(f"| {dname} | {T} | {bb} | {cudnn:.5f} | {cell(gemm_kernel, 5)} | "
                      f"{ratio(cudnn, gemm_kernel)} | {cell(alone, 5)} | "
                      f"{bandwidth_cells(p, alone, copy)} |", flush=True)
    print_reasons(reasons)


def copy_bandwidth(args, dtype) -> float:
    x = torch.randn(64 * 2 ** 20, device=args.device).to(dtype)
    y = torch.empty_like(x)
    s = median_seconds(lambda: y.copy_(x), args.repeat, args.device)
    return 2 * x.numel() * x.element_size() / s / 1e9


def bandwidth_cells(x: torch.Tensor, seconds: Optional[float], copy: float) -> str:
    """``GB/s | copy GB/s | % of copy`` for a fwd+bwd that moves 5 elements per element of x."""
    if seconds is None:
        return f"- | {copy:.0f} | -"
    gbs = 5 * x.numel() * x.element_size() / seconds / 1e9
    return f"{gbs:.0f} | {copy:.0f} | {100 * gbs / copy:.0f}%"


def bandwidth_table(args) -> None:
    table_header(f"IndRNN recurrence kernels fwd+bwd bandwidth, B={args.B}, N={args.N}", args,
                 "dtype | T | kernel | seconds | GB/s | copy GB/s | % of copy")
    reasons: Dict[str, None] = {}
    for dname in args.dtypes:
        dtype = DTYPES[dname]
        copy = copy_bandwidth(args, dtype)
        for T in args.T:
            a = torch.randn(T, args.B, args.N, device=args.device, dtype=dtype, requires_grad=True)
            u = torch.rand(args.N, device=args.device, dtype=dtype, requires_grad=True)
            s = median_seconds(fwd_bwd(lambda: indrnn_recurrence(a, u), a, u), args.repeat, args.device)
            print(f"| {dname} | {T} | auto ({choose_backend(a)}) | {s:.5f} | "
                  f"{bandwidth_cells(a, s, copy)} |", flush=True)
            for block in args.pipelined_block:
                for stages in args.pipelined_stages:
                    s = seconds_or_reason(fwd_bwd(lambda: indrnn_triton_pipelined(
                        a, u, block=block or None, stages=stages), a, u), args, reasons)
                    print(f"| {dname} | {T} | pipelined, block {block or 'default'}, {stages} "
                          f"stages | {cell(s, 5)} | {bandwidth_cells(a, s, copy)} |", flush=True)
    print_reasons(reasons)


def scan_table(args) -> None:
    sequential = indrnn_triton if args.device == "cuda" else indrnn_loop
    table_header(f"scans vs sequential recurrence ({sequential.__name__}), fp32, fwd+bwd seconds",
                 args, "B·N | T | sequential | triton_scan | scan (torch) | triton_scan speed-up | "
                 "scan speed-up")
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
    p.add_argument("--short-block-b", type=int, nargs="+", default=[16],
                   help="batch rows per program of the short-term kernel (powers of two >= 16)")
    p.add_argument("--pipelined-block", type=int, nargs="+", default=[0],
                   help="columns per program of the pipelined IndRNN kernel (0: its default)")
    p.add_argument("--pipelined-stages", type=int, nargs="+", default=[4, 8, 16],
                   help="pipeline depths of the pipelined IndRNN kernel")
    p.add_argument("--scan-cols", type=int, nargs="+", default=[128, 1024])
    p.add_argument("--scan-T", type=int, nargs="+", default=[4096, 16384, 65536])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    torch.manual_seed(0)
    layer_table(args, args.N)
    if args.paper_N:
        layer_table(args, args.paper_N)
    short_term_table(args)
    bandwidth_table(args)
    scan_table(args)


if __name__ == "__main__":
    main()
