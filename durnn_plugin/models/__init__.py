"""fairseq model registrations (imported by ``--user-dir``)."""
from . import durnn_lm  # noqa: F401
