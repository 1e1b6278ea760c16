"""What a set of requests measured: the one place chaosrec computes a latency percentile,
availability, error rate or degraded share.

Every front measures through here: SLO verdicts (:func:`chaosrec.slo.objectives.evaluate`),
guardrails (:mod:`chaosrec.faults.guardrail`), steady-state and Chaos Toolkit probes
(:mod:`chaosrec.steady_state.probes`, :mod:`chaosrec.ctk.probes`) and the drill reports,
so a probe, a guardrail and an SLO looking at the same requests report the same numbers.

Definitions (pure functions, property-tested against brute force):

* **answered**: HTTP 2xx, degraded fallback answers included;
* **availability** = answered / requests; every scheduled request counts, so a request
  the load generator dropped, a transport error (refused, reset, timed out) and any
  non-2xx status count against it;
* **error rate** = (requests - answered) / requests, i.e. 1 - availability;
* **degraded share** = degraded 2xx answers / all 2xx answers (0 when none answered);
* **latency** is measured from each request's *scheduled* send time
  (:attr:`RequestLog.latency_ms <chaosrec.slo.log.RequestLog.latency_ms>`), over 2xx
  answers only;
* **percentile** p: the nearest rank, the smallest value with at least p % of the
  values at or below it (rank ``ceil(p/100 * n)``), so a p99 never under-reports and is
  always a latency that was really observed. :class:`~chaosrec.slo.histogram.LatencyHistogram`
  uses the same :func:`nearest_rank`, so exact arrays and mergeable histograms agree to
  the histogram's 3 significant digits;
* **lost**: no answer at all (dropped, transport error) or a 5xx.

Sources without per-request rows (the gateway's Prometheus counters) build a
:class:`Measures` from their counts and get the same shares::

    m = measure(run.log)
    m.availability, m.error_rate, m.degraded_share, m.p99_ms
    Measures(requests=200, answered=180, degraded=90).value("degraded_share")  # 0.5
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from chaosrec.core.validation import check_choice, check_non_negative
from chaosrec.errors import ConfigError
from chaosrec.slo.log import RequestLog

__all__ = [
    "METRICS",
    "PERCENTILES",
    "Measures",
    "answered_mask",
    "degraded_mask",
    "lost_mask",
    "measure",
    "measure_groups",
    "nearest_rank",
    "percentile",
]

#: the percentiles a :class:`Measures` carries, by metric name
PERCENTILES: dict[str, float] = {"p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0}


def nearest_rank(values_sorted: npt.ArrayLike, counts: npt.ArrayLike | None, q: float) -> float:
    """The ``q``-th percentile (``q`` in 0-100) of ascending ``values_sorted``, each seen
    ``counts`` times (once each when ``counts`` is None): the value at rank
    ``ceil(q/100 * n)`` (at least 1). NaN when there is no value.

    >>> nearest_rank([10.0, 20.0, 30.0, 40.0], None, 50)
    20.0
    >>> nearest_rank([10.0, 20.0], [99, 1], 99)
    10.0
    """
    check_non_negative("q", q, maximum=100.0)
    values = np.asarray(values_sorted, dtype=np.float64)
    if counts is None:
        n = int(values.shape[0])
        if n == 0:
            return math.nan
        return float(values[_rank(n, q) - 1])
    cumulative = np.cumsum(np.asarray(counts, dtype=np.int64))
    if cumulative.shape != values.shape:
        raise ConfigError(
            f"counts has {cumulative.shape[0]} entries for {values.shape[0]} values; "
            "give one count per value"
        )
    n = int(cumulative[-1]) if cumulative.shape[0] else 0
    if n == 0:
        return math.nan
    return float(values[int(np.searchsorted(cumulative, _rank(n, q), side="left"))])


def _rank(n: int, q: float) -> int:
    # 1e-9 absorbs the float noise of q/100*n (99.9/100*1000 = 999.0000000000001),
    # which would otherwise push an exact rank one value up
    return min(n, max(1, math.ceil(q / 100.0 * n - 1e-9)))


def percentile(values: npt.ArrayLike, q: float) -> float:
    """The nearest-rank ``q``-th percentile (0-100) of ``values`` in any order; NaN when
    there is none."""
    return nearest_rank(np.sort(np.asarray(values, dtype=np.float64)), None, q)


# -- which requests count as what ----------------------------------------------------------


def answered_mask(log: RequestLog) -> npt.NDArray[np.bool_]:
    """Per request: answered 2xx (degraded answers included)."""
    return log.ok


def degraded_mask(log: RequestLog) -> npt.NDArray[np.bool_]:
    """Per request: a 2xx answer served by the degraded fallback."""
    return log.ok & log.degraded


def lost_mask(log: RequestLog) -> npt.NDArray[np.bool_]:
    """Per request: no answer at all (dropped by the client, transport error) or a 5xx."""
    return (log.status <= 0) | (log.status >= 500)


# -- the summary ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Measures:
    """Counts and latency percentiles of a set of requests, and the shares they give.

    ``requests``: every request (answered or not); ``answered``: 2xx answers, degraded
    included; ``degraded``: degraded 2xx answers; ``p50_ms``/``p95_ms``/``p99_ms``:
    nearest-rank latency percentiles of the 2xx answers in ms, None when none answered
    or when the source has no latencies (plain counts). Keyword-only, and checked:
    ``0 <= degraded <= answered <= requests``.
    """

    requests: int
    answered: int
    degraded: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None

    def __post_init__(self) -> None:
        for name in ("requests", "answered", "degraded"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise ConfigError(f"{name}={value!r} must be an integer >= 0")
            object.__setattr__(self, name, int(value))  # numpy counts become plain ints
        if self.answered > self.requests:
            raise ConfigError(
                f"answered={self.answered} > requests={self.requests}: a request is answered "
                "at most once"
            )
        if self.degraded > self.answered:
            raise ConfigError(
                f"degraded={self.degraded} > answered={self.answered}: only 2xx answers can "
                "be degraded"
            )

    @property
    def errors(self) -> int:
        """Requests not answered 2xx: non-2xx statuses, transport errors and drops."""
        return self.requests - self.answered

    @property
    def availability(self) -> float | None:
        """answered / requests; None when there was no request."""
        return self.answered / self.requests if self.requests else None

    @property
    def error_rate(self) -> float | None:
        """errors / requests (1 - availability); None when there was no request."""
        return self.errors / self.requests if self.requests else None

    @property
    def degraded_share(self) -> float:
        """degraded / answered; 0 when nothing was answered."""
        return self.degraded / self.answered if self.answered else 0.0

    def value(self, metric: str) -> float | None:
        """The value of ``metric`` (one of :data:`METRICS`), None when it has none."""
        check_choice("metric", metric, METRICS)
        return METRICS[metric](self)


#: metric name -> how a :class:`Measures` gives it (guardrail conditions, probes and
#: objectives use these names)
METRICS: dict[str, Callable[[Measures], float | None]] = {
    "availability": lambda m: m.availability,
    "error_rate": lambda m: m.error_rate,
    "degraded_share": lambda m: m.degraded_share,
    "p50_ms": lambda m: m.p50_ms,
    "p95_ms": lambda m: m.p95_ms,
    "p99_ms": lambda m: m.p99_ms,
}


def _summary(
    requests: int, answered: int, degraded: int, latency_sorted: npt.NDArray[np.float64]
) -> Measures:
    """``latency_sorted``: the ascending latencies of the 2xx answers."""
    percentiles = {
        name: (nearest_rank(latency_sorted, None, pct) if latency_sorted.shape[0] else None)
        for name, pct in PERCENTILES.items()
    }
    return Measures(requests=requests, answered=answered, degraded=degraded, **percentiles)


def measure(log: RequestLog) -> Measures:
    """Every request of ``log``, measured (see the module doc for the definitions)."""
    answered = answered_mask(log)
    return _summary(
        len(log),
        int(answered.sum()),
        int(degraded_mask(log).sum()),
        np.sort(log.latency_ms[answered]),
    )


def measure_groups(log: RequestLog, group: npt.NDArray[np.int64], n: int) -> list[Measures]:
    """One :class:`Measures` per group ``0 .. n-1``; ``group[i]`` is request i's group
    (e.g. its time bucket). Equal to ``measure(log.select(group == g))`` for each ``g``,
    with one sort for all groups instead of one per group."""
    group = np.asarray(group, dtype=np.int64)
    if group.shape != (len(log),):
        raise ConfigError(f"group has shape {group.shape}; give one group per request ({len(log)})")
    if len(log) and (group.min() < 0 or group.max() >= n):
        raise ConfigError(f"group ids must be in [0, {n}); got {group.min()} .. {group.max()}")
    answered = answered_mask(log)
    requests = np.bincount(group, minlength=n)
    n_answered = np.bincount(group[answered], minlength=n)
    n_degraded = np.bincount(group[degraded_mask(log)], minlength=n)
    # answered latencies sorted by (group, latency): each group's run is ascending
    latency = log.latency_ms[answered]
    answered_group = group[answered]
    order = np.lexsort((latency, answered_group))
    latency, answered_group = latency[order], answered_group[order]
    bounds = np.searchsorted(answered_group, np.arange(n + 1), side="left")
    return [
        _summary(
            int(requests[g]),
            int(n_answered[g]),
            int(n_degraded[g]),
            latency[bounds[g] : bounds[g + 1]],
        )
        for g in range(n)
    ]
