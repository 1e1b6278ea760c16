"""Traffic probes without traffic: samples taken by a stand-in, reuse rules, tolerances,
the steady-state hypothesis they build and the Chaos Toolkit probes' sample sharing."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from chaosrec.ctk import probes as ctk_probes
from chaosrec.errors import ConfigError
from chaosrec.slo.log import RequestLog
from chaosrec.slo.measures import Measures, measure
from chaosrec.steady_state.hypotheses import Tolerance, at_least, at_most, between
from chaosrec.steady_state.probes import (
    TrafficSample,
    probe_value,
    tolerance_for,
    traffic_hypothesis,
)


def log_of(statuses: list[int], latency_ms: float = 10.0) -> RequestLog:
    return RequestLog.from_rows(
        0.0,
        [
            (i / 100, i / 100, i / 100 + latency_ms / 1000, s, "r", "r.0", False, None)
            for i, s in enumerate(statuses)
        ],
    )


class Taker:
    """Stands in for the load generator: counts samples, returns the next log."""

    def __init__(self, *logs: RequestLog) -> None:
        self.logs = list(logs)
        self.calls = 0

    def __call__(self) -> RequestLog:
        self.calls += 1
        return self.logs[min(self.calls, len(self.logs)) - 1]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_sample_is_reused_for_reuse_s_after_it_was_taken() -> None:
    taker, clock = Taker(log_of([200] * 4), log_of([503] * 4)), Clock()
    sample = TrafficSample(taker, reuse_s=1.0, clock=clock)
    assert sample.value("availability") == 1.0
    clock.now += 1.0
    assert sample.value("availability") == 1.0  # still the first sample
    assert taker.calls == 1
    clock.now += 0.01
    assert sample.value("availability") == 0.0  # too old: a new sample
    assert sample.value("error_rate", fresh=True) == 1.0  # fresh: another one
    assert (taker.calls, sample.taken) == (3, 3)


def test_reuse_zero_takes_a_sample_per_probe_and_inf_until_asked() -> None:
    every = Taker(log_of([200]))
    sample = TrafficSample(every, reuse_s=0.0, clock=Clock())
    sample.log()
    sample.log()
    assert every.calls == 2  # the clock did not move, but 0 s of reuse means none
    kept = Taker(log_of([200]))
    forever = TrafficSample(kept, reuse_s=math.inf)
    for _ in range(3):
        forever.log()
    forever.log(fresh=True)
    assert kept.calls == 2


@pytest.mark.parametrize(
    ("reuse_s", "message"),
    [(-1, r"reuse_s=-1 must be >= 0"), (math.nan, r"reuse_s=nan must be a finite number")],
    ids=["negative", "nan"],
)
def test_bad_reuse_is_refused(reuse_s: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrafficSample(Taker(), reuse_s=reuse_s)


def test_probe_values_are_the_worst_when_the_sample_cannot_give_one() -> None:
    empty = measure(RequestLog.from_rows(0.0, []))
    assert probe_value(empty, "availability") == 0.0
    assert probe_value(empty, "error_rate") == 1.0
    assert probe_value(empty, "degraded_share") == 0.0
    nothing_answered = measure(log_of([503, 0, -1]))
    assert probe_value(nothing_answered, "p99_ms") == math.inf
    assert probe_value(nothing_answered, "p99_ms", unanswered_ms=1e9) == 1e9
    answered = Measures(requests=4, answered=2, degraded=1, p99_ms=12.5)
    assert [probe_value(answered, m) for m in ("availability", "degraded_share", "p99_ms")] == [
        0.5,
        0.5,
        12.5,
    ]


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        ("availability", 0.99, at_least(0.99)),
        ("recall_at_10", 0.1, at_least(0.1)),
        ("error_rate", 0.01, at_most(0.01)),
        ("p99_ms", 250, at_most(250)),
        ("degraded_share", 0.05, at_most(0.05)),
        ("p99_ms", between(1, 2), between(1, 2)),
        ("p99_ms", (1, 2), between(1, 2)),
        ("availability", {"min": 0.9}, at_least(0.9)),
    ],
    ids=["floor", "recall-floor", "ceiling", "ms-ceiling", "share-ceiling", "tolerance", "pair",
         "mapping"],
)  # fmt: skip
def test_tolerances(name: str, given: object, expected: Tolerance) -> None:
    assert tolerance_for(name, given) == expected


def test_a_bool_is_not_a_tolerance() -> None:
    with pytest.raises(ConfigError, match=r"tolerance for 'availability'=True"):
        tolerance_for("availability", True)


def test_the_first_probe_of_each_verification_takes_a_fresh_sample() -> None:
    healthy, broken = log_of([200] * 10), log_of([503] * 5 + [200] * 5, latency_ms=40.0)
    taker = Taker(healthy, broken)
    hypothesis = traffic_hypothesis(
        "serves",
        TrafficSample(taker, reuse_s=math.inf),
        availability=0.9,
        p99_ms=30,
        degraded_share=0.1,
    )
    assert [name for name, _, _ in hypothesis.probes] == [
        "availability",
        "p99_ms",
        "degraded_share",
    ]
    before = hypothesis.measure("before")
    assert before.ok and taker.calls == 1  # three probes, one sample
    after = hypothesis.measure("after")
    assert taker.calls == 2
    assert {p.name: p.value for p in after.probes} == {
        "availability": 0.5,
        "p99_ms": pytest.approx(40.0),
        "degraded_share": 0.0,
    }
    assert not after.ok


def test_a_hypothesis_takes_only_the_probes_given() -> None:
    hypothesis = traffic_hypothesis("p99", TrafficSample(Taker(log_of([200]))), p99_ms=at_most(5))
    assert [name for name, _, _ in hypothesis.probes] == ["p99_ms"]
    errors = traffic_hypothesis("errors", TrafficSample(Taker()), error_rate=0.1)
    assert [name for name, _, _ in errors.probes] == ["error_rate"]


# -- the Chaos Toolkit probes' shared sample --------------------------------------------------


class FakeTarget:
    recommend_url = "http://127.0.0.1:9/recommend"


class FakeSession:
    target = FakeTarget()


@pytest.fixture
def ctk_samples(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The ctk probes' samples, taken by a stand-in: which arguments each one got."""
    made: list[dict[str, Any]] = []
    session = FakeSession()

    def open_loop(url: str, **kwargs: Any) -> TrafficSample:
        made.append({"url": url, **kwargs})
        return TrafficSample(Taker(log_of([200] * 9 + [503])), reuse_s=kwargs["reuse_s"])

    monkeypatch.setattr(ctk_probes.context, "session", lambda configuration: session)
    monkeypatch.setattr(ctk_probes.context, "traffic_params", lambda target: "params")
    monkeypatch.setattr(TrafficSample, "open_loop", staticmethod(open_loop))
    monkeypatch.setattr(ctk_probes, "_last", None)
    return made


def test_ctk_probes_back_to_back_share_one_sample(ctk_samples: list[dict[str, Any]]) -> None:
    probes: list[Callable[..., float]] = [
        ctk_probes.availability,
        ctk_probes.error_rate,
        ctk_probes.latency_p99_ms,
        ctk_probes.degraded_share,
    ]
    values = [probe(rate_rps=50, duration_s=1) for probe in probes]
    assert values == [0.9, pytest.approx(0.1), pytest.approx(10.0), 0.0]
    assert ctk_samples == [
        {
            "url": FakeTarget.recommend_url,
            "rate_rps": 50,
            "duration_s": 1,
            "params": "params",
            "reuse_s": 1.0,
        }
    ]
    ctk_probes.availability(rate_rps=60, duration_s=1)  # other arguments: another sample
    assert len(ctk_samples) == 2
