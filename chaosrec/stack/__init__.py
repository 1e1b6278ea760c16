"""The embedded reference stack: Toxiproxy, one Triton per replica, the failover gateway
and a supervisor, on one machine (see :class:`EmbeddedStack`).

Importing this package is light; :class:`EmbeddedStack` loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaosrec.stack.backup import ModelBackup, RestoreReport
    from chaosrec.stack.stack import EmbeddedStack, StackEvent

__all__ = ["EmbeddedStack", "ModelBackup", "RestoreReport", "StackEvent"]

_LAZY = {
    "EmbeddedStack": "chaosrec.stack.stack",
    "StackEvent": "chaosrec.stack.stack",
    "ModelBackup": "chaosrec.stack.backup",
    "RestoreReport": "chaosrec.stack.backup",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
