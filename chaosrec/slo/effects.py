"""Fault versus baseline within one drill: how much the fault changed each figure, with a
bootstrap confidence interval, so a report can say "the region outage added 3.1 ms to p99
(95 % CI 2.4 to 3.9)" instead of showing two numbers side by side.

The two groups of one load run (times on the run's clock, by *scheduled* send time):

* **baseline**: the requests scheduled before the first fault started;
* **fault**: the requests scheduled while any fault was on (``[start, end)`` of each
  window, a window still open at the end of the run lasting until its end).

The requests between a revert and the end of the run (recovery) are in neither group.
Every figure of a group is measured by :mod:`chaosrec.slo.measures` (the definitions of
the SLO verdict: nearest-rank p50/p99 of the 2xx answers, availability over every
request, degraded share of the 2xx answers).

**The interval.** A percentile bootstrap over requests: each group is resampled with
replacement ``resamples`` times (independently of the other), each resample measured
as above, and the interval is the central ``confidence`` share of the resampled
differences (fault - baseline). It says how much the difference could move if the same
phases had seen other requests like these. It does not cover what changes between runs
(another load on the machine, a different failover timing): that is what the regression
rule of :mod:`chaosrec.slo.regression` compares over a drill's history. Requests close
in time are not independent (a failover slows a burst of them together), so the
interval is narrower than a run-to-run interval would be; read it as the precision of
this run's difference. The generator is seeded, so the same log gives the same interval.

A figure needs enough requests in both groups to be estimated (:data:`MIN_REQUESTS`:
the 100 answers a p99 needs, as in the SLO verdict); with fewer it is left out.

Example::

    for effect in fault_effects(run.log, drill.fault_windows(run.t0_epoch)):
        print(effect.metric, effect.delta, effect.ci_low, effect.ci_high)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from chaosrec.core.validation import check_choice, check_positive_int
from chaosrec.errors import ConfigError
from chaosrec.slo.log import RequestLog
from chaosrec.slo.measures import (
    PERCENTILES,
    Measures,
    answered_mask,
    degraded_mask,
    measure,
    nearest_rank,
    percentile,
)
from chaosrec.slo.objectives import FaultWindow

__all__ = [
    "EFFECT_METRICS",
    "MIN_REQUESTS",
    "Effect",
    "bootstrap_measures",
    "fault_effects",
    "fault_phases",
]

#: the figures compared, in report order
EFFECT_METRICS = ("p99_ms", "p50_ms", "availability", "degraded_share")

#: fewest requests each group needs for a figure: answered requests for a latency
#: percentile (a p99 over fewer than 100 answers is its maximum), requests for a share
MIN_REQUESTS: dict[str, int] = {
    "p99_ms": 100,
    "p50_ms": 20,
    "availability": 20,
    "degraded_share": 20,
}

# values resampled per chunk: bounds the memory of one chunk to ~50 MB
_CHUNK_VALUES = 2_000_000


@dataclass(frozen=True)
class Effect:
    """How the fault phase differs from the baseline for one figure (units in ``metric``).

    ``delta`` is ``fault - baseline``; ``ci_low``/``ci_high`` bound it with
    ``confidence``; ``n_baseline``/``n_fault`` are the requests each group held (answered
    requests for a latency figure, requests for a share).
    """

    metric: str
    baseline: float
    fault: float
    delta: float
    ci_low: float
    ci_high: float
    confidence: float
    n_baseline: int
    n_fault: int

    @property
    def clear(self) -> bool:
        """The interval excludes 0: the fault changed this figure beyond the noise of
        which requests happened to be sampled."""
        return self.ci_low > 0 or self.ci_high < 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Effect:
        return cls(
            metric=str(data["metric"]),
            baseline=float(data["baseline"]),
            fault=float(data["fault"]),
            delta=float(data["delta"]),
            ci_low=float(data["ci_low"]),
            ci_high=float(data["ci_high"]),
            confidence=float(data["confidence"]),
            n_baseline=int(data["n_baseline"]),
            n_fault=int(data["n_fault"]),
        )


def fault_phases(
    log: RequestLog, windows: Sequence[FaultWindow], *, run_end_s: float | None = None
) -> tuple[RequestLog, RequestLog] | None:
    """The baseline and fault groups of ``log`` (see the module doc), or None when no
    fault started during the run."""
    end = run_end_s if run_end_s is not None else math.inf
    started = [w for w in windows if w.start_s < end]
    if not started:
        return None
    first = min(w.start_s for w in started)
    during = np.zeros(len(log), dtype=np.bool_)
    for w in started:
        stop = w.end_s if w.end_s is not None else math.inf
        during |= (log.scheduled_s >= w.start_s) & (log.scheduled_s < stop)
    return log.select(log.scheduled_s < first), log.select(during)


def _value(m: Measures, metric: str) -> float | None:
    if metric == "degraded_share" and m.answered == 0:
        return None  # no answer: no share of them degraded
    return m.value(metric)


def _count(m: Measures, metric: str) -> int:
    return m.answered if metric in PERCENTILES else m.requests


def bootstrap_measures(log: RequestLog, resamples: int, rng: np.random.Generator) -> list[Measures]:
    """``resamples`` resamples of ``log``'s requests (with replacement, as many as it
    holds), each measured as :func:`chaosrec.slo.measures.measure` measures a log."""
    n = len(log)
    if n == 0:
        return []
    answered = answered_mask(log)
    degraded = degraded_mask(log)
    latency = log.latency_ms
    out: list[Measures] = []
    chunk = max(1, _CHUNK_VALUES // n)
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        idx = rng.integers(0, n, size=(rows, n))
        picked: npt.NDArray[np.bool_] = answered[idx]
        # unanswered requests sort last, so each row's first n_answered are its latencies
        lat = np.where(picked, latency[idx], np.inf)
        lat.sort(axis=1)
        n_answered = picked.sum(axis=1)
        n_degraded = degraded[idx].sum(axis=1)
        for row in range(rows):
            a = int(n_answered[row])
            answers = lat[row, :a]
            latencies = {
                name: (nearest_rank(answers, None, pct) if a else None)
                for name, pct in PERCENTILES.items()
            }
            out.append(Measures(requests=n, answered=a, degraded=int(n_degraded[row]), **latencies))
    return out


def fault_effects(
    log: RequestLog,
    windows: Sequence[FaultWindow],
    *,
    metrics: Sequence[str] = EFFECT_METRICS,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
    run_end_s: float | None = None,
) -> list[Effect]:
    """The fault-versus-baseline difference of each of ``metrics`` in ``log``, with its
    bootstrap interval (see the module doc). Figures without enough requests in either
    group (:data:`MIN_REQUESTS`) are left out; no fault during the run gives ``[]``.

    :param windows: the faults on the run's clock (:meth:`Drill.fault_windows
        <chaosrec.drill.Drill.fault_windows>`).
    :param confidence: the interval's coverage, in (0, 1).
    :param resamples: bootstrap resamples per group.
    :param seed: seeds the resampling, so a log always gives the same interval.
    :raises ConfigError: an unknown metric, a confidence outside (0, 1), resamples < 10.
    """
    for metric in metrics:
        check_choice("metric", metric, EFFECT_METRICS)
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence={confidence!r} must be in (0, 1), e.g. 0.95")
    check_positive_int("resamples", resamples, maximum=100_000)
    if resamples < 10:
        raise ConfigError(f"resamples={resamples} is too few for an interval; use >= 10")
    groups = fault_phases(log, windows, run_end_s=run_end_s)
    if groups is None:
        return []
    baseline_log, fault_log = groups
    baseline, fault = measure(baseline_log), measure(fault_log)
    wanted = [
        m
        for m in metrics
        if _count(baseline, m) >= MIN_REQUESTS[m]
        and _count(fault, m) >= MIN_REQUESTS[m]
        and _value(baseline, m) is not None
        and _value(fault, m) is not None
    ]
    if not wanted:
        return []
    rng = np.random.default_rng(seed)
    base_samples = bootstrap_measures(baseline_log, resamples, rng)
    fault_samples = bootstrap_measures(fault_log, resamples, rng)
    tail = 100.0 * (1.0 - confidence) / 2.0
    effects = []
    for metric in wanted:
        before, after = _value(baseline, metric), _value(fault, metric)
        assert before is not None and after is not None  # filtered above
        deltas = [
            a - b
            for a, b in (
                (_value(f, metric), _value(s, metric))
                for f, s in zip(fault_samples, base_samples, strict=True)
            )
            if a is not None and b is not None
        ]
        effects.append(
            Effect(
                metric=metric,
                baseline=before,
                fault=after,
                delta=after - before,
                ci_low=percentile(deltas, tail),
                ci_high=percentile(deltas, 100.0 - tail),
                confidence=confidence,
                n_baseline=_count(baseline, metric),
                n_fault=_count(fault, metric),
            )
        )
    return effects
