"""A per-replica circuit breaker (closed -> open -> half-open -> closed)."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(enum.IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures; after ``cooldown_s`` it lets
    one trial request through (half-open); that trial's outcome closes or re-opens it.

    ``clock`` is injectable for tests (seconds, monotonic).
    """

    def __init__(
        self,
        failure_threshold: int = 3,
        cooldown_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold={failure_threshold} must be >= 1")
        if cooldown_s < 0:
            raise ValueError(f"cooldown_s={cooldown_s} must be >= 0")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.opened_count = 0

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.cooldown_s:
            return BreakerState.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """May a request be sent now? In half-open, only one trial at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        return bool(state is BreakerState.HALF_OPEN and not self._trial_in_flight)

    def acquire(self) -> bool:
        """Like :meth:`allow`, but claims the half-open trial slot when it grants one."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            self._state = BreakerState.HALF_OPEN
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._trial_in_flight = False
        self._state = BreakerState.CLOSED

    def record_failure(self) -> None:
        self._trial_in_flight = False
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            self.trip()

    def abandon(self) -> None:
        """An attempt was cancelled (a hedge lost the race): no verdict, free the trial slot."""
        self._trial_in_flight = False

    def trip(self) -> None:
        """Open now (e.g. an active health check failed)."""
        if self._state is not BreakerState.OPEN:
            self.opened_count += 1
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._trial_in_flight = False

    def reset(self) -> None:
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._trial_in_flight = False
