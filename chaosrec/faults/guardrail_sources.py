"""Where a guardrail's measurements come from: a running load run in this process, or the
recommender gateway's Prometheus counters (for ``chaos run``, where no load runs here).
Both measure through :mod:`chaosrec.slo.measures`, like every other front."""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from chaosrec.adapters.gateway import GatewayClient
from chaosrec.slo.log import RequestLog
from chaosrec.slo.measures import Measures, measure

__all__ = ["GatewayMetricsSource", "LoadRunSource", "MeasurementSource", "RunningLoad"]


class MeasurementSource(Protocol):
    """Live measurements over the last ``window_s`` seconds."""

    def measure(self, window_s: float) -> Measures: ...

    def describe(self) -> str: ...


@runtime_checkable
class RunningLoad(Protocol):
    """What a guardrail reads from a running load (a
    :class:`~chaosrec.load.generator.LoadRun`)."""

    @property
    def url(self) -> str: ...

    @property
    def elapsed_s(self) -> float: ...

    def snapshot(self) -> RequestLog: ...


class LoadRunSource:
    """A running :class:`~chaosrec.load.generator.LoadRun`: the requests that ended
    (answered, failed or dropped) in the window, from its public snapshot."""

    def __init__(self, run: RunningLoad) -> None:
        self.run = run

    def describe(self) -> str:
        return f"load run against {self.run.url}"

    def measure(self, window_s: float) -> Measures:
        now = self.run.elapsed_s
        log = self.run.snapshot()
        return measure(log.select(log.done_s >= now - window_s))


class GatewayMetricsSource:
    """The recommender gateway's ``/metrics`` counters (``chaosrec_gateway_requests``),
    differenced over the window; works for ``chaos run`` where no load run is in process."""

    def __init__(self, gateway_url: str, *, timeout_s: float = 1.0) -> None:
        self.gateway = GatewayClient(gateway_url)
        self.gateway_url = self.gateway.url
        self.timeout_s = timeout_s
        self._history: list[tuple[float, int, int, int]] = []  # (t, total, errors, degraded)

    def describe(self) -> str:
        return f"gateway metrics at {self.gateway_url}/metrics"

    def counters(self) -> tuple[int, int, int]:
        """The gateway's cumulative (total, errors, degraded) request counters."""
        counts = self.gateway.request_counts(self.timeout_s)
        return counts.total, counts.errors, counts.degraded

    def measure(self, window_s: float) -> Measures:
        now = time.monotonic()
        total, errors, degraded = self.counters()
        if self._history:
            _, last_total, last_errors, last_degraded = self._history[-1]
            if total < last_total or errors < last_errors or degraded < last_degraded:
                self._history.clear()  # the gateway restarted: its counters began again at 0
        self._history.append((now, total, errors, degraded))
        # the oldest sample still inside the window (or the first one we have)
        while len(self._history) > 2 and self._history[1][0] <= now - window_s:
            self._history.pop(0)
        _, t0, e0, d0 = self._history[0]
        requests = total - t0
        return Measures(
            requests=requests, answered=requests - (errors - e0), degraded=degraded - d0
        )
