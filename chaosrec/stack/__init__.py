"""The embedded reference stack: Toxiproxy, one Triton per replica, the failover gateway
and a supervisor, on one machine (see :class:`EmbeddedStack`).

Importing this package is light; :class:`EmbeddedStack` loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chaosrec.core.lazy import lazy_attributes

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


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
