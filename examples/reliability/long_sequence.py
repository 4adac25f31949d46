"""One recurrent layer on one very long sequence: forward + backward on the CPU, finiteness and
peak memory for each length T (each measured in a fresh subprocess).

A layer of width N reads x ``(T, 1, N)`` and returns y ``(T, 1, N)``; the loss is ``mean(y²)``.
The IndRNN bound is set for the sequence length (``--u-time-steps T``, so ``|u| ≤ γ^(1/T)`` and
``|u|^T ≤ γ``): with the default nominal length of 100 a state could grow like 2^(T/100).

Peak memory: the child's peak resident set size (``ru_maxrss``) after the pass, minus its peak
after building the layer and the input; ``bytes/step`` is that difference over T.

    python examples/reliability/long_sequence.py                      # T = 10k, 50k, 100k
    python examples/reliability/long_sequence.py --cells indrnn --T 100000 --N 512
"""
import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from durnn_plugin.modules import RecurrentStack, StackOptions


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def one_pass(cell: str, T: int, N: int) -> dict:
    """Forward and backward of one layer over x ``(T, 1, N)`` in this process."""
    torch.manual_seed(0)
    layer = RecurrentStack(StackOptions(cell=cell, num_layers=1, hidden_size=N,
                                        u_time_steps=T, norm="none"), input_size=N)
    x = torch.randn(T, 1, N, requires_grad=True)
    before = peak_rss_bytes()
    start = time.perf_counter()
    y, _ = layer(x)
    y.square().mean().backward()
    seconds = time.perf_counter() - start
    grads = [x.grad] + [p.grad for p in layer.parameters()]
    return {"cell": cell, "T": T, "N": N, "seconds": seconds, "extra_bytes": peak_rss_bytes() - before,
            "finite": bool(torch.isfinite(y).all()) and all(bool(torch.isfinite(g).all()) for g in grads)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", default="indrnn,durnn")
    p.add_argument("--T", default="10000,50000,100000")
    p.add_argument("--N", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.child:
        print(json.dumps(one_pass(a.cells, int(a.T), a.N)))
        return None
    rows = []
    print(f"torch {torch.__version__}, {a.threads} thread(s), N = {a.N}, B = 1, one layer, fp32")
    print("| cell | T | fwd+bwd (s) | peak RSS growth (MiB) | bytes/step | finite |")
    print("|---|---:|---:|---:|---:|---|")
    for cell in a.cells.split(","):
        for T in [int(t) for t in a.T.split(",")]:
            out = subprocess.run([sys.executable, __file__, "--child", "--cells", cell, "--T", str(T),
                                  "--N", str(a.N), "--threads", str(a.threads)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(r)
            print(f"| {cell} | {T} | {r['seconds']:.2f} | {r['extra_bytes'] / 2**20:.1f} | "
                  f"{r['extra_bytes'] / T:.0f} | {r['finite']} |", flush=True)
    return rows


if __name__ == "__main__":
    main()
