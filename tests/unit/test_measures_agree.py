"""One request log, every front: an SLO verdict, a guardrail, the Chaos Toolkit probes, a
steady-state hypothesis and the drill report must report the same p99, availability,
error rate and degraded share, and the numbers the definitions give by hand.

The log is built so that each plausible way of computing differently gives another
number: drops, transport errors, 3xx/4xx/5xx (some of them slow, some flagged
degraded), degraded 2xx answers, a send lag (latency from the send, not the schedule,
is smaller) and latencies with more digits than an HDR histogram keeps. Interpolated
percentiles (``np.percentile``), a p99 over every request instead of the 2xx answers,
a degraded share over every request or counting non-2xx rows, an availability without
the degraded answers or an error rate without the drops all fail here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from chaosrec.ctk import probes as ctk_probes
from chaosrec.faults.guardrail import Guardrail, LoadRunSource, parse_conditions
from chaosrec.fixtures import SteadyStateFixture
from chaosrec.reporting.results import run_metrics, timeline
from chaosrec.slo.log import STATUS_CLIENT_DROPPED, STATUS_TRANSPORT_ERROR, RequestLog
from chaosrec.slo.objectives import Objectives, evaluate
from chaosrec.steady_state.hypotheses import between
from chaosrec.steady_state.probes import TrafficSample

METRICS = ("availability", "error_rate", "degraded_share", "p99_ms")
SEND_LAG_S = 0.004


def hand_built_log() -> tuple[RequestLog, dict[str, float]]:
    """200 requests at 100/s and what they measure, worked out by hand."""
    rows: list[tuple[Any, ...]] = []
    answered_ms: list[float] = []

    def add(i: int, latency_ms: float, status: int, degraded: bool = False) -> None:
        scheduled = i / 100
        sent = scheduled + SEND_LAG_S
        done = sent if status == STATUS_CLIENT_DROPPED else scheduled + latency_ms / 1000
        ok = 200 <= status < 300
        rows.append(
            (scheduled, sent, done, status, "region-a" if ok else None,
             "region-a.r0" if ok else None, degraded, None if ok else f"status {status}")
        )  # fmt: skip
        if ok:
            answered_ms.append((done - scheduled) * 1000)

    i = 0
    for k in range(150):  # 2xx answers: 10.123456 .. 266 ms, 7 significant digits
        status = (200, 200, 200, 204, 299)[k % 5]
        add(i, 10.123456 + k * 1.7171717, status, degraded=k % 5 == 1)  # 30 degraded
        i += 1
    for status, count, latency_ms, degraded in (
        (503, 12, 900.0, True),  # slow, and flagged degraded: still not an answer
        (500, 3, 20.0, False),
        (404, 4, 15.0, False),
        (302, 3, 12.0, False),
        (STATUS_TRANSPORT_ERROR, 8, 5000.0, False),  # client timeouts
        (STATUS_CLIENT_DROPPED, 20, 0.0, False),
    ):
        for _ in range(count):
            add(i, latency_ms, status, degraded)
            i += 1
    ordered = sorted(answered_ms)
    expected = {
        "availability": 150 / 200,  # degraded answers count; drops and timeouts do not
        "error_rate": 50 / 200,
        "degraded_share": 30 / 150,  # over the 2xx answers only
        "p99_ms": ordered[math.ceil(0.99 * 150) - 1],  # nearest rank: the 149th of 150
    }
    return RequestLog.from_rows(1_700_000_000.0, rows), expected


LOG, EXPECTED = hand_built_log()


def test_the_log_tells_the_plausible_mistakes_apart() -> None:
    """Guards the test itself: every wrong definition gives another number here."""
    import numpy as np

    ok = LOG.ok
    p99 = EXPECTED["p99_ms"]
    assert float(np.percentile(LOG.latency_ms[ok], 99)) != p99  # interpolated
    assert sorted(LOG.latency_ms)[math.ceil(0.99 * len(LOG)) - 1] != p99  # over every row
    assert sorted(LOG.service_ms[ok])[148] != p99  # from the send, not the schedule
    assert round(p99, 2) != p99  # more digits than an HDR histogram keeps (3 significant)
    assert (LOG.degraded & ok).sum() / len(LOG) != EXPECTED["degraded_share"]  # over all
    assert LOG.degraded.sum() / ok.sum() != EXPECTED["degraded_share"]  # non-2xx flagged
    assert LOG.degraded.sum() / len(LOG) != EXPECTED["degraded_share"]
    assert (ok & ~LOG.degraded).mean() != EXPECTED["availability"]
    assert (LOG.status >= 500).mean() != EXPECTED["error_rate"]
    assert (~ok & (LOG.status != STATUS_CLIENT_DROPPED)).sum() / len(LOG) != EXPECTED["error_rate"]


# -- each front, measuring the same log ------------------------------------------------------


def from_slo() -> dict[str, float | None]:
    objectives = Objectives(availability=0.5, error_rate=0.5, degraded_share=0.5, p99_ms=10_000)
    verdict = evaluate(LOG, objectives)
    values = {r.name: r.value for r in verdict.results}
    assert verdict.facts["p99_ms"] == values["p99_ms"]
    return {name: values[name] for name in METRICS}


class FakeRun:
    """A load run as the guardrail sees it: url, clock and public snapshot."""

    url = "http://127.0.0.1:9/recommend"
    elapsed_s = 10.0  # every request ended in the last 10 s

    def snapshot(self) -> RequestLog:
        return LOG


def from_guardrail_source() -> dict[str, float | None]:
    measured = LoadRunSource(FakeRun()).measure(window_s=10.0)
    assert measured.requests == len(LOG)
    return {name: measured.value(name) for name in METRICS}


def from_guardrail_trips(wait_for: Any) -> dict[str, float | None]:
    """What a tripped guardrail records as the value of each condition."""
    conditions = {
        "availability": {"availability_below": 1.0},
        "error_rate": {"error_rate_above": 0.0},
        "degraded_share": {"degraded_share_above": 0.0},
        "p99_ms": {"p99_ms_above": 0.001},
    }
    values: dict[str, float | None] = {}
    for name, condition in conditions.items():
        guard = Guardrail(
            parse_conditions(condition),
            LoadRunSource(FakeRun()),
            on_abort=lambda record: None,
            poll_s=0.01,
            window_s=10.0,
        ).start()
        try:
            wait_for(lambda g=guard: g.trip is not None, 5.0, f"the {name} guardrail to trip")
        finally:
            guard.stop()
        assert guard.trip is not None
        values[name] = guard.trip.value
    return values


def from_ctk_probes(monkeypatch: pytest.MonkeyPatch) -> dict[str, float | None]:
    """The Chaos Toolkit probe functions themselves, on this log instead of new traffic."""

    def sample(configuration: Any, rate_rps: float, duration_s: float) -> TrafficSample:
        return TrafficSample(lambda: LOG)

    monkeypatch.setattr(ctk_probes, "_sample", sample)
    probes: dict[str, Callable[[], float]] = {
        "availability": ctk_probes.availability,
        "error_rate": ctk_probes.error_rate,
        "degraded_share": ctk_probes.degraded_share,
        "p99_ms": ctk_probes.latency_p99_ms,
    }
    return {name: probe() for name, probe in probes.items()}


def from_steady_state(monkeypatch: pytest.MonkeyPatch) -> dict[str, float | None]:
    """The probes of the ``steady_state`` fixture's hypothesis, on this log."""
    taken: list[dict[str, Any]] = []

    def open_loop(url: str, **kwargs: Any) -> TrafficSample:
        taken.append({"url": url, **kwargs})
        return TrafficSample(lambda: LOG, reuse_s=kwargs["reuse_s"])

    monkeypatch.setattr(TrafficSample, "open_loop", staticmethod(open_loop))
    fixture = SteadyStateFixture(request=None, drill=None)  # type: ignore[arg-type]
    hypothesis = fixture.hypothesis(
        "agrees",
        url="http://127.0.0.1:9/recommend",
        availability=between(0, 1),
        error_rate=between(0, 1),
        p99_ms=between(0, 1e9),
        degraded_share=between(0, 1),
    )
    outcome = hypothesis.measure()
    assert [t["url"] for t in taken] == ["http://127.0.0.1:9/recommend"]
    return {p.name: p.value for p in outcome.probes}


def from_report() -> dict[str, float | None]:
    """The drill report's headline numbers, and its chart over one bucket."""
    metrics = run_metrics(LOG, [])
    whole = timeline(LOG, bucket_s=60.0)
    assert len(whole.t_s) == 1
    assert float(whole.p99_ms[0]) == metrics["p99_ms"]
    assert float(whole.error_rate[0]) == metrics["error_rate"]
    assert float(whole.degraded_rate[0]) == metrics["degraded_share"]
    return {name: metrics[name] for name in METRICS}


def test_every_front_reports_the_same_numbers(
    monkeypatch: pytest.MonkeyPatch, wait_for: Any
) -> None:
    fronts = {
        "slo": from_slo(),
        "guardrail source": from_guardrail_source(),
        "guardrail trip": from_guardrail_trips(wait_for),
        "ctk probes": from_ctk_probes(monkeypatch),
        "steady state": from_steady_state(monkeypatch),
        "report": from_report(),
    }
    for front, values in fronts.items():
        for name in METRICS:
            # exact: the same function on the same requests, not "close enough"
            assert values[name] == EXPECTED[name], (
                f"{front} measured {name}={values[name]!r}, expected {EXPECTED[name]!r}"
            )
