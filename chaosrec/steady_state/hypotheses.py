"""Steady-state hypotheses in the Chaos Toolkit sense: probes, each with a tolerance.

A :class:`SteadyStateHypothesis` holds named probes (functions returning a number)
and a tolerance for each. :meth:`SteadyStateHypothesis.verify` runs every probe
and raises :class:`~chaosrec.errors.SteadyStateDeviated` listing each probe, its
value and its tolerance when any is out of bounds. Check it before a fault (is the
system healthy enough to drill?) and after (did it come back?)::

    hypothesis = SteadyStateHypothesis("recommendations are good and fast")
    hypothesis.add("recall@10", probe_recall, at_least(0.08))
    hypothesis.verify()
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from chaosrec.errors import ConfigError, SteadyStateDeviated

__all__ = [
    "HypothesisResult",
    "ProbeResult",
    "SteadyStateHypothesis",
    "Tolerance",
    "at_least",
    "at_most",
    "between",
]


@dataclass(frozen=True)
class Tolerance:
    """An inclusive range ``[low, high]`` a probe's value must fall in."""

    low: float = -math.inf
    high: float = math.inf

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ConfigError(f"tolerance low={self.low} > high={self.high}; swap them")

    def contains(self, value: float) -> bool:
        return not math.isnan(value) and self.low <= value <= self.high

    def describe(self) -> str:
        if math.isinf(self.low):
            return f"<= {self.high:g}"
        if math.isinf(self.high):
            return f">= {self.low:g}"
        return f"in [{self.low:g}, {self.high:g}]"

    @classmethod
    def coerce(cls, value: object, name: str) -> Tolerance:
        """A Tolerance, a ``(low, high)`` pair, or a ``{"min": .., "max": ..}`` mapping."""
        if isinstance(value, Tolerance):
            return value
        if isinstance(value, tuple | list) and len(value) == 2:
            return cls(float(value[0]), float(value[1]))
        if isinstance(value, dict) and set(value) <= {"min", "max"} and value:
            return cls(float(value.get("min", -math.inf)), float(value.get("max", math.inf)))
        raise ConfigError(
            f"tolerance for {name!r}={value!r} must be at_least(x), at_most(x), "
            "between(a, b), a (low, high) pair or {min:, max:}"
        )


def at_least(value: float) -> Tolerance:
    return Tolerance(low=float(value))


def at_most(value: float) -> Tolerance:
    return Tolerance(high=float(value))


def between(low: float, high: float) -> Tolerance:
    return Tolerance(float(low), float(high))


@dataclass(frozen=True)
class ProbeResult:
    name: str
    value: float
    tolerance: Tolerance
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.tolerance.contains(self.value)

    def describe(self) -> str:
        state = "ok" if self.ok else "DEVIATED"
        shown = f"raised {self.error}" if self.error else f"{self.value:.4g}"
        return f"{self.name}: {shown} (tolerance {self.tolerance.describe()}) {state}"


@dataclass(frozen=True)
class HypothesisResult:
    title: str
    probes: tuple[ProbeResult, ...]
    when: str = ""

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.probes)

    def describe(self) -> str:
        head = f"steady state {self.title!r}" + (f" ({self.when})" if self.when else "")
        return head + ": " + "; ".join(p.describe() for p in self.probes)


@dataclass
class SteadyStateHypothesis:
    """Named probes with tolerances; verify them any time."""

    title: str
    probes: list[tuple[str, Callable[[], float], Tolerance]] = field(default_factory=list)
    history: list[HypothesisResult] = field(default_factory=list)

    def add(
        self, name: str, probe: Callable[[], float], tolerance: object
    ) -> SteadyStateHypothesis:
        if not callable(probe):
            raise ConfigError(f"probe {name!r} must be a callable returning a number")
        if any(existing == name for existing, _, _ in self.probes):
            raise ConfigError(f"probe {name!r} is already in hypothesis {self.title!r}")
        self.probes.append((name, probe, Tolerance.coerce(tolerance, name)))
        return self

    def measure(self, when: str = "") -> HypothesisResult:
        """Run every probe; a probe that raises counts as deviated (its error is kept)."""
        if not self.probes:
            raise ConfigError(f"hypothesis {self.title!r} has no probes; add one with add()")
        results = []
        for name, probe, tolerance in self.probes:
            try:
                value = float(probe())
                results.append(ProbeResult(name, value, tolerance))
            except Exception as err:  # noqa: BLE001 - a failing probe is a deviation
                results.append(
                    ProbeResult(name, math.nan, tolerance, f"{type(err).__name__}: {err}")
                )
        outcome = HypothesisResult(self.title, tuple(results), when)
        self.history.append(outcome)
        return outcome

    def verify(self, when: str = "") -> HypothesisResult:
        """Measure and raise :class:`SteadyStateDeviated` if any probe is out of tolerance."""
        outcome = self.measure(when)
        if not outcome.ok:
            raise SteadyStateDeviated(outcome.describe(), outcome)
        return outcome
