"""Shared pieces of the benchmark scripts: the machine's name and a fwd+bwd timer."""
import datetime
import platform
import statistics
import time
from typing import Callable

import torch


def machine_name(device: str = "cpu", threads: bool = True) -> str:
    """GPU name for CUDA; otherwise the CPU model and (``threads``) torch's thread count."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    name = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {torch.get_num_threads()} torch threads" if threads else name


def header(device: str, threads: bool = True) -> str:
    return (f"{machine_name(device, threads)}, torch {torch.__version__}, "
            f"{datetime.date.today().isoformat()}")


def median_seconds(step: Callable[[], None], repeat: int, device: str = "cpu") -> float:
    """Median wall time of ``step()`` over ``repeat`` runs after one warm-up run (CUDA work is
    synchronised before the clock stops)."""

    def once() -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    once()
    return statistics.median(once() for _ in range(repeat))


def fwd_bwd(fn: Callable[[], torch.Tensor], *leaves: torch.Tensor) -> Callable[[], None]:
    """A step that clears the leaves' gradients, runs ``fn`` and back-propagates its sum."""

    def step() -> None:
        for leaf in leaves:
            leaf.grad = None
        fn().float().sum().backward()

    return step
