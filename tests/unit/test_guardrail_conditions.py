"""Guardrail logic with a scripted measurement source (no stack): conditions, hold times,
rollback on trip, the abort in the main thread, and argument checks."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import pytest

from chaosrec.errors import ConfigError, GuardrailTripped
from chaosrec.faults.guardrail import (
    Guardrail,
    LoadRunSource,
    Measurement,
    StopCondition,
    guardrail_for,
    parse_conditions,
)


class ScriptedSource:
    """A measurement source whose current reading the test sets."""

    def __init__(self) -> None:
        self.now = Measurement(100, 0, 0)

    def measure(self, window_s: float) -> Measurement:
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
    m = Measurement(requests=200, errors=20, degraded=90)
    assert m.value("error_rate") == pytest.approx(0.1)
    assert m.value("availability") == pytest.approx(0.9)
    assert m.value("degraded_share") == pytest.approx(0.5)
    assert Measurement(0, 0, 0).value("error_rate") is None


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
        source.now = Measurement(100, 50, 0)
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
            source.now = Measurement(100, 50, 0)
            polls = guard.polls
            wait_for(lambda p=polls: guard.polls >= p + 8, 5.0, "the guardrail condition")
            source.now = Measurement(100, 0, 0)
            polls = guard.polls
            wait_for(lambda p=polls: guard.polls >= p + 2, 5.0, "the guardrail condition")
        assert guard.trip is None
    finally:
        guard.stop()


def test_too_few_requests_never_trip(wait_for: Any) -> None:
    source = ScriptedSource()
    source.now = Measurement(requests=3, errors=3, degraded=0)
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
    source.now = Measurement(100, 100, 0)
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
        source.now = Measurement(100, 80, 0)
        time.sleep(30)  # a drill's long wait: the trip must cut it short
    assert time.monotonic() - started < 25
    assert rolled_back.is_set()
    assert isinstance(excinfo.value, AssertionError)
    assert excinfo.value.verdict["condition"] == "error_rate_above=0.5"


def test_a_block_that_ends_after_a_trip_still_raises(wait_for: Any) -> None:
    source = ScriptedSource()
    source.now = Measurement(100, 100, 0)
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
    source.now = Measurement(100, 100, 0)
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


def test_load_run_source_reads_the_window_of_answers() -> None:
    class Run:
        url = "http://x/recommend"
        elapsed_s = 10.0
        # (scheduled, sent, done, status, region, replica, degraded, error)
        _rows: ClassVar[list[tuple[Any, ...]]] = [
            (8.0, 8.0, 8.1, 200, "a", "a.r0", False, None),  # outside the window
            (9.6, 9.6, 9.7, 200, "a", "a.r0", False, None),
            (9.7, 9.7, 9.8, 503, None, None, False, "HTTP 503"),
            (9.8, 9.8, 9.9, 200, None, None, True, None),
        ]

    m = LoadRunSource(Run()).measure(window_s=0.5)
    assert (m.requests, m.errors, m.degraded) == (3, 1, 1)
    assert m.p99_ms == pytest.approx(100.0)
