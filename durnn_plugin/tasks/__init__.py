"""fairseq task registrations (imported by ``--user-dir``)."""
from . import durnn_language_modeling  # noqa: F401
