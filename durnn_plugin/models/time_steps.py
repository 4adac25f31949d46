"""``--u-time-steps`` (T of the bound ``|u| <= γ^(1/T)``) taken from the task when not given.

The value is written into the model config when the model is built, and fairseq saves that
config in every checkpoint, so evaluating or generating at another length later loads the same
bound. An explicit ``--u-time-steps`` always wins; a task with no natural length keeps
:data:`~durnn_plugin.modules.stack_options.DEFAULT_TIME_STEPS`.
"""
import logging
from contextlib import nullcontext
from typing import Optional, Tuple

from omegaconf import DictConfig, open_dict

from ..modules.stack_options import DEFAULT_TIME_STEPS

logger = logging.getLogger(__name__)


def task_option(task, name: str):
    """``name`` from the task's config (``task.cfg``, or ``task.args`` of legacy tasks), or
    ``None``."""
    for cfg in (getattr(task, "cfg", None), getattr(task, "args", None)):
        if cfg is not None:
            value = cfg.get(name) if isinstance(cfg, (dict, DictConfig)) else getattr(cfg, name, None)
            if value is not None:
                return value
    return None


def task_training_length(task) -> Tuple[Optional[int], str]:
    """Length of the task's training sequences and where it comes from:
    ``task.training_sequence_length()`` where the task defines it (``pixel_sequence``), else
    its ``--tokens-per-sample`` (both language modelling tasks) or ``--seq-len``
    (``adding_problem``); ``None`` for other tasks."""
    method = getattr(task, "training_sequence_length", None)
    if callable(method):
        return method(), f"{type(task).__name__}.training_sequence_length()"
    for name in ("tokens_per_sample", "seq_len"):
        value = task_option(task, name)
        if value is not None:
            return int(value), "--" + name.replace("_", "-")
    return None, ""


def saved_model_config(cfg) -> Optional[DictConfig]:
    """The ``model`` node of the root config that fairseq's trainer saves, when ``cfg`` is not
    that node itself. ``fairseq.models.build_model`` merges the model config with its dataclass
    into a new node (``merge_with_parent``) whose parent is the root config, so a value set on
    the merged node alone would not reach the checkpoint."""
    parent = cfg._get_parent() if isinstance(cfg, DictConfig) else None
    model = parent.get("model") if isinstance(parent, DictConfig) else None
    return model if isinstance(model, DictConfig) and model is not cfg else None


def resolve_time_steps(cfg, key: str, length: Optional[int], source: str) -> None:
    """Set ``cfg.<key>`` (``u_time_steps``, ``encoder_u_time_steps``, ...) to ``length`` when it is
    unset, and log the resulting bound. ``cfg``: the model config (a DictConfig or a dataclass)
    that fairseq stores in checkpoints; ``source`` names where ``length`` came from."""
    given = getattr(cfg, key, None)
    if given is None and length is not None:
        for node in filter(None, (cfg, saved_model_config(cfg))):
            with open_dict(node) if isinstance(node, DictConfig) else nullcontext():
                setattr(node, key, int(length))
        origin = source
    else:
        origin = "given" if given is not None else "default: the task has no natural length"
    steps = getattr(cfg, key) or DEFAULT_TIME_STEPS
    gamma = getattr(cfg, key.replace("time_steps", "gamma"))
    logger.info(f"{key} = {steps} ({origin}): |u| <= {gamma}^(1/{steps}) = "
                f"{gamma ** (1.0 / steps):.6f}")
