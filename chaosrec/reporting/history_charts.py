"""Trend charts of the drill history (PNG), drawn with matplotlib's Agg backend: the
resilience score over runs, one drill's figures over its runs, and one figure of several
drills (``chaosrec history --chart``). Regressed points are drawn as red crosses;
"never" (a recovery that did not happen) as a triangle at the top of its panel.

matplotlib is optional (the ``report`` extra) and imported only when a chart is drawn.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from chaosrec.core.extras import require
from chaosrec.slo.regression import FIGURES

__all__ = ["TrendPoint", "drill_trend_png", "figure_trend_png", "score_trend_png"]

#: ``(started_at epoch, value or None, regressed, commit or None)``
TrendPoint = tuple[float, float | None, bool, str | None]

_PANELS = ("rto_s", "mttd_s", "p99_ms", "availability")
_RED = "#d62728"


def _figure_class() -> Any:
    matplotlib = require("matplotlib", extra="report", feature="drawing history charts")
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure


def _png(fig: Any) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tight layouts warn on tiny panels
        fig.savefig(out, format="png")
    return out.getvalue()


def _label(figure: str) -> str:
    info = FIGURES.get(figure)
    if info is None:
        return figure
    unit = f" ({info.unit})" if info.unit else ""
    return f"{info.label}{unit}"


def _day(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%m-%d %H:%M")


def _plot_series(ax: Any, points: Sequence[TrendPoint], color: str, name: str | None) -> None:
    """One series on ``ax`` by run index: a line through finite values, red crosses on
    regressed ones, triangles on top for infinite ones."""
    xs = [i for i, p in enumerate(points) if p[1] is not None and math.isfinite(p[1])]
    ys = [points[i][1] for i in xs]
    ax.plot(xs, ys, marker="o", markersize=3.5, color=color, label=name)
    for i, (_, value, regressed, _) in enumerate(points):
        if value is None:
            continue
        if math.isinf(value):
            ax.plot([i], [1.0], marker="^", color=_RED if regressed else color,
                    transform=ax.get_xaxis_transform(), clip_on=False)  # fmt: skip
        elif regressed:
            ax.plot([i], [value], marker="x", markersize=10, mew=2.5, color=_RED)


def drill_trend_png(
    title: str, recent: Sequence[dict[str, Any]], current: dict[str, Any], regressed: set[str]
) -> bytes:
    """One drill's RTO, MTTD, p99 and availability over its recent runs and this one.

    :param recent: ``{"started_at", "commit", "figures": {figure: value}}`` per earlier
        run, oldest first.
    :param current: this run's ``{"started_at", "commit", "figures"}``.
    :param regressed: this run's regressed figures.
    """
    figure_cls = _figure_class()
    runs = [*recent, current]
    fig = figure_cls(figsize=(10, 6), dpi=100, layout="constrained")
    axes = fig.subplots(2, 2, sharex=True).flatten()
    fig.suptitle(f"{title}: its last {len(recent)} runs and this one", fontsize=11)
    ticks = [f"{_day(r['started_at'])}\n{(r.get('commit') or '-')[:7]}" for r in runs]
    for ax, figure in zip(axes, _PANELS, strict=True):
        points = [
            (r["started_at"], r["figures"].get(figure), i == len(runs) - 1 and figure in regressed,
             r.get("commit"))
            for i, r in enumerate(runs)
        ]  # fmt: skip
        _plot_series(ax, points, "#1f77b4", None)
        ax.set_ylabel(_label(figure))
        ax.grid(alpha=0.3)
        if figure != "availability":
            ax.set_ylim(bottom=0)
    step = max(1, len(runs) // 8)
    for ax in axes[2:]:
        ax.set_xticks(range(0, len(runs), step), ticks[::step], fontsize=7)
    return _png(fig)


def figure_trend_png(figure: str, series: Mapping[str, Sequence[TrendPoint]]) -> bytes:
    """One figure of several drills, each drill a line over its runs (oldest first)."""
    figure_cls = _figure_class()
    fig = figure_cls(figsize=(10, 5), dpi=100, layout="constrained")
    ax = fig.subplots()
    colors = [f"C{i % 10}" for i in range(len(series))]
    for color, (name, points) in zip(colors, sorted(series.items()), strict=True):
        _plot_series(ax, points, color, name)
    ax.set_title(f"{_label(figure)} over runs", fontsize=11)
    ax.set_xlabel("run (oldest first)")
    ax.set_ylabel(_label(figure))
    ax.grid(alpha=0.3)
    if figure != "availability":
        ax.set_ylim(bottom=0)
    if series:
        ax.legend(fontsize=7, loc="best")
    return _png(fig)


def score_trend_png(trend: Sequence[dict[str, Any]]) -> bytes:
    """The resilience score of the latest runs (``{"started_at", "score", "commit"}``,
    oldest first), the last one being this run."""
    figure_cls = _figure_class()
    fig = figure_cls(figsize=(8, 3.5), dpi=100, layout="constrained")
    ax = fig.subplots()
    points = [(t["started_at"], t["score"], False, t.get("commit")) for t in trend]
    _plot_series(ax, points, "#1f6feb", None)
    if trend and trend[-1]["score"] is not None:
        ax.annotate(f"{trend[-1]['score']:.1f}", (len(trend) - 1, trend[-1]["score"]),
                    textcoords="offset points", xytext=(0, 8), ha="center")  # fmt: skip
    ax.set_ylim(0, 105)
    ax.set_ylabel("resilience score")
    ax.set_title("Resilience score, latest runs (this run last)", fontsize=11)
    ticks = [f"{_day(t['started_at'])}\n{(t.get('commit') or '-')[:7]}" for t in trend]
    step = max(1, len(trend) // 8)
    ax.set_xticks(range(0, len(trend), step), ticks[::step], fontsize=7)
    ax.grid(alpha=0.3)
    return _png(fig)
