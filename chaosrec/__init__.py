"""chaosrec: disaster-recovery drills for GPU recommender services, as pytest tests.

Importing ``chaosrec`` is cheap: it never imports torch, tritonclient or aiohttp.
The heavy parts load when you use them (the embedded stack, the model).
"""

from __future__ import annotations

from chaosrec.errors import (
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
from chaosrec.topology import Replica, Topology, load_topology

__version__ = "0.1.0"

__all__ = [
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
    "load_topology",
]
