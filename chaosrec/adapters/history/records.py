"""What the history store holds: one run (a pytest session, say), its drills, and for
each drill its objectives, faults, fault-versus-baseline effects and regressions.

Plain, typed, frozen records; the store writes and reads exactly these. Times are epoch
seconds (UTC); figures are in the units their names say, ``inf`` for "never" (a
recovery or detection that did not happen before the run ended), None when a drill had
nothing to measure. Texts are redacted by the store before they are written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from chaosrec.slo.effects import Effect
from chaosrec.slo.regression import Regression

__all__ = [
    "FIGURE_COLUMNS",
    "DrillRecord",
    "FaultRecord",
    "ObjectiveRecord",
    "PastDrill",
    "RunRecord",
    "RunSummary",
]

#: the drill figures kept as columns, in the order of the drill table
FIGURE_COLUMNS = ("availability", "p50_ms", "p99_ms", "degraded_share", "rto_s", "mttd_s")


@dataclass(frozen=True, kw_only=True)
class ObjectiveRecord:
    """One objective of one verdict: target and measured as shown, the measured number."""

    name: str
    target: str
    status: str  # pass, fail, inconclusive
    value: float | None = None
    measured: str = ""
    span: str = ""  # the window it was measured over


@dataclass(frozen=True, kw_only=True)
class FaultRecord:
    """One fault with its timings (epoch seconds): injection asked, in place, reverted."""

    label: str
    kind: str
    targets: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    injecting_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    touched: bool | None = None


@dataclass(frozen=True, kw_only=True)
class DrillRecord:
    """One drill in one run.

    ``drill_id`` is what a drill is compared by (a pytest node id); ``name`` is how
    people call it (the node name, or a Chaos Toolkit experiment's title). The history
    a drill is compared with has the same ``drill_id``, ``topology_hash``, ``target``
    and ``signature`` (the faults it injected).
    """

    drill_id: str
    name: str
    outcome: str  # passed, failed, broken, inconclusive, skipped
    kind: str = "pytest"  # pytest, experiment, schedule-search
    params: dict[str, Any] = field(default_factory=dict)
    topology: str = ""
    topology_hash: str = ""
    target: str = ""
    signature: str = ""
    verdict: str | None = None  # worst verdict: fail, inconclusive, pass
    category: str | None = None
    started_at: float | None = None
    duration_s: float | None = None
    requests: int | None = None
    answered: int | None = None
    availability: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    degraded_share: float | None = None
    rto_s: float | None = None
    mttd_s: float | None = None
    #: p99 of how late the load generator sent requests (ms): how busy the machine was
    send_lag_p99_ms: float | None = None
    blast_radius: str | None = None
    weight: float | None = None
    objectives: tuple[ObjectiveRecord, ...] = ()
    faults: tuple[FaultRecord, ...] = ()
    effects: tuple[Effect, ...] = ()
    regressions: tuple[Regression, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists and dicts), e.g. to travel with a pytest report."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DrillRecord:
        """The record :meth:`to_dict` gave (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["params"] = dict(values.get("params") or {})
        values["objectives"] = tuple(ObjectiveRecord(**o) for o in values.get("objectives") or ())
        values["faults"] = tuple(
            FaultRecord(**{**f, "targets": tuple(f.get("targets") or ())})
            for f in values.get("faults") or ()
        )
        values["effects"] = tuple(Effect.from_dict(e) for e in values.get("effects") or ())
        values["regressions"] = tuple(
            Regression.from_dict(r) for r in values.get("regressions") or ()
        )
        return cls(**values)

    def figure(self, name: str) -> float | None:
        """The figure ``name`` (one of :data:`FIGURE_COLUMNS`), None when absent."""
        if name not in FIGURE_COLUMNS:
            raise KeyError(f"{name!r} is not a drill figure; one of {FIGURE_COLUMNS}")
        value: float | None = getattr(self, name)
        if value is None or math.isnan(value):
            return None
        return value


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    """A run without its drills: when, which commit, against what, and its score."""

    run_id: str
    started_at: float
    front: str  # pytest, chaos-run
    chaosrec_version: str
    topology: str = ""
    topology_hash: str = ""
    target: str = ""
    ended_at: float | None = None
    commit: str | None = None
    dirty: bool | None = None
    branch: str | None = None
    host: str | None = None
    score: float | None = None
    drill_count: int = 0


@dataclass(frozen=True, kw_only=True)
class RunRecord(RunSummary):
    """A run and its drills, written in one transaction."""

    drills: tuple[DrillRecord, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PastDrill:
    """A drill as read back, with the run it belongs to."""

    run: RunSummary
    drill: DrillRecord
