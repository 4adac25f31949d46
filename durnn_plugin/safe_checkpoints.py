"""Allow-list for torch's default ``weights_only`` checkpoint loader.

fairseq's legacy (argparse) tasks and models, ``speech_to_text`` and ``lstm_lm`` among them,
store their configuration in checkpoints as an ``argparse.Namespace``, which torch's safe loader
refuses unless allow-listed. A Namespace only holds attributes (unpickling one runs no code), so
exactly that class is added, once, when the plugin is imported with fairseq; nothing else is
allowed and the safe loader stays on.
"""
import argparse

import torch


def allow_fairseq_namespace() -> None:
    torch.serialization.add_safe_globals([argparse.Namespace])
