"""Arrival schedules: when each request of an open-loop run is due.

A schedule is a rate curve ``rate(t)`` (requests per second over ``[0, duration_s)``);
request ``i`` is due at the time ``t_i`` where the curve's integral first reaches ``i``
(``count(t_i) = i``). So a constant rate gives ``i / rate`` exactly, a ramp spaces
requests ever closer, and a spike sends its extra requests inside its window. The
arrivals are deterministic (no random gaps): two runs of one schedule send at the same
offsets, which is what makes drills comparable; :class:`Replay
<chaosrec.load.traffic.Replay>` plays recorded arrivals instead.

Shapes (every rate in requests/s, every time in seconds from the run's start)::

    constant(200, duration_s=60)
    ramp(50, 500, duration_s=60)                     # linear from 50/s to 500/s
    steps([(100, 10), (300, 10), (100, 10)])         # (rate, seconds) in turn
    spike(100, peak_rps=500, at_s=20, for_s=5, duration_s=60)
    diurnal(200, amplitude=0.5, period_s=60, duration_s=120)   # 100/s .. 300/s
    diurnal(150, amplitude=0.3, period_s=60, duration_s=60) + spike(
        0, peak_rps=600, at_s=25, for_s=4, duration_s=60)

``a + b`` adds two curves (the seed's overload scenario: a spike on a diurnal
baseline). :meth:`Schedule.times` gives every due time as a numpy array; the load
generator plays it, and ``workers=N`` and Locust deal it out to their processes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from chaosrec.core.validation import check_non_negative, check_positive
from chaosrec.errors import ConfigError

__all__ = [
    "MAX_DURATION_S",
    "MAX_RATE_RPS",
    "Arrivals",
    "Schedule",
    "constant",
    "diurnal",
    "ramp",
    "spike",
    "steps",
]

#: the highest rate any shape may reach, requests/s (the open loop's validated range)
MAX_RATE_RPS = 100_000.0
#: the longest schedule, seconds
MAX_DURATION_S = 3600.0

_Array = npt.NDArray[np.float64]


class Schedule:
    """A rate curve over ``[0, duration_s)``; subclasses give :meth:`rate` and :meth:`count`.

    ``count(t)`` is the integral of the rate from 0 to ``t`` (requests due before ``t``);
    both are vectorised over numpy arrays.
    """

    duration_s: float

    def rate(self, t: _Array) -> _Array:
        """Requests per second at each time of ``t``."""
        raise NotImplementedError

    def count(self, t: _Array) -> _Array:
        """Requests due in ``[0, t)`` for each time of ``t`` (the rate's integral)."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    # -- derived -----------------------------------------------------------------------

    @property
    def n_requests(self) -> int:
        """How many requests the schedule sends (its integral, rounded; at least 1)."""
        return max(1, round(float(self.count(np.array([self.duration_s]))[0]) + 1e-9))

    @property
    def mean_rate_rps(self) -> float:
        return self.n_requests / self.duration_s

    @property
    def peak_rate_rps(self) -> float:
        grid = np.linspace(0.0, self.duration_s, 2001)
        return float(self.rate(grid).max())

    def times(self) -> _Array:
        """Every request's due time, ascending: ``t_i`` with ``count(t_i) = i``.

        Found by bisection on the (non-decreasing) integral, to well under a microsecond.
        """
        n = self.n_requests
        targets = np.arange(n, dtype=np.float64)
        # a coarse grid brackets each target, then bisection narrows the bracket
        grid = np.linspace(0.0, self.duration_s, min(100_001, 16 * n + 2))
        counts = self.count(grid)
        hi_index = np.searchsorted(counts, targets, side="right").clip(1, len(grid) - 1)
        lo = grid[hi_index - 1].copy()
        hi = grid[hi_index].copy()
        for _ in range(48):
            mid = 0.5 * (lo + hi)
            below = self.count(mid) <= targets
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
            if float((hi - lo).max(initial=0.0)) < 1e-9:
                break
        # request 0 is due at the start, and t_i is the earliest time count reaches i
        out: _Array = np.where(targets == 0, 0.0, hi)
        return np.minimum(np.maximum.accumulate(out), np.nextafter(self.duration_s, 0.0))

    def __add__(self, other: object) -> Schedule:
        if not isinstance(other, Schedule):
            return NotImplemented
        return _Sum((self, other))

    def __repr__(self) -> str:
        return self.describe()


@dataclass(frozen=True, repr=False)
class _Constant(Schedule):
    rate_rps: float
    duration_s: float

    def rate(self, t: _Array) -> _Array:
        return np.where((t >= 0) & (t < self.duration_s), self.rate_rps, 0.0)

    def count(self, t: _Array) -> _Array:
        return self.rate_rps * np.clip(t, 0.0, self.duration_s)

    def times(self) -> _Array:
        # exact: request i at i / rate (what the generator has always done)
        return np.arange(self.n_requests, dtype=np.float64) / self.rate_rps

    def describe(self) -> str:
        return f"constant({self.rate_rps:g}/s for {self.duration_s:g} s)"


@dataclass(frozen=True, repr=False)
class _Ramp(Schedule):
    from_rps: float
    to_rps: float
    duration_s: float

    def rate(self, t: _Array) -> _Array:
        frac = np.clip(t, 0.0, self.duration_s) / self.duration_s
        inside = (t >= 0) & (t < self.duration_s)
        return np.where(inside, self.from_rps + (self.to_rps - self.from_rps) * frac, 0.0)

    def count(self, t: _Array) -> _Array:
        tc = np.clip(t, 0.0, self.duration_s)
        slope = (self.to_rps - self.from_rps) / self.duration_s
        return self.from_rps * tc + 0.5 * slope * tc * tc

    def describe(self) -> str:
        return f"ramp({self.from_rps:g}/s to {self.to_rps:g}/s over {self.duration_s:g} s)"


@dataclass(frozen=True, repr=False)
class _Steps(Schedule):
    rates: tuple[float, ...]
    edges: tuple[float, ...]  # len(rates) + 1 boundaries, from 0 to duration_s
    duration_s: float

    def rate(self, t: _Array) -> _Array:
        index = np.searchsorted(np.asarray(self.edges), t, side="right") - 1
        rates = np.append(np.asarray(self.rates), 0.0)
        return np.where((t >= 0) & (index < len(self.rates)), rates[index.clip(0, None)], 0.0)

    def count(self, t: _Array) -> _Array:
        edges = np.asarray(self.edges)
        rates = np.asarray(self.rates)
        before = np.concatenate(([0.0], np.cumsum(rates * np.diff(edges))))
        tc = np.clip(t, 0.0, self.duration_s)
        index = (np.searchsorted(edges, tc, side="right") - 1).clip(0, len(rates) - 1)
        return np.asarray(before[index] + rates[index] * (tc - edges[index]), dtype=np.float64)

    def describe(self) -> str:
        spans = ", ".join(
            f"{r:g}/s for {b - a:g} s"
            for r, a, b in zip(self.rates, self.edges, self.edges[1:], strict=False)
        )
        return f"steps({spans})"


@dataclass(frozen=True, repr=False)
class _Spike(Schedule):
    base_rps: float
    peak_rps: float
    at_s: float
    for_s: float
    duration_s: float

    def rate(self, t: _Array) -> _Array:
        inside = (t >= 0) & (t < self.duration_s)
        spiking = (t >= self.at_s) & (t < self.at_s + self.for_s)
        return np.where(inside, np.where(spiking, self.peak_rps, self.base_rps), 0.0)

    def count(self, t: _Array) -> _Array:
        tc = np.clip(t, 0.0, self.duration_s)
        in_spike = np.clip(tc - self.at_s, 0.0, self.for_s)
        return self.base_rps * tc + (self.peak_rps - self.base_rps) * in_spike

    def describe(self) -> str:
        return (
            f"spike({self.base_rps:g}/s, {self.peak_rps:g}/s from {self.at_s:g} s for "
            f"{self.for_s:g} s, {self.duration_s:g} s in all)"
        )


@dataclass(frozen=True, repr=False)
class _Diurnal(Schedule):
    mean_rps: float
    amplitude: float
    period_s: float
    phase_s: float
    duration_s: float

    def rate(self, t: _Array) -> _Array:
        inside = (t >= 0) & (t < self.duration_s)
        w = 2 * math.pi / self.period_s
        wave = self.mean_rps * (1 - self.amplitude * np.cos(w * (t + self.phase_s)))
        return np.where(inside, wave, 0.0)

    def count(self, t: _Array) -> _Array:
        # integral of mean * (1 - a cos(w (t + p))) from 0 to t
        tc = np.clip(t, 0.0, self.duration_s)
        w = 2 * math.pi / self.period_s
        sines = np.sin(w * (tc + self.phase_s)) - math.sin(w * self.phase_s)
        return np.asarray(self.mean_rps * (tc - self.amplitude * sines / w), dtype=np.float64)

    def describe(self) -> str:
        return (
            f"diurnal({self.mean_rps:g}/s +- {100 * self.amplitude:g} %, period "
            f"{self.period_s:g} s, {self.duration_s:g} s)"
        )


@dataclass(frozen=True, repr=False)
class _Sum(Schedule):
    parts: tuple[Schedule, ...]

    @property
    def duration_s(self) -> float:  # type: ignore[override]
        return max(p.duration_s for p in self.parts)

    def rate(self, t: _Array) -> _Array:
        return np.asarray(sum(p.rate(t) for p in self.parts), dtype=np.float64)

    def count(self, t: _Array) -> _Array:
        return np.asarray(sum(p.count(t) for p in self.parts), dtype=np.float64)

    def describe(self) -> str:
        return " + ".join(p.describe() for p in self.parts)


class Arrivals(Schedule):
    """Given due times (seconds, ascending) instead of a curve: a recording, or one
    worker's share of a distributed schedule. ``duration_s`` defaults to just after the
    last arrival."""

    def __init__(self, times: npt.ArrayLike, duration_s: float | None = None) -> None:
        arr = np.asarray(times, dtype=np.float64)
        if arr.ndim != 1 or not arr.size:
            raise ConfigError("arrivals need at least one due time")
        if not np.isfinite(arr).all() or (arr < 0).any() or (np.diff(arr) < 0).any():
            raise ConfigError("arrival times must be finite, >= 0 and ascending")
        self._times = arr
        last = float(arr[-1])
        self.duration_s = max(last + 1e-3, 1e-3) if duration_s is None else max(duration_s, last)

    @property
    def n_requests(self) -> int:
        return int(self._times.shape[0])

    def times(self) -> _Array:
        return self._times.copy()

    def count(self, t: _Array) -> _Array:
        return np.searchsorted(self._times, t, side="left").astype(np.float64)

    def rate(self, t: _Array) -> _Array:
        """Arrivals per second over the surrounding second (arrivals have no curve)."""
        return self.count(t + 0.5) - self.count(t - 0.5)

    def describe(self) -> str:
        return f"arrivals({self.n_requests} requests over {self.duration_s:g} s)"


# -- the shapes (every argument checked here, named as the caller wrote it) --------------


def _rate(name: str, value: object, *, zero_ok: bool = False) -> float:
    if zero_ok:
        return check_non_negative(name, value, maximum=MAX_RATE_RPS)
    return check_positive(name, value, maximum=MAX_RATE_RPS)


def _duration(name: str, value: object) -> float:
    return check_positive(name, value, maximum=MAX_DURATION_S)


def constant(rate_rps: float, *, duration_s: float) -> Schedule:
    """``rate_rps`` requests/s for ``duration_s`` seconds; request ``i`` at ``i / rate_rps``."""
    return _Constant(_rate("rate_rps", rate_rps), _duration("duration_s", duration_s))


def ramp(from_rps: float, to_rps: float, *, duration_s: float) -> Schedule:
    """A rate rising (or falling) linearly from ``from_rps`` to ``to_rps``."""
    start = _rate("from_rps", from_rps, zero_ok=True)
    end = _rate("to_rps", to_rps, zero_ok=True)
    if start == 0 and end == 0:
        raise ConfigError("ramp(from_rps=0, to_rps=0) sends nothing; give a rate above 0")
    return _Ramp(start, end, _duration("duration_s", duration_s))


def steps(levels: Sequence[tuple[float, float]]) -> Schedule:
    """Rates held in turn: ``[(rate_rps, seconds), ...]`` (a rate may be 0: a pause)."""
    if isinstance(levels, str | bytes) or not isinstance(levels, Sequence) or not levels:
        raise ConfigError(
            f"steps(levels={levels!r}) must be a non-empty list of (rate_rps, seconds) pairs"
        )
    rates: list[float] = []
    edges = [0.0]
    for k, level in enumerate(levels):
        if not isinstance(level, tuple | list) or len(level) != 2:
            raise ConfigError(f"steps: levels[{k}]={level!r} must be a (rate_rps, seconds) pair")
        rates.append(_rate(f"levels[{k}] rate_rps", level[0], zero_ok=True))
        edges.append(edges[-1] + _duration(f"levels[{k}] seconds", level[1]))
    if not any(rates):
        raise ConfigError("steps: every rate is 0, so nothing would be sent")
    total = _duration("the steps' total seconds", edges[-1])
    return _Steps(tuple(rates), tuple(edges), total)


def spike(
    base_rps: float, *, peak_rps: float, at_s: float, for_s: float, duration_s: float
) -> Schedule:
    """``base_rps``, jumping to ``peak_rps`` during ``[at_s, at_s + for_s)``."""
    base = _rate("base_rps", base_rps, zero_ok=True)
    peak = _rate("peak_rps", peak_rps)
    duration = _duration("duration_s", duration_s)
    start = check_non_negative("at_s", at_s)
    length = check_positive("for_s", for_s)
    if start + length > duration:
        raise ConfigError(
            f"spike at_s={at_s!r} + for_s={for_s!r} ends after duration_s={duration_s!r}; "
            "the spike must fit in the run"
        )
    return _Spike(base, peak, start, length, duration)


def diurnal(
    mean_rps: float,
    *,
    amplitude: float = 0.5,
    period_s: float,
    duration_s: float,
    phase_s: float = 0.0,
) -> Schedule:
    """A day compressed to ``period_s``: ``mean_rps * (1 - amplitude * cos(2 pi (t +
    phase_s) / period_s))``, so it starts at its trough (``mean * (1 - amplitude)``) and
    peaks half a period later. ``amplitude`` is in [0, 1]."""
    mean = _rate("mean_rps", mean_rps)
    amp = check_non_negative("amplitude", amplitude, maximum=1.0)
    if mean * (1 + amp) > MAX_RATE_RPS:
        raise ConfigError(
            f"diurnal peaks at mean_rps x (1 + amplitude) = {mean * (1 + amp):g}/s, above "
            f"the maximum {MAX_RATE_RPS:g}"
        )
    period = check_positive("period_s", period_s, maximum=30 * 86400)
    phase = check_non_negative("phase_s", phase_s)
    return _Diurnal(mean, amp, period, phase, _duration("duration_s", duration_s))
