"""fairseq task registrations: every module in this folder is imported."""
from ..submodules import import_all

import_all(__name__, __path__)
