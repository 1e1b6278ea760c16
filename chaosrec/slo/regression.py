"""Regression detection: is a drill's figure worse than its own recent history allows?

A drill that still passes its SLO can have quietly got worse: it recovered in 0.4 s last
month and in 1.7 s today, both under a 2 s objective. :class:`RegressionRule` compares
each figure of a run with the same figure over the drill's last runs (same drill, same
topology, same target, same faults: the history store selects them) and flags it
**regressed** when it is worse than those runs by more than their own run-to-run noise:

* **centre and noise**: the median of the last ``runs`` values (at least ``min_runs``,
  else no judgement) and their spread, the median absolute deviation scaled by 1.4826
  (so it estimates a standard deviation for normal noise, and a few wild runs move
  neither). Both are robust: one slow run in the history does not hide the next one;
* **margin**: the largest of ``k`` spreads, the figure's ``floor`` (twice the smallest
  change that matters, or that its measurement can resolve: RTO is measured in 0.5 s
  windows) and ``relative`` times the median (a 15 ms p99 and a 400 ms p99 are not
  equally noisy). The floors matter most when the history is very steady (spread 0);
* **busy machine**: a run whose load generator sent its requests more than
  ``busy_lag_ms`` (5 ms) late at p99 ran on cores too busy to tell the service's noise
  from the machine's (with headroom the generator keeps within 1-3 ms at these rates):
  it is not judged, and the reports say so. It stays in the history of later runs: a
  busy machine makes figures worse, so it can only widen the baseline (leaving such
  runs out left too few runs to judge on 2 cores running the whole stack: a quarter of
  the drill runs of ``make drill`` are over 5 ms);
* **regressed** when the value is beyond ``median + margin`` in the figure's bad
  direction (higher for latency, RTO, MTTD and degraded share, lower for availability).
  A value that never recovered (``inf``) is beyond any finite threshold.

The defaults were chosen, and their false-alarm rate measured, on repeated runs of an
unchanged stack on a busy 2-core machine: see the README ("Drills compared over time")
and ``bench/bench_history.py``. :func:`false_alarms` replays a history through the rule
and counts how often it would have fired.

Example::

    rule = RegressionRule()
    found = rule.judge("rto_s", history=[0.0, 0.5, 0.0, 0.0, 0.5], value=1.5)
    found.describe()   # 'rto_s 1.50 s: median of the last 5 runs 0.00 s, regressed past 0.50 s'
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from chaosrec.core.validation import check_choice, check_non_negative, check_positive_int
from chaosrec.errors import ConfigError

__all__ = [
    "FIGURES",
    "MAD_TO_SIGMA",
    "Baseline",
    "Figure",
    "Regression",
    "RegressionRule",
    "false_alarms",
    "format_figure",
]

#: scales a median absolute deviation to a standard deviation (for normal noise)
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Figure:
    """One figure the rule judges: its unit, which way is worse, and the smallest change
    that can count (``floor``, in the unit, and ``relative``, a share of the median)."""

    name: str
    unit: str  # "s", "ms", or "" for a share
    higher_is_worse: bool
    floor: float
    relative: float = 0.0
    label: str = ""

    def __post_init__(self) -> None:
        check_non_negative(f"{self.name}.floor", self.floor)
        check_non_negative(f"{self.name}.relative", self.relative)


#: the figures of a drill that are compared with its history, in report order. The floors
#: were set on repeated runs of an unchanged stack on a busy 2-core machine (see the
#: README, "Drills compared over time"): twice the smallest change each figure can show
FIGURES: dict[str, Figure] = {
    # RTO is measured in 0.5 s windows: two windows, so one window is never a regression
    "rto_s": Figure("rto_s", "s", True, floor=1.0, relative=0.5, label="RTO"),
    "mttd_s": Figure("mttd_s", "s", True, floor=0.5, relative=0.5, label="MTTD"),
    "p99_ms": Figure("p99_ms", "ms", True, floor=40.0, relative=0.5, label="p99"),
    "p50_ms": Figure("p50_ms", "ms", True, floor=10.0, relative=0.5, label="p50"),
    # what the fault itself cost (fault phase minus baseline, chaosrec.slo.effects): a
    # slower machine slows both phases, so these move less with the machine's load than
    # the run's own percentiles do, and most with how fast the service routes around
    "p99_delta_ms": Figure("p99_delta_ms", "ms", True, floor=40.0, relative=0.5,
                           label="p99 added by the fault"),
    "p50_delta_ms": Figure("p50_delta_ms", "ms", True, floor=10.0, relative=0.5,
                           label="p50 added by the fault"),
    "availability": Figure("availability", "", False, floor=0.004, label="availability"),
    "degraded_share": Figure("degraded_share", "", True, floor=0.02, label="degraded share"),
}  # fmt: skip


def format_figure(name: str, value: float | None) -> str:
    """``value`` in the unit of figure ``name``: ``1.50 s``, ``14.2 ms``, ``0.9990``,
    ``never`` for an infinite time, ``-`` for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "never"
    unit = FIGURES[name].unit if name in FIGURES else ""
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:.4f}"


@dataclass(frozen=True)
class Baseline:
    """What a figure's history says is normal: the median, the spread (scaled MAD), the
    margin allowed, and the threshold past which a value is regressed."""

    median: float
    spread: float
    margin: float
    threshold: float
    runs: int


