"""Guardrail logic with a scripted measurement source (no stack): conditions, hold times,
rollback on trip, the abort in the main thread, and argument checks."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from chaosrec.errors import ConfigError, GuardrailTripped
from chaosrec.faults.guardrail import (
    GatewayMetricsSource,
    Guardrail,
    LoadRunSource,
    Measurement,
    StopCondition,
    guardrail_for,
    parse_conditions,
)
from chaosrec.slo.log import RequestLog
from chaosrec.slo.measures import Measures


class ScriptedSource:
    """A measurement source whose current reading the test sets."""

    def __init__(self) -> None:
        self.now = Measures(requests=100, answered=100)

    def measure(self, window_s: float) -> Measures:
        return self.now

    def describe(self) -> str:
        return "scripted"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"error_rate_above": 0.05}, [StopCondition("error_rate", "above", 0.05)]),
        (
            {"availability_below": 0.9, "for_s": 2},
            [StopCondition("availability", "below", 0.9, 2.0)],
        ),
        (
            [{"p99_ms_above": 500}, {"degraded_share_above": 0.5, "for_s": 1}],
            [
                StopCondition("p99_ms", "above", 500.0),
                StopCondition("degraded_share", "above", 0.5, 1.0),
            ],
        ),
    ],
    ids=["error-rate", "availability-held", "list"],
)
def test_conditions_parse(given: Any, expected: list[StopCondition]) -> None:
    assert list(parse_conditions(given)) == expected


@pytest.mark.parametrize(
    ("given", "match"),
    [
        ({}, "no stop condition"),
        ({"error_rate_abov": 0.1}, "error_rate_abov"),
        ({"error_rate_above": 2}, "2"),
        ({"availability_below": -0.1}, ">= 0"),
        ({"p99_ms_above": 0}, "> 0"),
        ({"error_rate_above": 0.1, "for_s": -1}, "for_s"),
        ({"error_rate_above": True}, "must be a number"),
        (["error_rate_above"], "must be a mapping"),
    ],
    ids=[
        "empty",
        "typo",
        "fraction>1",
        "negative",
        "zero-ms",
        "negative-hold",
        "bool",
        "not-mapping",
    ],
)
def test_bad_conditions_fail(given: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_conditions(given)


def test_measurement_values() -> None:
    # the guardrail's Measurement is the shared summary (see tests/unit/test_measures.py)
    assert Measurement is Measures
    m = Measures(requests=200, answered=180, degraded=90)
    assert m.value("error_rate") == pytest.approx(0.1)
    assert m.value("availability") == pytest.approx(0.9)
    assert m.value("degraded_share") == pytest.approx(0.5)
    assert Measures(requests=0, answered=0).value("error_rate") is None


def test_trips_only_after_the_condition_held_for_its_duration(wait_for: Any) -> None:
    source = ScriptedSource()
    rolled_back: list[float] = []
    guard = Guardrail(
        parse_conditions({"error_rate_above": 0.1, "for_s": 0.3}),
        source,
        on_trip=[lambda: rolled_back.append(time.monotonic())],
        on_abort=lambda record: None,
        poll_s=0.02,
    ).start()
    try:
        wait_for(lambda: guard.polls >= 5, 5.0, "the guardrail condition")
        assert guard.trip is None  # healthy: no trip
        source.now = Measures(requests=100, answered=50)
        became_bad = time.monotonic()
        wait_for(lambda: guard.trip is not None, 5.0, "the guardrail condition")
        assert guard.trip is not None
        assert guard.trip.tripped_at - guard.trip.first_true_at >= 0.3
        assert guard.trip.first_true_at >= became_bad - 0.05
        assert rolled_back and rolled_back[0] <= (guard.trip.rolled_back_at or 0)
        assert guard.trip.value == pytest.approx(0.5)
        assert "error_rate 0.5 above 0.1" in guard.trip.message()
    finally:
        guard.stop()


def test_a_condition_that_stops_holding_resets_its_clock(wait_for: Any) -> None:
    source = ScriptedSource()
    guard = Guardrail(
        parse_conditions({"availability_below": 0.9, "for_s": 0.5}),
        source,
        on_abort=lambda record: None,
        poll_s=0.02,
    ).start()
    try:
        for _ in range(4):  # bad for ~0.2 s, then good again: never 0.5 s in a row
            source.now = Measures(requests=100, answered=50)
            polls = guard.polls
            wait_for(lambda p=polls: guard.polls >= p + 8, 5.0, "the guardrail condition")
            source.now = Measures(requests=100, answered=100)
            polls = guard.polls
            wait_for(lambda p=polls: guard.polls >= p + 2, 5.0, "the guardrail condition")
        assert guard.trip is None
    finally:
        guard.stop()


def test_too_few_requests_never_trip(wait_for: Any) -> None:
    source = ScriptedSource()
    source.now = Measures(requests=3, answered=0)
    guard = Guardrail(
        parse_conditions({"error_rate_above": 0.1}),
        source,
        on_abort=lambda r: None,
        poll_s=0.01,
        min_requests=5,
    ).start()
    try:
        wait_for(lambda: guard.polls >= 20, 5.0, "the guardrail condition")
        assert guard.trip is None
    finally:
        guard.stop()


def test_every_rollback_runs_even_when_one_fails(wait_for: Any) -> None:
    source = ScriptedSource()
    source.now = Measures(requests=100, answered=0)
    ran: list[str] = []

    def broken() -> None:
        ran.append("broken")
        raise RuntimeError("proxy API down")

    guard = Guardrail(
        parse_conditions({"error_rate_above": 0.5}),
        source,
        on_trip=[broken, lambda: ran.append("second")],
        on_abort=lambda r: None,
        poll_s=0.01,
    ).start()
    wait_for(
        lambda: guard.trip is not None and guard.trip.rolled_back_at is not None,
        5.0,
        "the guardrail condition",
    )
    guard.stop()
    assert ran == ["broken", "second"]
    assert guard.trip is not None
    assert "proxy API down" in guard.trip.message()


def test_a_trip_interrupts_the_main_thread_and_raises() -> None:
    assert threading.current_thread() is threading.main_thread()
    source = ScriptedSource()
    rolled_back = threading.Event()
    guard = Guardrail(
        parse_conditions({"error_rate_above": 0.5}),
        source,
        on_trip=[rolled_back.set],
        poll_s=0.02,
    )
    started = time.monotonic()
    with pytest.raises(GuardrailTripped, match="guardrail tripped: error_rate") as excinfo, guard:
        source.now = Measures(requests=100, answered=20)
        time.sleep(30)  # a drill's long wait: the trip must cut it short
    assert time.monotonic() - started < 25
    assert rolled_back.is_set()
    assert isinstance(excinfo.value, AssertionError)
    assert excinfo.value.verdict["condition"] == "error_rate_above=0.5"


def test_a_block_that_ends_after_a_trip_still_raises(wait_for: Any) -> None:
    source = ScriptedSource()
    source.now = Measures(requests=100, answered=0)
    guard = Guardrail(
        parse_conditions({"error_rate_above": 0.5}), source, on_abort=lambda r: None, poll_s=0.01
    )
    with pytest.raises(GuardrailTripped), guard:
        wait_for(lambda: guard.trip is not None, 5.0, "the guardrail condition")


class _FakeChaos:
    """Stands in for the injector: records rollback_all calls, keeps listeners."""

    def __init__(self) -> None:
        self.listeners: list[Any] = []
        self.rollbacks = 0

    def rollback_all(self) -> None:
        self.rollbacks += 1


def test_guardrail_for_checks_its_source_and_refuses_faults_after_a_trip(wait_for: Any) -> None:
    chaos = _FakeChaos()
    with pytest.raises(ConfigError, match="source="):
        guardrail_for(chaos, 42, {"error_rate_above": 0.1})
    with pytest.raises(ConfigError, match="http://"):
        guardrail_for(chaos, "localhost:1", {"error_rate_above": 0.1})
    source = ScriptedSource()
    source.now = Measures(requests=100, answered=0)
    guard = guardrail_for(chaos, source, {"error_rate_above": 0.1}, poll_s=0.01)
    guard.on_abort = lambda r: None
    guard.start()
    wait_for(
        lambda: guard.trip is not None and guard.trip.rolled_back_at is not None,
        5.0,
        "the guardrail condition",
    )
    guard.stop()
    assert chaos.rollbacks == 1

    class Fault:
        label = "latency(all, ms=100)"

    with pytest.raises(GuardrailTripped, match=r"latency\(all, ms=100\) refused"):
        chaos.listeners[0]("injecting", Fault())


class FakeRun:
    """A running load as the guardrail sees it: url, clock and public snapshot."""

    url = "http://x/recommend"

    def __init__(self, rows: list[tuple[Any, ...]], elapsed_s: float) -> None:
        self.rows = rows
        self.elapsed_s = elapsed_s

    def snapshot(self) -> RequestLog:
        return RequestLog.from_rows(0.0, self.rows)


def test_load_run_source_reads_the_window_of_answers() -> None:
    # (scheduled, sent, done, status, region, replica, degraded, error)
    run = FakeRun(
        [
            (8.0, 8.0, 8.1, 200, "a", "a.r0", False, None),  # outside the window
            (9.6, 9.6, 9.7, 200, "a", "a.r0", False, None),
            (9.7, 9.7, 9.8, 503, None, None, False, "HTTP 503"),
            (9.8, 9.8, 9.9, 200, None, None, True, None),
        ],
        elapsed_s=10.0,
    )
    m = LoadRunSource(run).measure(window_s=0.5)
    assert (m.requests, m.errors, m.degraded) == (3, 1, 1)
    assert m.p99_ms == pytest.approx(100.0)
    assert m.value("degraded_share") == pytest.approx(0.5)


def test_load_run_source_p99_is_over_the_answers_only() -> None:
    """A slow failure (a 5 s client timeout) is an error, not a latency: the p99 is that
    of the 2xx answers, as an SLO's p99_ms and the probes measure it."""
    run = FakeRun(
        [(9.0 + i / 100, 9.0 + i / 100, 9.01 + i / 100, 200, "a", "a.r0", False, None)
         for i in range(50)]
        + [(4.5, 4.5, 9.5, 0, None, None, False, "TimeoutError")],
        elapsed_s=10.0,
    )  # fmt: skip
    m = LoadRunSource(run).measure(window_s=1.0)
    assert (m.requests, m.answered) == (51, 50)
    assert m.p99_ms == pytest.approx(10.0)


