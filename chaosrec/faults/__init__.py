"""Faults: each one is injected once and reverted exactly once, whatever happens.

* :class:`Chaos` (:mod:`.injector`): the injector behind the ``chaos`` fixture, the
  Chaos Toolkit actions and the schedules; every fault method checks its arguments
  before touching anything;
* :class:`Fault` (:mod:`.base`): the context-manager base every fault shares;
* :mod:`.network` (Toxiproxy toxics, proxies down), :mod:`.gpu`, :mod:`.process`,
  :mod:`.model_version`, :mod:`.artifact`: the fault kinds;
* :class:`Guardrail` (:mod:`.guardrail`): stop conditions that roll every fault back.
"""

from chaosrec.faults.base import Fault, FaultListener, TrafficCounter
from chaosrec.faults.control import ArtifactControl, ServiceControl
from chaosrec.faults.guardrail import Guardrail, StopCondition
from chaosrec.faults.injector import (
    DIRECTIONS,
    GPU_LOSS_MODES,
    REGION_OUTAGE_MODES,
    Chaos,
    ProxyLike,
    Target,
)

__all__ = [
    "DIRECTIONS",
    "GPU_LOSS_MODES",
    "REGION_OUTAGE_MODES",
    "ArtifactControl",
    "Chaos",
    "Fault",
    "FaultListener",
    "Guardrail",
    "ProxyLike",
    "ServiceControl",
    "StopCondition",
    "Target",
    "TrafficCounter",
]
