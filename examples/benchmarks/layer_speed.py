"""Forward+backward time of one IndRNN layer, one DuRNN layer (N_s = N/4) and torch.nn.LSTM of
equal width N, measured side by side in one run, with the ratios to nn.LSTM.

    python examples/benchmarks/layer_speed.py            # T=1024, B=32, N=512, CPU
    python examples/benchmarks/layer_speed.py --T 256 --repeat 5

Each layer maps x (T, B, N) -> (T, B, N); the loss is the output's sum; times are the median
of --repeat runs after one warm-up run.
"""
import argparse

import torch
from bench_utils import fwd_bwd, header, median_seconds

from durnn_plugin.modules import DuRNNCell, IndRNNCell


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--T", type=int, default=1024)
    p.add_argument("--B", type=int, default=32)
    p.add_argument("--N", type=int, default=512)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    T, B, N = a.T, a.B, a.N
    bound = 2.0 ** (1 / T)
    layers = {
        "nn.LSTM": torch.nn.LSTM(N, N),
        "IndRNN": IndRNNCell(N, N, bound),
        f"DuRNN (N_s={N // 4})": DuRNNCell(N, N // 4, N - N // 4, u_bound=bound),
    }
    x = torch.randn(T, B, N, requires_grad=True)
    print(f"fwd+bwd, T={T} B={B} N={N}, fp32, CPU: {header('cpu')}")
    seconds = {name: median_seconds(fwd_bwd(lambda m=layer: m(x)[0], x, *layer.parameters()),
                                    a.repeat) for name, layer in layers.items()}
    lstm = seconds["nn.LSTM"]
    print("| layer | fwd+bwd (s) | speed-up vs nn.LSTM |")
    print("|---|---|---|")
    for name, s in seconds.items():
        print(f"| {name} | {s:.3f} | {lstm / s:.1f}x |")


if __name__ == "__main__":
    main()
