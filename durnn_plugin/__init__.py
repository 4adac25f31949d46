"""DuRNN, IndRNN and Dilated RNN layers for fairseq (``--user-dir durnn_plugin``).

``ops`` and ``modules`` are torch-only; ``models``, ``tasks`` and ``criterions`` register with
fairseq when it is importable. ``DURNN_DETERMINISTIC=1`` selects deterministic kernels
(:mod:`.determinism`).
"""
from . import determinism, ops, modules  # noqa: F401

try:
    import fairseq  # noqa: F401
except ImportError:  # layers only, e.g. on a machine without fairseq
    pass
else:
    from . import cli_errors, criterions, launch_check, models, safe_checkpoints, tasks  # noqa: F401

    cli_errors.install()
    cli_errors.check_environment()  # a bad DURNN_BACKEND: one line, before any data or model
    launch_check.refuse_spawning_no_worker()  # a spawn that would start no worker
    safe_checkpoints.allow_fairseq_namespace()

determinism.apply_from_environment()  # after the hook: a bad value prints as one line
