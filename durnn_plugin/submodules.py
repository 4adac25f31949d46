"""Import every module of a package folder, so that each file's fairseq registrations run.

fairseq's ``--user-dir`` does the same for ``models/`` and ``tasks/``; doing it here too means
``import durnn_plugin`` registers everything, and a new file needs no edit of ``__init__.py``.
"""
import importlib
import pkgutil


def import_all(package_name: str, package_path) -> None:
    """Import ``package_name.<m>`` for every module ``m`` found in ``package_path``."""
    for info in pkgutil.iter_modules(package_path):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package_name}.{info.name}")
