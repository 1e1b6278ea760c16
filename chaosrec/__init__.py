"""chaosrec: disaster-recovery drills for GPU recommender services, as pytest tests.

The public API is this module's ``__all__``; everything else is reached through it or
through the subpackages' own ``__all__``. Importing ``chaosrec`` is cheap: it never
imports torch, tritonclient, aiohttp or numpy; the names below load their modules on
first use (for type checkers they are ordinary imports).

The package is layered, bottom to top; a layer imports only layers below it
(checked by import-linter, see ``pyproject.toml``)::

    errors, core/          the exception tree; topology, validation, paths, extras
    slo/                   pure measurement and SLO math over a RequestLog
    adapters/, load/,      the outside world: processes, Toxiproxy, Triton, the gateway,
    model/                 external tools; the open-loop load generator; the reference model
    faults/, stack/        faults and guardrails; the embedded reference stack
    drill/, steady_state/, orchestration: the phase recorder, the recommender under test,
    schedules/             steady-state hypotheses, fault-schedule search
    plugin, fixtures, cli, fronts: the pytest plugin, the CLI, Chaos Toolkit, reports
    ctk/, reporting/
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chaosrec.core.lazy import lazy_attributes
from chaosrec.core.topology import Replica, Topology, load_topology
from chaosrec.errors import (
    BackupError,
    ChaosrecError,
    ConfigError,
    DrillAssertionError,
    DrillInconclusive,
    EvictionBlocked,
    GuardrailTripped,
    HistoryError,
    KubernetesError,
    MissingExtraError,
    ModelError,
    ModelLoadError,
    PortInUseError,
    ProcessStartError,
    RollbackError,
    ScheduleViolation,
    SetupError,
    SLOViolation,
    StackError,
    SteadyStateDeviated,
    TargetBusyError,
    TargetNotAllowedError,
    ToolNotFoundError,
    ToxiproxyError,
    UnknownTargetError,
    UnsupportedFaultError,
)

if TYPE_CHECKING:
    from chaosrec.adapters.toxiproxy import Proxy, ToxiproxyClient, ToxiproxyServer
    from chaosrec.drill import Drill
    from chaosrec.drill.target import Golden, RecsysTarget
    from chaosrec.faults import Chaos, Fault, Guardrail, ProxyLike, StopCondition, Target
    from chaosrec.fixtures import LoadFixture, SLOFixture, SteadyStateFixture, ToxiproxyHandle
    from chaosrec.load.generator import LoadRun
    from chaosrec.slo.log import RequestLog
    from chaosrec.slo.objectives import FaultWindow, ObjectiveResult, Objectives, Verdict, evaluate
    from chaosrec.stack.stack import EmbeddedStack
    from chaosrec.steady_state.hypotheses import (
        SteadyStateHypothesis,
        Tolerance,
        at_least,
        at_most,
        between,
    )

__version__ = "0.1.0"

_LAZY = {
    "Chaos": "chaosrec.faults",
    "Drill": "chaosrec.drill",
    "EmbeddedStack": "chaosrec.stack.stack",
    "Fault": "chaosrec.faults",
    "FaultWindow": "chaosrec.slo.objectives",
    "Golden": "chaosrec.drill.target",
    "Guardrail": "chaosrec.faults",
    "LoadFixture": "chaosrec.fixtures",
    "LoadRun": "chaosrec.load.generator",
    "ObjectiveResult": "chaosrec.slo.objectives",
    "Objectives": "chaosrec.slo.objectives",
    "Proxy": "chaosrec.adapters.toxiproxy",
    "ProxyLike": "chaosrec.faults",
    "RecsysTarget": "chaosrec.drill.target",
    "RequestLog": "chaosrec.slo.log",
    "SLOFixture": "chaosrec.fixtures",
    "SteadyStateFixture": "chaosrec.fixtures",
    "SteadyStateHypothesis": "chaosrec.steady_state.hypotheses",
    "StopCondition": "chaosrec.faults",
    "Target": "chaosrec.faults",
    "Tolerance": "chaosrec.steady_state.hypotheses",
    "ToxiproxyClient": "chaosrec.adapters.toxiproxy",
    "ToxiproxyHandle": "chaosrec.fixtures",
    "ToxiproxyServer": "chaosrec.adapters.toxiproxy",
    "Verdict": "chaosrec.slo.objectives",
    "at_least": "chaosrec.steady_state.hypotheses",
    "at_most": "chaosrec.steady_state.hypotheses",
    "between": "chaosrec.steady_state.hypotheses",
    "evaluate": "chaosrec.slo.objectives",
}


def discover(discover_system: bool = True) -> dict[str, object]:
    """Chaos Toolkit discovery hook (``chaos discover --no-install chaosrec``); needs the
    ``ctk`` extra. See :func:`chaosrec.ctk.discover`."""
    from chaosrec.ctk import discover as _discover

    return _discover(discover_system)


__all__ = [
    "BackupError",
    "Chaos",
    "ChaosrecError",
    "ConfigError",
    "Drill",
    "DrillAssertionError",
    "DrillInconclusive",
    "EmbeddedStack",
    "EvictionBlocked",
    "Fault",
    "FaultWindow",
    "Golden",
    "Guardrail",
    "GuardrailTripped",
    "HistoryError",
    "KubernetesError",
    "LoadFixture",
    "LoadRun",
    "MissingExtraError",
    "ModelError",
    "ModelLoadError",
    "ObjectiveResult",
    "Objectives",
    "PortInUseError",
    "ProcessStartError",
    "Proxy",
    "ProxyLike",
    "RecsysTarget",
    "Replica",
    "RequestLog",
    "RollbackError",
    "SLOFixture",
    "SLOViolation",
    "ScheduleViolation",
    "SetupError",
    "StackError",
    "SteadyStateDeviated",
    "SteadyStateFixture",
    "SteadyStateHypothesis",
    "StopCondition",
    "Target",
    "TargetBusyError",
    "TargetNotAllowedError",
    "Tolerance",
    "ToolNotFoundError",
    "Topology",
    "ToxiproxyClient",
    "ToxiproxyError",
    "ToxiproxyHandle",
    "ToxiproxyServer",
    "UnknownTargetError",
    "UnsupportedFaultError",
    "Verdict",
    "__version__",
    "at_least",
    "at_most",
    "between",
    "discover",
    "evaluate",
    "load_topology",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
