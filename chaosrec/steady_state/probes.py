"""Traffic probes: a short open-loop sample of requests, measured by :mod:`chaosrec.slo.measures`.

The pytest ``steady_state`` fixture (:func:`traffic_hypothesis`) and the Chaos Toolkit
probes (:mod:`chaosrec.ctk.probes`) both take a :class:`TrafficSample` and read their
numbers from it, so a probe reports what an SLO verdict or a guardrail reports for
the same requests: availability and error rate over every request, degraded share
over the 2xx answers, the nearest-rank p99 of the 2xx answers from each request's
scheduled send time.

Several probes share one sample: a steady-state verification sends one sample for
its availability and p99 probes, not one each::

    sample = TrafficSample.open_loop(url, rate_rps=100, duration_s=2, reuse_s=math.inf)
    hypothesis = traffic_hypothesis("serves", sample, availability=0.99, p99_ms=250)
    hypothesis.verify("before")
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from chaosrec.core.validation import check_non_negative
from chaosrec.slo.log import RequestLog
from chaosrec.slo.measures import PERCENTILES, Measures, measure
from chaosrec.steady_state.hypotheses import SteadyStateHypothesis, Tolerance, at_least, at_most

if TYPE_CHECKING:
    from chaosrec.load.requests import ParamsFn

__all__ = ["TrafficSample", "probe_value", "tolerance_for", "traffic_hypothesis"]

#: metrics where a bare number is a floor (at least); for every other one it is a ceiling
_FLOORS = frozenset({"availability", "recall_at_10"})
#: what a probe reports for a share the sample cannot give (it holds no request)
_NO_REQUEST = {"availability": 0.0, "error_rate": 1.0}


def probe_value(measured: Measures, metric: str, *, unanswered_ms: float = math.inf) -> float:
    """``metric`` of ``measured`` as a probe reports it: always a number, the worst one
    when the sample cannot give a value (availability 0 and error rate 1 without any
    request; ``unanswered_ms`` for a latency percentile when nothing was answered)."""
    value = measured.value(metric)
    if value is not None:
        return value
    return unanswered_ms if metric in PERCENTILES else _NO_REQUEST[metric]


class TrafficSample:
    """A sample of traffic, taken by ``take`` (e.g. a short open-loop load run) and
    measured when a probe asks.

    :param take: sends the sample and returns its request log.
    :param reuse_s: a sample that finished at most this many seconds ago is reused by
        the next probe (``0``: every probe takes its own; ``math.inf``: until a probe
        asks for a ``fresh`` one).
    :param clock: the time in seconds that ``reuse_s`` is measured on (monotonic).
    """

    def __init__(
        self,
        take: Callable[[], RequestLog],
        *,
        reuse_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._take = take
        # math.inf (reuse until a fresh sample is asked for) is the one non-finite value
        self.reuse_s = reuse_s if reuse_s == math.inf else check_non_negative("reuse_s", reuse_s)
        self._clock = clock
        self._log: RequestLog | None = None
        self._taken_at = -math.inf
        #: how many samples were taken (each one sent traffic)
        self.taken = 0

    @classmethod
    def open_loop(
        cls,
        url: str,
        *,
        rate_rps: float,
        duration_s: float,
        params: ParamsFn | None = None,
        reuse_s: float = 0.0,
    ) -> TrafficSample:
        """Samples of ``rate_rps`` x ``duration_s`` open-loop GET requests to ``url``
        (:class:`~chaosrec.load.generator.LoadRun`, query parameters from ``params``)."""
        from chaosrec.load.generator import LoadRun

        def take() -> RequestLog:
            run = LoadRun(url, rate_rps=rate_rps, duration_s=duration_s, params=params)
            with run:
                pass
            return run.log

        return cls(take, reuse_s=reuse_s)

    def log(self, *, fresh: bool = False) -> RequestLog:
        """The sample's request log: the last one when it is recent enough (see
        ``reuse_s``) and ``fresh`` is not asked for, else a new one."""
        log = self._log
        recent = self.reuse_s > 0 and self._clock() - self._taken_at <= self.reuse_s
        if log is None or fresh or not recent:
            log = self._log = self._take()
            self._taken_at = self._clock()
            self.taken += 1
        return log

    def measures(self, *, fresh: bool = False) -> Measures:
        """The sample, measured (:func:`chaosrec.slo.measures.measure`)."""
        return measure(self.log(fresh=fresh))

    def value(self, metric: str, *, fresh: bool = False, unanswered_ms: float = math.inf) -> float:
        """One metric of the sample, as a probe reports it (see :func:`probe_value`)."""
        return probe_value(self.measures(fresh=fresh), metric, unanswered_ms=unanswered_ms)


def tolerance_for(name: str, value: object) -> Tolerance:
    """``value`` as a tolerance for probe ``name``: a :class:`Tolerance` (``at_least``,
    ``at_most``, ``between``), a ``(low, high)`` pair or ``{min:, max:}``, or a bare
    number: a floor for availability and recall, a ceiling for the rest."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return at_least(value) if name in _FLOORS else at_most(value)
    return Tolerance.coerce(value, name)


def traffic_hypothesis(
    title: str,
    sample: TrafficSample,
    *,
    availability: object = None,
    error_rate: object = None,
    p99_ms: object = None,
    degraded_share: object = None,
) -> SteadyStateHypothesis:
    """A hypothesis with a probe for each metric given a tolerance (see
    :func:`tolerance_for`), all reading ``sample``: the first probe of each
    verification takes a fresh sample, the others measure that same one."""
    hypothesis = SteadyStateHypothesis(title)
    wanted = {
        "availability": availability,
        "error_rate": error_rate,
        "p99_ms": p99_ms,
        "degraded_share": degraded_share,
    }
    first = True
    for metric, tolerance in wanted.items():
        if tolerance is None:
            continue
        hypothesis.add(
            metric, _probe(sample, metric, fresh=first), tolerance_for(metric, tolerance)
        )
        first = False
    return hypothesis


def _probe(sample: TrafficSample, metric: str, *, fresh: bool) -> Callable[[], float]:
    def probe() -> float:
        return sample.value(metric, fresh=fresh)

    probe.__name__ = f"traffic_{metric}"
    return probe