@dataclass(frozen=True)
class Regression:
    """A figure found worse than its history allows (see :class:`RegressionRule`)."""

    figure: str
    value: float
    median: float
    spread: float
    threshold: float
    runs: int

    def describe(self) -> str:
        """``rto_s 1.50 s: median of the last 5 runs 0.00 s, regressed past 0.50 s``."""
        return (
            f"{self.figure} {format_figure(self.figure, self.value)}: median of the last "
            f"{self.runs} runs {format_figure(self.figure, self.median)}, regressed past "
            f"{format_figure(self.figure, self.threshold)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Regression:
        return cls(
            figure=str(data["figure"]),
            value=float(data["value"]),
            median=float(data["median"]),
            spread=float(data["spread"]),
            threshold=float(data["threshold"]),
            runs=int(data["runs"]),
        )


def _usable(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(v)]


@dataclass(frozen=True)
class RegressionRule:
    """Median and MAD of the last ``runs`` runs (at least ``min_runs``); a value beyond
    ``k`` spreads, the figure's floor and its relative floor is regressed (see the
    module doc).

    :param runs: how many of the latest runs make the history (1-1000).
    :param min_runs: fewest earlier runs before a figure is judged at all (1-``runs``).
    :param k: spreads allowed, > 0.
    :param busy_lag_ms: a run whose load generator sent its requests later than this
        behind schedule (p99, ms) ran on a machine too busy to tell the service's noise
        from the machine's: it is not judged (it stays history). None: no limit.
    :param figures: the figures judged, by name (default :data:`FIGURES`).
    """

    runs: int = 10
    min_runs: int = 5
    k: float = 4.0
    busy_lag_ms: float | None = 5.0
    figures: Mapping[str, Figure] = field(default_factory=lambda: dict(FIGURES))

    def __post_init__(self) -> None:
        check_positive_int("runs", self.runs, maximum=1000)
        check_positive_int("min_runs", self.min_runs, maximum=self.runs)
        if check_non_negative("k", self.k) == 0:
            raise ConfigError(f"k={self.k!r} must be > 0 (spreads allowed above the median)")
        if self.busy_lag_ms is not None:
            check_non_negative("busy_lag_ms", self.busy_lag_ms)

    def busy(self, send_lag_p99_ms: float | None) -> bool:
        """True when a run's load generator lagged more than ``busy_lag_ms`` (a run
        without load is never busy)."""
        if self.busy_lag_ms is None or send_lag_p99_ms is None:
            return False
        return send_lag_p99_ms > self.busy_lag_ms

    def _figure(self, figure: str | Figure) -> Figure:
        if isinstance(figure, Figure):
            return figure
        check_choice("figure", figure, self.figures)
        return self.figures[figure]

    def baseline(self, figure: str | Figure, history: Sequence[float | None]) -> Baseline | None:
        """What ``history`` (the figure's earlier values, newest first; None and NaN
        skipped) says is normal, or None with fewer than ``min_runs`` values."""
        fig = self._figure(figure)
        values = _usable(history)[: self.runs]
        if len(values) < self.min_runs:
            return None
        median = statistics.median(values)
        if math.isinf(median):
            spread = math.inf
        else:
            spread = MAD_TO_SIGMA * statistics.median(abs(v - median) for v in values)
        margin = max(self.k * spread, fig.floor, fig.relative * abs(median))
        threshold = median + margin if fig.higher_is_worse else median - margin
        return Baseline(median, spread, margin, threshold, len(values))

    def judge(
        self, figure: str | Figure, history: Sequence[float | None], value: float | None
    ) -> Regression | None:
        """A :class:`Regression` when ``value`` is worse than ``history`` (newest first)
        allows, else None (also when there is no value or too little history)."""
        fig = self._figure(figure)
        if value is None or math.isnan(value):
            return None
        base = self.baseline(fig, history)
        if base is None or math.isinf(base.threshold) or math.isnan(base.threshold):
            return None
        worse = value > base.threshold if fig.higher_is_worse else value < base.threshold
        if not worse:
            return None
        return Regression(
            fig.name, float(value), base.median, base.spread, base.threshold, base.runs
        )

    def judge_all(
        self, history: Mapping[str, Sequence[float | None]], values: Mapping[str, float | None]
    ) -> list[Regression]:
        """Every figure of ``values`` judged against its ``history``, in figure order."""
        found = []
        for name in self.figures:
            if name in values:
                regression = self.judge(name, history.get(name, ()), values[name])
                if regression is not None:
                    found.append(regression)
        return found


def false_alarms(
    series: Iterable[Sequence[float | None]], figure: str, rule: RegressionRule | None = None
) -> tuple[int, int]:
    """Replay ``series`` (each one drill's values of ``figure``, oldest run first) through
    ``rule``: each run judged against the runs before it. Returns ``(flags, judged)``; on
    runs of an unchanged system every flag is a false alarm."""
    rule = rule or RegressionRule()
    flags = judged = 0
    for values in series:
        values = list(values)
        for i, value in enumerate(values):
            history = values[max(0, i - rule.runs) : i][::-1]
            if value is None or rule.baseline(figure, history) is None:
                continue
            judged += 1
            if rule.judge(figure, history, value) is not None:
                flags += 1
    return flags, judged
