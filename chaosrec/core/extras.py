"""Optional dependencies: import them where a feature needs them, or say which extra to install.

Importing chaosrec never imports an optional package; each front imports its own
on first use through :func:`require`, so a missing one fails with one line naming
the feature and the ``pip install 'chaosrec[EXTRA]'`` that fixes it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from chaosrec.errors import MissingExtraError

__all__ = ["EXTRAS", "require"]

#: extra -> the packages it installs (the import names chaosrec checks)
EXTRAS = {
    "ctk": ("chaoslib", "chaostoolkit"),
    "k8s": ("chaosk8s",),
    "locust": ("locust",),
    "report": ("allure_pytest", "matplotlib"),
    "search": ("hypothesis",),
    "history": ("psycopg",),
}


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module``; raise :class:`MissingExtraError` (an ``ImportError``) naming
    ``feature`` and ``extra`` when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if err.name is not None and module.split(".")[0] != err.name.split(".")[0]:
            raise  # the package is there but one of *its* imports is broken: show that
        raise MissingExtraError(feature, extra, module.split(".")[0]) from err
