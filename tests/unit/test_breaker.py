from __future__ import annotations

import pytest

from chaosrec.stack.gateway.breaker import BreakerState, CircuitBreaker


class FakeClock:
    """A settable clock for the breaker's cooldown (seconds)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_and_half_opens_after_cooldown() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=1.0, clock=clock)
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now = 0.99
    assert not breaker.allow()
    clock.now = 1.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.acquire()  # the single trial
    assert not breaker.acquire()  # no second trial while the first is in flight
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_failed_trial_reopens() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=0.5, clock=clock)
    breaker.record_failure()
    clock.now = 0.6
    assert breaker.acquire()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_count == 2


def test_success_resets_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=1.0, clock=FakeClock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"failure_threshold": 0}, "failure_threshold=0"), ({"cooldown_s": -1}, "cooldown_s=-1")],
    ids=["threshold", "cooldown"],
)
def test_invalid_arguments(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]


def test_abandoned_trial_frees_the_slot_without_a_verdict() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=0.5, clock=clock)
    breaker.record_failure()
    clock.now = 0.6
    assert breaker.acquire()
    breaker.abandon()  # the hedge that held the trial lost its race and was cancelled
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.acquire()
