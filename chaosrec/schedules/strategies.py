"""Hypothesis strategies for fault schedules (imports Hypothesis; ``chaosrec`` never does).

Schedules shrink towards what is easiest to read and cheapest to run: fewer faults,
shorter windows starting earlier, milder kinds (``latency`` first), smaller
magnitudes, and targets on the healthy side: the non-home regions' single replicas
first, the home region, then ``"all"`` last. A minimal failing schedule therefore
names the one fault that matters, e.g. ``region_outage(region-a)`` rather than
``region_outage(region-b)`` plus noise.

Times are multiples of ``step_s`` and magnitudes come from coarse levels, so a
shrunk failure is far from a timing boundary and replays reliably::

    from hypothesis import given
    from chaosrec.schedules.strategies import fault_schedules

    @given(fault_schedules(topology, SEARCH_PROFILES["quick"]))
    def test_schedule_is_valid(schedule): ...
"""

from __future__ import annotations

import math
from typing import Any

from chaosrec.core.topology import Topology
from chaosrec.errors import MissingExtraError
from chaosrec.schedules.profiles import SearchProfile
from chaosrec.schedules.schedule import FaultSchedule, ScheduledFault

try:
    from hypothesis import strategies as st
except ImportError as err:  # pragma: no cover - hypothesis ships with chaosrec[search]
    raise MissingExtraError("the fault-schedule search", "search", "hypothesis") from err

__all__ = ["fault_schedules", "scheduled_faults", "targets_for"]

#: added latency levels (ms): far below and far above the gateway's 300 ms attempt timeout
LATENCY_MS = (50.0, 100.0, 600.0, 1500.0)
JITTER_MS = (0.0, 20.0)
SLOWDOWNS = (2.0, 4.0, 16.0)
OOM_FRACTIONS = (0.1, 0.5, 1.0)


def targets_for(kind: str, topology: Topology) -> list[str]:
    """Targets a kind may hit, healthy side first (the order shrinking moves towards)."""
    others = [r for r in topology.regions if r != topology.home_region]
    order = [*others, topology.home_region]
    replicas = [rep.id for region in order for rep in reversed(topology.region_replicas(region))]
    if kind == "region_outage":
        return order
    if kind == "crash":
        return replicas
    out: list[str] = []
    for region in order:
        out += [rep.id for rep in reversed(topology.region_replicas(region))]
        out.append(region)
    return [*out, "all"]


def _params(kind: str, profile: SearchProfile) -> st.SearchStrategy[dict[str, Any]]:
    if kind == "latency":
        return st.fixed_dictionaries(
            {"ms": st.sampled_from(LATENCY_MS), "jitter_ms": st.sampled_from(JITTER_MS)}
        )
    if kind == "region_outage":
        return st.fixed_dictionaries({"mode": st.sampled_from(profile.region_outage_modes)})
    if kind == "gpu_loss":
        return st.fixed_dictionaries({"mode": st.sampled_from(profile.gpu_loss_modes)})
    if kind == "gpu_degrade":
        return st.fixed_dictionaries({"slowdown": st.sampled_from(SLOWDOWNS)})
    if kind == "gpu_oom":
        return st.fixed_dictionaries({"fraction": st.sampled_from(OOM_FRACTIONS)})
    return st.just({})


@st.composite
def scheduled_faults(draw: st.DrawFn, topology: Topology, profile: SearchProfile) -> ScheduledFault:
    """One fault: kind, target, magnitudes, and a window on the profile's time grid."""
    kind = draw(st.sampled_from(profile.kinds))
    target = draw(st.sampled_from(targets_for(kind, topology)))
    params = draw(_params(kind, profile))
    slots = round(profile.horizon_s / profile.step_s)
    shortest = max(1, math.ceil(profile.min_duration_s / profile.step_s - 1e-9))
    start = draw(st.integers(0, slots - shortest))
    length = draw(st.integers(shortest, slots - start))
    step = profile.step_s
    return ScheduledFault(
        kind, target, params, round(start * step, 6), round((start + length) * step, 6)
    )


def fault_schedules(topology: Topology, profile: SearchProfile) -> st.SearchStrategy[FaultSchedule]:
    """Schedules of 1 to ``profile.max_faults`` faults over ``profile.horizon_s``."""
    return st.lists(
        scheduled_faults(topology, profile), min_size=1, max_size=profile.max_faults
    ).map(lambda faults: FaultSchedule(tuple(faults), profile.horizon_s))