def test_guardrail_for_watches_a_running_load() -> None:
    guard = guardrail_for(_FakeChaos(), FakeRun([], 0.0), {"error_rate_above": 0.1})
    assert isinstance(guard.source, LoadRunSource)
    assert guard.describe() == "error_rate_above=0.1 on load run against http://x/recommend"


class ScriptedCounters(GatewayMetricsSource):
    """The gateway's counters as the test sets them (total, errors, degraded)."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9")
        self.now = (0, 0, 0)

    def counters(self) -> tuple[int, int, int]:
        return self.now


def test_gateway_counters_are_differenced_into_the_shared_measures() -> None:
    source = ScriptedCounters()
    source.now = (1000, 10, 5)
    assert source.measure(window_s=60).requests == 0  # the first sample is the baseline
    source.now = (1200, 30, 95)
    m = source.measure(window_s=60)
    assert (m.requests, m.answered, m.degraded) == (200, 180, 90)
    assert m.value("error_rate") == pytest.approx(0.1)
    assert m.value("degraded_share") == pytest.approx(0.5)
    assert m.value("p99_ms") is None  # counters carry no latencies


def test_gateway_counters_that_restart_begin_a_new_window() -> None:
    source = ScriptedCounters()
    source.now = (1000, 10, 5)
    source.measure(window_s=60)
    source.now = (40, 40, 0)  # the gateway restarted: counters from 0 again
    assert source.measure(window_s=60).requests == 0
    source.now = (140, 40, 0)
    m = source.measure(window_s=60)
    assert (m.requests, m.answered) == (100, 100)
