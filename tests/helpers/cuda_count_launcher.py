"""A fairseq command run as on a host with ``REPORTED_CUDA_DEVICES`` CUDA devices, for the CPU
tests of fairseq's launch paths (docs/distributed.md)::

    REPORTED_CUDA_DEVICES=2 python cuda_count_launcher.py train ARGS        # = fairseq-train ARGS
    REPORTED_CUDA_DEVICES=2 python cuda_count_launcher.py hydra_train ARGS  # = fairseq-hydra-train

fairseq sizes its launches by ``torch.cuda.device_count()``, which is 0 on a host without CUDA:
its spawn starts ``min(device_count, --distributed-world-size)`` workers, and under torchrun it
sets ``device_id = rank % device_count`` (then ``torch.cuda.set_device(device_id)`` when it is
above 0). ``--cpu`` keeps every tensor on the CPU whatever the count says, so reporting 2 devices
lets the spawn start two CPU workers, and reporting 1 makes every torchrun rank's device 0.

The count is replaced when this file is imported, which happens again in each worker that
``torch.multiprocessing.spawn`` starts (it imports the launching script as ``__mp_main__``); the
command itself runs only under ``__main__``.
"""
import importlib
import os
import sys

import torch

torch.cuda.device_count = lambda: int(os.environ["REPORTED_CUDA_DEVICES"])

if __name__ == "__main__":
    command = sys.argv.pop(1)  # train, hydra_train: a module of fairseq_cli
    sys.argv[0] = "fairseq-" + command.replace("_", "-")
    importlib.import_module(f"fairseq_cli.{command}").cli_main()
