"""chaosrec: disaster-recovery drills for GPU recommender services, as pytest tests.

Importing ``chaosrec`` is cheap: it never imports torch, tritonclient or aiohttp.
The heavy parts load when you use them (the embedded stack, the model).
"""

from __future__ import annotations

from chaosrec.core.topology import Replica, Topology, load_topology
from chaosrec.errors import (
    BackupError,
    ChaosrecError,
    ConfigError,
    DrillAssertionError,
    DrillInconclusive,
    GuardrailTripped,
    ModelError,
    ModelLoadError,
    PortInUseError,
    ProcessStartError,
    RollbackError,
    SetupError,
    SLOViolation,
    StackError,
    SteadyStateDeviated,
    ToolNotFoundError,
    ToxiproxyError,
    UnknownTargetError,
    UnsupportedFaultError,
)

__version__ = "0.1.0"


def discover(discover_system: bool = True) -> dict[str, object]:
    """Chaos Toolkit discovery hook (``chaos discover --no-install chaosrec``); needs the
    ``ctk`` extra. See :func:`chaosrec.ctk.discover`."""
    from chaosrec.ctk import discover as _discover

    return _discover(discover_system)


__all__ = [
    "BackupError",
    "ChaosrecError",
    "ConfigError",
    "DrillAssertionError",
    "DrillInconclusive",
    "GuardrailTripped",
    "ModelError",
    "ModelLoadError",
    "PortInUseError",
    "ProcessStartError",
    "Replica",
    "RollbackError",
    "SLOViolation",
    "SetupError",
    "StackError",
    "SteadyStateDeviated",
    "ToolNotFoundError",
    "Topology",
    "ToxiproxyError",
    "UnknownTargetError",
    "UnsupportedFaultError",
    "__version__",
    "discover",
    "load_topology",
]
