"""chaosrec: disaster-recovery drills for GPU recommender services, as pytest tests.

Importing ``chaosrec`` is cheap: it never imports torch, tritonclient or aiohttp.
The heavy parts load when you use them (the embedded stack, the model).
"""

from __future__ import annotations

from chaosrec.errors import (
    ChaosrecError,
    ConfigError,
    ModelError,
    ModelLoadError,
    PortInUseError,
    ProcessStartError,
    SetupError,
    StackError,
    ToolNotFoundError,
    ToxiproxyError,
    UnknownTargetError,
)
from chaosrec.topology import Replica, Topology, load_topology

__version__ = "0.1.0"

__all__ = [
    "ChaosrecError",
    "ConfigError",
    "ModelError",
    "ModelLoadError",
    "PortInUseError",
    "ProcessStartError",
    "Replica",
    "SetupError",
    "StackError",
    "ToolNotFoundError",
    "Topology",
    "ToxiproxyError",
    "UnknownTargetError",
    "__version__",
    "load_topology",
]
