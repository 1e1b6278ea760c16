"""The invariants every fault schedule must keep, judged on the schedule's load run.

Built on :mod:`chaosrec.slo` (no new arithmetic): each invariant is an
:class:`~chaosrec.slo.objectives.Objectives` evaluation or a
:func:`~chaosrec.slo.windows.recovery_time` over part of the request log.

* **no request lost**: every scheduled request is in the log, and at most
  ``lost`` of them (default 0) got no HTTP answer at all (refused, reset, timed out,
  dropped by the client). Checked over the whole run, even when every region is
  down. Unlike the ``lost`` SLO objective, a 5xx is an answer here (e.g. a 503 with
  Retry-After when load is shed); the availability invariant judges it instead.
* **available while a region is healthy**: over the requests whose whole lifetime
  (scheduled time + ``lead_s``, the gateway's request timeout) fell while at least one
  region had no fault on any of its replicas, the 2xx share is at least
  ``availability`` *and* at most ``degraded_share`` of those answers are degraded.
  Degraded (fallback) answers count as available, as in the SLOs; but while a region
  is healthy they mean the gateway failed to route to it, so their share is bounded
  too. A region stays impaired ``settle_s`` after its last fault stopped (health checks
  and breakers need that long), longer (``restart_settle_s``) after a kill or a crash
  (Triton restarts).
* **RTO bound**: from the last fault's revert, the service is back (every later
  ``window_s`` window has a good share of at least ``recovery_share``: 2xx, not
  degraded) within ``rto_s``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from chaosrec.core.topology import Topology
from chaosrec.core.validation import check_fraction, check_non_negative, check_positive
from chaosrec.errors import ConfigError
from chaosrec.slo.log import RequestLog
from chaosrec.slo.objectives import FaultWindow, Objectives, Verdict, evaluate
from chaosrec.slo.windows import recovery_time

__all__ = ["InvariantResult", "Invariants", "check_invariants", "healthy_region_mask"]

#: fault kinds after which a replica needs a process restart (longer settle)
_RESTARTING = ("crash",)


@dataclass(frozen=True)
class Invariants:
    """Targets of the three invariants (see the module doc). Units are in the names."""

    lost: int = 0
    availability: float = 0.99
    degraded_share: float = 0.05
    rto_s: float = 1.5
    recovery_share: float = 0.95
    window_s: float = 0.5
    lead_s: float = 1.0
    settle_s: float = 1.0
    restart_settle_s: float = 10.0
    #: fewest judged requests for the availability invariant to be checked at all
    min_requests: int = 20

    def __post_init__(self) -> None:
        if isinstance(self.lost, bool) or not isinstance(self.lost, int) or self.lost < 0:
            raise ConfigError(f"lost={self.lost!r} must be an integer >= 0")
        for name in ("availability", "degraded_share", "recovery_share"):
            check_fraction(name, getattr(self, name))
        for name in ("rto_s", "lead_s", "settle_s", "restart_settle_s"):
            check_non_negative(name, getattr(self, name), maximum=600)
        check_positive("window_s", self.window_s, maximum=60)
        if isinstance(self.min_requests, bool) or not isinstance(self.min_requests, int):
            raise ConfigError(f"min_requests={self.min_requests!r} must be an integer >= 1")
        if self.min_requests < 1:
            raise ConfigError(f"min_requests={self.min_requests!r} must be an integer >= 1")

    def settle_for(self, window: FaultWindow) -> float:
        restarting = window.kind in _RESTARTING or "mode=kill" in window.label
        return self.restart_settle_s if restarting else self.settle_s


@dataclass(frozen=True)
class InvariantResult:
    """One invariant on one run: held or not, in one readable line."""

    name: str
    held: bool
    detail: str
    checked: bool = True
    verdict: Verdict | None = field(default=None, compare=False)

    def line(self) -> str:
        state = "held" if self.held else "VIOLATED"
        if not self.checked:
            state = "not checked"
        return f"{self.name}: {state} ({self.detail})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "held": self.held,
            "checked": self.checked,
            "detail": self.detail,
            "verdict": self.verdict.to_dict() if self.verdict is not None else None,
        }


def _impaired_spans(
    windows: Sequence[FaultWindow], topology: Topology, invariants: Invariants, end_s: float
) -> dict[str, list[tuple[float, float]]]:
    spans: dict[str, list[tuple[float, float]]] = {region: [] for region in topology.regions}
    known = set(topology.replica_ids())
    for window in windows:
        stop = window.end_s if window.end_s is not None else end_s
        regions = {topology.replica(t).region for t in window.targets if t in known}
        for region in regions:
            spans[region].append(
                (window.start_s - invariants.lead_s, stop + invariants.settle_for(window))
            )
    return spans


def healthy_region_mask(
    log: RequestLog,
    windows: Sequence[FaultWindow],
    topology: Topology,
    invariants: Invariants,
) -> npt.NDArray[np.bool_]:
    """Per request: did at least one region stay fault-free for its whole lifetime?

    A region is impaired from ``lead_s`` before a fault on any of its replicas starts
    (requests already in flight meet it) until ``settle_s`` (or ``restart_settle_s``)
    after the fault stops."""
    end = float(log.scheduled_s.max()) if len(log) else 0.0
    spans = _impaired_spans(windows, topology, invariants, end)
    t = log.scheduled_s
    any_healthy = np.zeros(len(log), dtype=np.bool_)
    for region_spans in spans.values():
        impaired = np.zeros(len(log), dtype=np.bool_)
        for start, stop in region_spans:
            impaired |= (t >= start) & (t < stop)
        any_healthy |= ~impaired
    return any_healthy


def _lost_breakdown(log: RequestLog) -> str:
    """``TimeoutError: 12, dropped: 3``: why requests got no answer."""
    counts: dict[str, int] = {}
    for error in log.error:
        key = str(error or "no answer")
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def _failed_line(verdict: Verdict) -> str:
    return "; ".join(f"{r.name} measured {r.measured} vs target {r.target}" for r in verdict.failed)


def check_invariants(
    log: RequestLog,
    windows: Sequence[FaultWindow],
    topology: Topology,
    invariants: Invariants,
    *,
    expected_requests: int,
    last_revert_s: float | None,
) -> list[InvariantResult]:
    """Judge one run; ``windows`` are the faults as they really happened (run clock).

    :param expected_requests: how many requests the load scheduled (missing rows are lost).
    :param last_revert_s: when the last fault was reverted (None: no fault, no RTO check).
    """
    results: list[InvariantResult] = []
    if len(log) == 0:
        raise ConfigError(
            "cannot check invariants: the run recorded no requests; check the load URL"
        )

    # 1. no request lost -------------------------------------------------------------
    unanswered = log.status <= 0
    missing = max(0, expected_requests - len(log))
    lost = int(unanswered.sum()) + missing
    detail = f"{lost} of {expected_requests} lost"
    if unanswered.any():
        detail += f" ({_lost_breakdown(log.select(unanswered))})"
    if missing:
        detail += f", {missing} of them missing from the log"
    results.append(
        InvariantResult(
            "no request lost", lost <= invariants.lost, f"{detail}; target <= {invariants.lost}"
        )
    )

    # 2. available while at least one region is healthy ------------------------------
    mask = healthy_region_mask(log, windows, topology, invariants)
    judged = int(mask.sum())
    name = "available while a region is healthy"
    if judged < invariants.min_requests:
        results.append(
            InvariantResult(
                name,
                True,
                f"only {judged} request(s) fell while a region was healthy; needs "
                f">= {invariants.min_requests}",
                checked=False,
            )
        )
    else:
        verdict = evaluate(
            log.select(mask),
            Objectives(
                availability=invariants.availability, degraded_share=invariants.degraded_share
            ),
            min_samples=1,
        )
        held = verdict.status != "fail"
        measured = ", ".join(f"{r.name} {r.measured}" for r in verdict.results)
        detail = f"{judged} of {len(log)} requests judged: {measured}"
        if not held:
            judged_log = log.select(mask)
            statuses = judged_log.status[~judged_log.ok]
            codes = ", ".join(
                f"{int(c)}: {int((statuses == c).sum())}" for c in sorted(set(statuses.tolist()))
            )
            detail = (
                f"{_failed_line(verdict)} over the {judged} requests sent while a region "
                "was healthy" + (f" (non-2xx statuses {codes})" if codes else "")
            )
        results.append(InvariantResult(name, held, detail, verdict=verdict))

    # 3. RTO after the last fault is reverted -------------------------------------------
    name = "RTO bound"
    if last_revert_s is None:
        results.append(InvariantResult(name, True, "no fault was injected", checked=False))
    else:
        rto = recovery_time(
            log, last_revert_s, target=invariants.recovery_share, width_s=invariants.window_s
        )
        shown = "never" if math.isinf(rto) else f"{rto:.2f} s"
        held = rto <= invariants.rto_s
        results.append(
            InvariantResult(
                name,
                held,
                f"recovered {shown} after the last revert at t={last_revert_s:.2f} s "
                f"(good share >= {invariants.recovery_share:g} per {invariants.window_s:g} s "
                f"window); target <= {invariants.rto_s:g} s",
            )
        )
    return results
