"""What a report says about one drill, as plain data: no allure, no matplotlib.

:func:`drill_result` turns a :class:`~chaosrec.drill.Drill` (phases, faults, load runs,
verdicts) and the test's outcome into a JSON-able dict that travels with the pytest
report (also across pytest-xdist workers) and feeds every renderer: the Allure
enrichment, the timeline chart, the SLO table and the drill summary.

:func:`timeline` buckets a :class:`~chaosrec.slo.log.RequestLog` for the chart::

    tl = timeline(run.log, bucket_s=0.25)
    tl.t_s, tl.throughput_rps, tl.p50_ms, tl.p99_ms, tl.error_rate, tl.degraded_rate
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from chaosrec.core.validation import check_positive
from chaosrec.slo.effects import fault_effects
from chaosrec.slo.log import RequestLog
from chaosrec.slo.measures import measure, measure_groups, percentile
from chaosrec.slo.objectives import FaultWindow
from chaosrec.slo.windows import detection_time, recovery_time

__all__ = [
    "CATEGORIES",
    "CATEGORY_ABORTED",
    "CATEGORY_INCONCLUSIVE",
    "CATEGORY_INFRA",
    "CATEGORY_REGRESSED",
    "CATEGORY_SLO",
    "Timeline",
    "category_of",
    "drill_result",
    "main_run",
    "run_effects",
    "run_metrics",
    "severity_of",
    "timeline",
]

CATEGORY_SLO = "SLO breached"
CATEGORY_ABORTED = "Drill aborted by a guardrail"
CATEGORY_INCONCLUSIVE = "Drill inconclusive"
CATEGORY_INFRA = "Infrastructure error"
#: a drill that passed its SLO but got worse than its history allows (the message
#: chaosrec gives its Allure result, see chaosrec.reporting.history_text)
CATEGORY_REGRESSED = "Drill regressed (SLO still met)"

#: Allure categories (``categories.json``), first match wins. The messages are those of
#: :class:`~chaosrec.errors.SLOViolation`, :class:`~chaosrec.errors.GuardrailTripped` and
#: :class:`~chaosrec.errors.DrillInconclusive`; anything else that breaks a drill (an
#: exception that is not an assertion) is an infrastructure error. A drill that passed
#: but regressed against its history carries a ``drill regressed:`` message (chaosrec
#: sets it on the passed result). The regexes match the whole message in both Allure 2
#: (Java) and Allure 3 (JavaScript, no inline flags).
CATEGORIES: list[dict[str, Any]] = [
    {
        "name": CATEGORY_SLO,
        "messageRegex": r"[\s\S]*SLO breached[\s\S]*",
        "matchedStatuses": ["failed"],
    },
    {
        "name": CATEGORY_ABORTED,
        "messageRegex": r"[\s\S]*guardrail tripped:[\s\S]*",
        "matchedStatuses": ["failed", "broken"],
    },
    {
        "name": CATEGORY_INCONCLUSIVE,
        "messageRegex": r"[\s\S]*drill inconclusive[\s\S]*",
        "matchedStatuses": ["failed"],
    },
    {
        "name": CATEGORY_INFRA,
        "matchedStatuses": ["broken"],
    },
    {
        "name": CATEGORY_REGRESSED,
        "messageRegex": r"[\s\S]*drill regressed:[\s\S]*",
        "matchedStatuses": ["passed"],
    },
]

# Good enough to read a chart: the exact SLO arithmetic lives in chaosrec.slo.
_RTO_WINDOW_S = 0.5
_RTO_GOOD_SHARE = 0.99

_SEVERITY_BY_AVAILABILITY = ((0.9999, "blocker"), (0.999, "critical"), (0.99, "normal"))


@dataclass(frozen=True)
class Timeline:
    """A run in buckets of ``bucket_s`` seconds (by scheduled send time)."""

    bucket_s: float
    t_s: npt.NDArray[np.float64]  # bucket start, seconds since the run's start
    requests: npt.NDArray[np.int64]
    throughput_rps: npt.NDArray[np.float64]  # answered 2xx per second
    p50_ms: npt.NDArray[np.float64]  # NaN where no 2xx answer
    p99_ms: npt.NDArray[np.float64]
    error_rate: npt.NDArray[np.float64]  # share not answered 2xx; NaN in empty buckets
    degraded_rate: npt.NDArray[np.float64]  # share of 2xx answers that were degraded


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def timeline(log: RequestLog, bucket_s: float = 0.25, end_s: float | None = None) -> Timeline:
    """Bucket ``log`` by scheduled time: throughput, p50/p99, error and degraded rates, each
    bucket measured by :func:`chaosrec.slo.measures.measure_groups` (the SLO's definitions:
    nearest-rank percentiles of 2xx answers, and so on)."""
    check_positive("bucket_s", bucket_s)
    last = float(log.scheduled_s.max()) if len(log) else 0.0
    # cover the planned duration and every request, without an empty bucket past the end
    n = max(1, math.ceil((end_s or 0.0) / bucket_s - 1e-9), int(last // bucket_s) + 1)
    idx = np.minimum((log.scheduled_s // bucket_s).astype(np.int64), n - 1)
    buckets = measure_groups(log, idx, n)
    requests = np.array([m.requests for m in buckets], dtype=np.int64)
    answered = np.array([m.answered for m in buckets], dtype=np.int64)
    p50 = np.array([_or_nan(m.p50_ms) for m in buckets], dtype=np.float64)
    p99 = np.array([_or_nan(m.p99_ms) for m in buckets], dtype=np.float64)
    # a chart leaves a gap (NaN) where a bucket has nothing to show, not a 0
    error_rate = np.array([_or_nan(m.error_rate) for m in buckets], dtype=np.float64)
    degraded_rate = np.array(
        [m.degraded_share if m.answered else math.nan for m in buckets], dtype=np.float64
    )
    return Timeline(
        bucket_s=bucket_s,
        t_s=np.arange(n, dtype=np.float64) * bucket_s,
        requests=requests,
        throughput_rps=answered / bucket_s,
        p50_ms=p50,
        p99_ms=p99,
        error_rate=error_rate,
        degraded_rate=degraded_rate,
    )


def _baseline_threshold_ms(log: RequestLog, before_s: float) -> float | None:
    """A latency that counts as impaired when no objective says: twice the pre-fault p99,
    and at least 50 ms above it (None without enough pre-fault answers)."""
    baseline = measure(log.select(log.scheduled_s < before_s))
    if baseline.answered < 20 or baseline.p99_ms is None:
        return None
    return max(2 * baseline.p99_ms, baseline.p99_ms + 50.0)


def run_metrics(
    log: RequestLog, faults: list[dict[str, Any]], *, latency_ms: float | None = None
) -> dict[str, Any]:
    """Headline numbers of one run: availability, p50/p99, degraded share, MTTD and RTO,
    and the load generator's p99 send lag (its own delay behind the schedule).

    ``faults`` are fault records of :meth:`Drill.to_dict` (epoch times); MTTD and RTO are
    measured from the first fault that started during the run (``None`` without one;
    ``"never"`` when the run ended first), counting a request as good when it was answered
    2xx within ``latency_ms`` (default: the drill's p99 objective, else a threshold from
    the pre-fault baseline). Detection and recovery are also given as run-clock times
    (``detected_at_s``, ``recovered_at_s``) for the chart.
    """
    total = len(log)
    # the SLO module's measures, so the report's p99 is the verdict's p99
    measured = measure(log)
    windows = []
    for f in faults:
        if f.get("started_at") is None:
            continue
        start = f["started_at"] - log.t0_epoch
        end = None if f.get("ended_at") is None else f["ended_at"] - log.t0_epoch
        windows.append((start, end, f))
    last = float(log.scheduled_s.max()) if total else 0.0
    windows = [w for w in windows if w[0] <= last]
    metrics: dict[str, Any] = {
        "requests": measured.requests,
        "answered_2xx": measured.answered,
        "availability": measured.availability,
        "error_rate": measured.error_rate,
        "p50_ms": measured.p50_ms,
        "p99_ms": measured.p99_ms,
        # None (not 0) when nothing was answered: the summary shows "-", not "0.000"
        "degraded_share": measured.degraded_share if measured.answered else None,
        "mttd_s": None,
        "rto_s": None,
        "detected_at_s": None,
        "recovered_at_s": None,
        "fault_windows_s": [[w[0], w[1]] for w in windows],
        "good_latency_ms": None,
        # how far the load generator fell behind its own schedule: on a machine with
        # headroom ~1-3 ms at these rates; far more means the run measured the machine
        "send_lag_p99_ms": (
            percentile((log.sent_s - log.scheduled_s) * 1000.0, 99) if total else None
        ),
    }
    if not windows or total == 0:
        return metrics
    start = min(w[0] for w in windows)
    fault_end = max((w[1] if w[1] is not None else last) for w in windows)
    targets = {t for w in windows for t in w[2].get("targets", [])}
    if latency_ms is None:
        latency_ms = _baseline_threshold_ms(log, start)
    metrics["good_latency_ms"] = latency_ms
    mttd = detection_time(log, start, targets, latency_ms=latency_ms, fault_end_s=fault_end)
    rto = recovery_time(
        log, start, target=_RTO_GOOD_SHARE, width_s=_RTO_WINDOW_S, latency_ms=latency_ms
    )
    if mttd is not None:
        metrics["mttd_s"] = "never" if math.isinf(mttd) else mttd
        metrics["detected_at_s"] = None if math.isinf(mttd) else start + mttd
    metrics["rto_s"] = "never" if math.isinf(rto) else rto
    # RTO 0: the service never missed its target, so there is no recovery to mark
    metrics["recovered_at_s"] = start + rto if 0 < rto < math.inf else None
    return metrics


def run_effects(
    log: RequestLog, faults: list[dict[str, Any]], *, run_end_s: float | None = None
) -> list[dict[str, Any]]:
    """Fault versus baseline in one run (:func:`chaosrec.slo.effects.fault_effects`): the
    change of p99, p50, availability and degraded share while the faults were on, each
    with its 95 % bootstrap interval. ``faults`` are fault records of
    :meth:`Drill.to_dict` (epoch times); ``[]`` when none started during the run."""
    windows = [
        FaultWindow(
            label=f["label"],
            kind=f["kind"],
            targets=tuple(f.get("targets", ())),
            start_s=f["started_at"] - log.t0_epoch,
            end_s=None if f.get("ended_at") is None else f["ended_at"] - log.t0_epoch,
        )
        for f in faults
        if f.get("started_at") is not None
    ]
    if not windows or len(log) == 0:
        return []
    return [e.to_dict() for e in fault_effects(log, windows, run_end_s=run_end_s)]


def main_run(result: dict[str, Any]) -> dict[str, Any]:
    """The run a drill's headline figures come from: its only run, else the one with the
    most requests (``{}`` without runs)."""
    runs: list[dict[str, Any]] = result.get("runs", [])
    return runs[0] if len(runs) == 1 else (max(runs, key=lambda r: r["requests"]) if runs else {})


def severity_of(verdicts: list[dict[str, Any]]) -> str:
    """Allure severity from the SLO tier: the strictest availability objective checked
    (>= 0.9999 blocker, >= 0.999 critical, >= 0.99 normal, else minor; none: normal)."""
    strictest = None
    for verdict in verdicts:
        for result in verdict.get("results", []):
            if result.get("name") == "availability":
                try:
                    target = float(str(result["target"]).lstrip(">= "))
                except ValueError:
                    continue
                strictest = target if strictest is None else max(strictest, target)
    if strictest is None:
        return "normal"
    for floor, severity in _SEVERITY_BY_AVAILABILITY:
        if strictest >= floor:
            return severity
    return "minor"


def category_of(outcome: str, exc_type: str | None, message: str) -> str | None:
    """The Allure category a drill lands in (see :data:`CATEGORIES`), or None if it passed."""
    if outcome == "passed" or outcome == "skipped":
        return None
    if exc_type == "GuardrailTripped" or message.startswith("guardrail tripped:"):
        return CATEGORY_ABORTED
    if exc_type == "SLOViolation" or "SLO breached" in message:
        return CATEGORY_SLO
    if exc_type == "DrillInconclusive" or "drill inconclusive" in message:
        return CATEGORY_INCONCLUSIVE
    if exc_type is not None and outcome == "broken":
        return CATEGORY_INFRA
    return None


def _scenario(nodeid: str) -> str:
    return nodeid.split("::")[-1]


def drill_result(
    drill: dict[str, Any],
    runs: list[Any],
    *,
    nodeid: str,
    outcome: str,
    exc_type: str | None = None,
    message: str = "",
    started_at: float | None = None,
    ended_at: float | None = None,
    doc: str = "",
) -> dict[str, Any]:
    """The JSON-able record of one drill for every report.

    :param drill: :meth:`Drill.to_dict`.
    :param runs: the drill's load runs (objects with ``log``, ``rate_rps``, ``duration_s``).
    :param outcome: ``passed``, ``failed`` (an assertion: SLO, guardrail, inconclusive),
        ``broken`` (any other exception) or ``skipped``.
    :param doc: the test's docstring (the drill's purpose).
    """
    phases = [dict(p) for p in drill.get("phases", [])]
    if phases and phases[-1].get("ended_at") is None and ended_at is not None:
        phases[-1]["ended_at"] = ended_at
    faults = drill.get("faults", [])
    verdicts = drill.get("verdicts", [])
    # the loosest p99 objective (a drill may add an impossible one on purpose)
    p99_targets = [
        float(r["target"].split()[1])
        for v in verdicts
        for r in v.get("results", [])
        if r.get("name") == "p99_ms"
    ]
    run_rows = []
    for run in runs:
        log: RequestLog = run.log
        run_rows.append(
            {
                "rate_rps": float(run.rate_rps),
                "duration_s": float(run.duration_s),
                "t0_epoch": float(log.t0_epoch or run.t0_epoch),
                "url": str(getattr(run, "url", "")),
                **run_metrics(log, faults, latency_ms=max(p99_targets, default=None)),
                "effects": run_effects(log, faults, run_end_s=float(run.duration_s)),
            }
        )
    inconclusive = outcome == "failed" and exc_type == "DrillInconclusive"
    shown = "inconclusive" if inconclusive else outcome
    return {
        "nodeid": nodeid,
        "scenario": _scenario(nodeid),
        "purpose": " ".join(doc.split()),
        "outcome": shown,
        "category": category_of(outcome, exc_type, message),
        "exc_type": exc_type,
        "message": message,
        "started_at": started_at if started_at is not None else _first(phases, "started_at"),
        "ended_at": ended_at,
        "severity": severity_of(verdicts),
        "phases": phases,
        "faults": faults,
        "runs": run_rows,
        "verdicts": verdicts,
        "notes": drill.get("notes", []),
    }


def _first(phases: list[dict[str, Any]], key: str) -> float | None:
    return phases[0][key] if phases else None
