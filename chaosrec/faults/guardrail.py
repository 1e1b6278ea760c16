"""Guardrails: stop conditions that abort a drill and roll every fault back at once.

Like AWS FIS stop conditions: a background watcher polls live measurements (the
gateway's Prometheus counters, or a running load's request log) every ``poll_s``
and, as soon as one condition has held for its ``for_s`` seconds, it

1. runs every ``on_trip`` callback (the injector's ``rollback_all``: all faults,
   newest first, at once) from the watcher thread, so the faults come off without
   waiting for the drill's own code;
2. records why (:attr:`Guardrail.trip`: condition, measured value, times);
3. aborts the drill: in pytest, the thread that entered the guardrail gets
   :class:`~chaosrec.errors.GuardrailTripped` (a signal interrupts its sleep, as
   chaoslib does for ``chaos run``); the Chaos Toolkit control interrupts the run.

Example::

    with load.run(rate=150, duration=8) as run:
        with chaos.guardrail(run, error_rate_above=0.2, for_s=0.5):
            with chaos.gpu_loss("region-a.r0"):
                run.wait(5)

Conditions (each with ``for_s`` >= 0, how long it must hold, and measured over the
requests that ended, answered or not, in the last ``window_s`` seconds), with the
definitions of :mod:`chaosrec.slo.measures`, so a guardrail, a probe and an SLO
report the same number for the same requests:

* ``error_rate_above=X``   share of requests not answered 2xx (5xx, transport errors and
  client drops count; degraded answers are not errors)
* ``availability_below=Z`` share of requests answered 2xx (degraded included)
* ``degraded_share_above=X`` share of 2xx answers that were degraded fallbacks
* ``p99_ms_above=MS``      nearest-rank 99th percentile latency of the 2xx answers, from
  each request's scheduled send time (a load run only: the gateway's counters carry
  no latencies)
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from chaosrec.core.validation import check_choice, check_non_negative, check_positive
from chaosrec.errors import ConfigError, GuardrailTripped
from chaosrec.faults.guardrail_sources import (
    GatewayMetricsSource,
    LoadRunSource,
    MeasurementSource,
    RunningLoad,
)
from chaosrec.slo.measures import Measures

__all__ = [
    "CONDITIONS",
    "GatewayMetricsSource",
    "Guardrail",
    "LoadRunSource",
    "Measurement",
    "MeasurementSource",
    "RunningLoad",
    "StopCondition",
    "TripRecord",
    "guardrail_for",
    "parse_conditions",
]

#: condition keyword -> (metric, direction)
CONDITIONS: dict[str, tuple[str, str]] = {
    "error_rate_above": ("error_rate", "above"),
    "availability_below": ("availability", "below"),
    "degraded_share_above": ("degraded_share", "above"),
    "p99_ms_above": ("p99_ms", "above"),
}
_FRACTIONS = {"error_rate", "availability", "degraded_share"}


#: what a source saw over its last window: the shared summary of
#: :mod:`chaosrec.slo.measures` (requests, 2xx answers, degraded answers, percentiles),
#: so a condition's value is the one an SLO or a probe computes for the same requests
Measurement = Measures


@dataclass(frozen=True)
class StopCondition:
    """``metric`` (error_rate, availability, degraded_share, p99_ms) ``above``/``below``
    ``threshold`` for at least ``for_s`` seconds."""

    metric: str
    direction: str
    threshold: float
    for_s: float = 0.0

    def __post_init__(self) -> None:
        check_choice("metric", self.metric, {m for m, _ in CONDITIONS.values()})
        check_choice("direction", self.direction, ("above", "below"))
        if self.metric in _FRACTIONS:
            check_non_negative(self.name, self.threshold, maximum=1.0)
        else:
            check_positive(self.name, self.threshold)
        check_non_negative("for_s", self.for_s, maximum=3600)

    @property
    def name(self) -> str:
        return f"{self.metric}_{self.direction}"

    def holds(self, value: float) -> bool:
        return value > self.threshold if self.direction == "above" else value < self.threshold

    def describe(self) -> str:
        held = f" for {self.for_s:g} s" if self.for_s else ""
        return f"{self.name}={self.threshold:g}{held}"


def parse_conditions(
    conditions: Mapping[str, object] | list[Mapping[str, object]], source: str = "guardrail"
) -> tuple[StopCondition, ...]:
    """Conditions from keywords (``{"error_rate_above": 0.05, "for_s": 2}``) or a list of
    such mappings, each with its own ``for_s``. Unknown keys fail with the allowed ones."""
    items = [conditions] if isinstance(conditions, Mapping) else list(conditions)
    parsed: list[StopCondition] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise ConfigError(f"{source}: a condition must be a mapping, got {item!r}")
        for_s = item.get("for_s", 0.0)
        unknown = set(item) - set(CONDITIONS) - {"for_s"}
        if unknown:
            raise ConfigError(
                f"{source}: unknown condition(s) {sorted(unknown)}; "
                f"use {sorted(CONDITIONS)} (and for_s)"
            )
        for key, value in item.items():
            if key == "for_s":
                continue
            metric, direction = CONDITIONS[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{source}: {key}={value!r} must be a number")
            if isinstance(for_s, bool) or not isinstance(for_s, int | float):
                raise ConfigError(f"{source}: for_s={for_s!r} must be a number of seconds")
            parsed.append(StopCondition(metric, direction, float(value), float(for_s)))
    if not parsed:
        raise ConfigError(f"{source}: no stop condition given; use one of {sorted(CONDITIONS)}")
    return tuple(parsed)


# -- the watcher ----------------------------------------------------------------------------


@dataclass
class TripRecord:
    """Why and when a guardrail tripped (``time.monotonic()`` times). ``first_true_at``: the
    first poll that saw the metric past its threshold; the condition is true ``for_s``
    later; ``latency_s``: from then to every fault reverted."""

    condition: StopCondition
    value: float
    first_true_at: float
    tripped_at: float
    rolled_back_at: float | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def latency_s(self) -> float | None:
        if self.rolled_back_at is None:
            return None
        return self.rolled_back_at - (self.first_true_at + self.condition.for_s)

    def message(self) -> str:
        cond = self.condition
        unit = " ms" if cond.metric == "p99_ms" else ""
        text = (
            f"guardrail tripped: {cond.metric} {self.value:.4g}{unit} {cond.direction} "
            f"{cond.threshold:g}{unit}"
            + (f" for {self.tripped_at - self.first_true_at:.2f} s" if cond.for_s else "")
            + f" ({cond.describe()}); every fault was rolled back"
        )
        if self.latency_s is not None:
            text += f" {self.latency_s * 1000:.0f} ms after the condition became true"
        if self.errors:
            text += "; rollback errors: " + "; ".join(self.errors)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "condition": self.condition.describe(),
            "value": self.value,
            "first_true_at": self.first_true_at,
            "tripped_at": self.tripped_at,
            "rolled_back_at": self.rolled_back_at,
            "latency_s": self.latency_s,
            "errors": list(self.errors),
            "message": self.message(),
        }


class Guardrail:
    """Watches ``source`` and trips on the first condition that holds long enough.

    :param conditions: the stop conditions (see :func:`parse_conditions`).
    :param source: where measurements come from (:class:`LoadRunSource`,
        :class:`GatewayMetricsSource` or your own :class:`MeasurementSource`).
    :param on_trip: called in order from the watcher thread when it trips (rollbacks
        first); an error in one is recorded and the others still run.
    :param on_abort: called after ``on_trip`` to abort the drill (e.g. interrupt a
        Chaos Toolkit run); by default, :meth:`__enter__` in the main thread arranges
        a :class:`GuardrailTripped` there.
    :param poll_s: seconds between measurements (default 0.1).
    :param window_s: the trailing window each measurement covers (default 0.5 s).
    :param min_requests: answers needed in the window before a fraction is trusted.
    """

    def __init__(
        self,
        conditions: tuple[StopCondition, ...] | list[StopCondition],
        source: MeasurementSource,
        *,
        on_trip: list[Callable[[], object]] | None = None,
        on_abort: Callable[[TripRecord], object] | None = None,
        poll_s: float = 0.1,
        window_s: float = 0.5,
        min_requests: int = 5,
    ) -> None:
        if not conditions:
            raise ConfigError(f"no stop condition given; use one of {sorted(CONDITIONS)}")
        self.conditions = tuple(conditions)
        self.source = source
        self.on_trip = list(on_trip or [])
        self.on_abort = on_abort
        self.poll_s = check_positive("poll_s", poll_s, maximum=60)
        self.window_s = check_positive("window_s", window_s, maximum=600)
        self.min_requests = min_requests
        self.trip: TripRecord | None = None
        self.last: Measures | None = None
        self.polls = 0
        self.source_errors = 0
        self._since: dict[StopCondition, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._armed_thread: int | None = None  # thread to interrupt on trip (signal)
        self._previous_handler: Any = None
        self._raised = False

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> Guardrail:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._watch, name="chaosrec-guardrail", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (idempotent; safe from the watcher thread itself)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def __enter__(self) -> Guardrail:
        if threading.current_thread() is threading.main_thread() and self.on_abort is None:
            self._previous_handler = signal.signal(signal.SIGUSR1, self._interrupted)
            self._armed_thread = threading.get_ident()
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        with self._lock:
            armed, self._armed_thread = self._armed_thread, None
        self.stop()
        if armed is not None:
            signal.signal(signal.SIGUSR1, self._previous_handler)
        if exc is None or isinstance(exc, GuardrailTripped):
            self.check()

    def check(self) -> None:
        """Raise :class:`GuardrailTripped` (once) if the guardrail has tripped."""
        if self.trip is not None and not self._raised:
            self._raised = True
            raise GuardrailTripped(self.trip.message(), self.trip.to_dict())

    @contextlib.contextmanager
    def watching(self) -> Iterator[Guardrail]:
        with self:
            yield self

    # -- the watcher ------------------------------------------------------------------

    def _interrupted(self, signum: int, frame: object) -> None:
        self.check()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                measurement = self.source.measure(self.window_s)
            except Exception:  # noqa: BLE001 - a failed poll is not a trip; try again
                self.source_errors += 1
                continue
            self.last = measurement
            self.polls += 1
            now = time.monotonic()
            for cond in self.conditions:
                value = measurement.value(cond.metric)
                enough = measurement.requests >= self.min_requests or cond.metric == "p99_ms"
                if value is None or not enough or not cond.holds(value):
                    self._since.pop(cond, None)
                    continue
                first = self._since.setdefault(cond, now)
                if now - first >= cond.for_s:
                    self._trip(cond, value, first, now)
                    return

    def _trip(self, cond: StopCondition, value: float, first: float, now: float) -> None:
        record = TripRecord(cond, value, first, now)
        self.trip = record
        for callback in self.on_trip:
            try:
                callback()
            except Exception as err:  # noqa: BLE001 - run every rollback, then report
                record.errors.append(f"{type(err).__name__}: {err}")
        record.rolled_back_at = time.monotonic()
        if self.on_abort is not None:
            self.on_abort(record)
            return
        with self._lock:
            if self._armed_thread is not None:
                # interrupts the drill's sleep in the main thread; its handler raises
                os.kill(os.getpid(), signal.SIGUSR1)

    def describe(self) -> str:
        return ", ".join(c.describe() for c in self.conditions) + f" on {self.source.describe()}"


def guardrail_for(
    chaos: Any,
    source: object,
    conditions: Mapping[str, object],
    *,
    poll_s: float = 0.1,
    window_s: float = 0.5,
    min_requests: int = 5,
) -> Guardrail:
    """A guardrail that rolls back every fault of ``chaos`` (a
    :class:`~chaosrec.faults.injector.Chaos`) when a condition holds, and refuses any
    fault injected after it tripped. ``source``: a running load run, a gateway URL or a
    :class:`MeasurementSource`. Checked before anything is watched."""
    parsed = parse_conditions(dict(conditions), "chaos.guardrail")
    watched: MeasurementSource
    if isinstance(source, str):
        if not source.startswith(("http://", "https://")):
            raise ConfigError(f"source={source!r}: use a load run or the gateway's http:// URL")
        watched = GatewayMetricsSource(source)
    elif hasattr(source, "measure") and hasattr(source, "describe"):
        watched = source
    elif isinstance(source, RunningLoad):
        watched = LoadRunSource(source)
    else:
        raise ConfigError(
            f"source={source!r}: use a running load run (load.run(...)), the gateway URL "
            "or a MeasurementSource"
        )
    guard = Guardrail(
        parsed,
        watched,
        on_trip=[chaos.rollback_all],
        poll_s=poll_s,
        window_s=window_s,
        min_requests=min_requests,
    )

    def refuse_after_trip(event: str, fault: Any) -> None:
        if event == "injecting" and guard.trip is not None:
            raise GuardrailTripped(
                f"{fault.label} refused: {guard.trip.message()}", guard.trip.to_dict()
            )

    chaos.listeners.insert(0, refuse_after_trip)  # before the recorders hear "injecting"
    return guard
