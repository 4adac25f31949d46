"""Refuse, in one line, a fairseq launch that would start no worker at all.

With ``--distributed-world-size W > 1`` and a ``--distributed-init-method``, and without
``--distributed-no-spawn``, fairseq's commands start ``min(torch.cuda.device_count(), W)``
workers with ``torch.multiprocessing.spawn``. On a host without CUDA devices that is none: the
command exits with status 0 having trained nothing (``--cpu`` does not change it). The plugin
is imported while fairseq parses the command line (``--user-dir``), before that launch, so it
reads the same options from ``sys.argv`` and raises a :class:`~.errors.OneLineError` for that
case, which :mod:`.cli_errors` prints as one line (exit status 2). Options given otherwise
(``fairseq-hydra-train``'s ``key=value`` overrides, a program's own argument list) are not seen.
"""
import argparse
import sys
from typing import Optional, Sequence

import torch

from .errors import OneLineError


def _spawn_options(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--distributed-world-size", default="1")
    parser.add_argument("--distributed-init-method", default=None)
    for flag in ("--distributed-no-spawn", "--tpu", "--pipeline-model-parallel"):
        parser.add_argument(flag, action="store_true")  # each launches otherwise
    return parser.parse_known_args(list(argv))[0]


def refuse_spawning_no_worker(argv: Optional[Sequence[str]] = None) -> None:
    """Raise if the command line ``argv`` (default ``sys.argv[1:]``) asks fairseq to spawn
    workers on a host where it would spawn none."""
    args = _spawn_options(sys.argv[1:] if argv is None else argv)
    world = args.distributed_world_size
    spawns = (world.isdigit() and int(world) > 1 and args.distributed_init_method is not None
              and not (args.distributed_no_spawn or args.tpu or args.pipeline_model_parallel))
    if spawns and torch.cuda.device_count() == 0:
        raise OneLineError(
            f"--distributed-world-size {world} with --distributed-init-method and without "
            f"--distributed-no-spawn makes fairseq spawn min(torch.cuda.device_count(), {world}) "
            "= 0 workers on this host (it has no CUDA device) and exit without training: start "
            "one process per rank with --distributed-no-spawn --distributed-rank R, or use "
            "torchrun (docs/distributed.md)")
