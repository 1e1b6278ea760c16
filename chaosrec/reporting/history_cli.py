"""``chaosrec history``: the drill history on the command line.

::

    chaosrec history                            every drill, its last 10 runs
    chaosrec history --drill 'test_region_outage*' --last 20
    chaosrec history --since 7d --json          machine-readable
    chaosrec history --chart reports/history    one PNG trend chart per figure
    chaosrec history --score                    the latest run's score, a bare number

The store is ``--store URL``, else ``$CHAOSREC_HISTORY``, else the nearest
``.chaosrec/history.sqlite`` in the current folder or a parent (where ``make drill``
records), the same URLs as the pytest option (``sqlite:///...``, ``postgresql://...``).
It is only read: nothing is created or migrated, and an older store is read as it is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaosrec.adapters.history.records import PastDrill, RunSummary
from chaosrec.adapters.history.store import HistoryStore, open_store
from chaosrec.adapters.history.url import DEFAULT_SQLITE_PATH, HistoryURL, parse_history_url
from chaosrec.drill.history import drill_figures
from chaosrec.errors import ConfigError
from chaosrec.slo.regression import FIGURES, format_figure

__all__ = ["add_history_parser", "cmd_history", "default_store", "parse_since"]

#: the figures charted by ``--chart``, one PNG each
CHART_FIGURES = ("rto_s", "mttd_s", "p99_ms", "availability", "degraded_share")
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def default_store(start: Path | None = None) -> str:
    """``$CHAOSREC_HISTORY``, else the nearest ``.chaosrec/history.sqlite`` from ``start``
    (the current folder) up, else that path in ``start``."""
    if os.environ.get("CHAOSREC_HISTORY"):
        return os.environ["CHAOSREC_HISTORY"]
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / DEFAULT_SQLITE_PATH).is_file():
            return f"sqlite:///{folder / DEFAULT_SQLITE_PATH}"
    return f"sqlite:///{here / DEFAULT_SQLITE_PATH}"


def parse_since(text: str, now: float | None = None) -> float:
    """``--since``: an ISO date or date-time (UTC unless it says otherwise) or an age
    (``30m``, ``12h``, ``7d``, ``2w``); epoch seconds.

    :raises ConfigError: one line naming the value and the accepted forms.
    """
    value = text.strip()
    found = _RELATIVE.match(value)
    if found:
        return (now if now is not None else time.time()) - float(found[1]) * _UNITS_S[found[2]]
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"--since={text!r}: use a date (2026-11-30), a date-time (2026-11-30T14:00) or an "
            "age (30m, 12h, 7d, 2w)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _utc(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


def _commit(run: RunSummary) -> str:
    if not run.commit:
        return "-"
    return run.commit[:9] + ("*" if run.dirty else "")


def _matches(pattern: str, drill_id: str, name: str) -> bool:
    if pattern in (drill_id, name):
        return True
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(drill_id, pattern)


def _select(store: HistoryStore, pattern: str | None, since: float | None) -> list[tuple[str, str]]:
    names = store.drill_names(since=since)
    if pattern is None:
        return names
    chosen = [(d, n) for d, n in names if _matches(pattern, d, n)]
    if not chosen:
        known = ", ".join(sorted({n for _, n in names})[:8]) or "none recorded"
        raise ConfigError(
            f"--drill={pattern!r} matches no recorded drill (a pytest node name or id, an "
            f"experiment title, or a shell pattern); recorded: {known}"
        )
    return chosen


_COLUMNS = ("date (UTC)", "commit", "outcome", "RTO", "MTTD", "p99", "avail", "regressed")


def _table(past: Sequence[PastDrill]) -> list[str]:
    rows = [_COLUMNS]
    for item in past:
        figures = drill_figures(item.drill)
        rows.append(
            (
                _utc(item.run.started_at),
                _commit(item.run),
                item.drill.outcome,
                format_figure("rto_s", figures["rto_s"]),
                format_figure("mttd_s", figures["mttd_s"]),
                format_figure("p99_ms", figures["p99_ms"]),
                format_figure("availability", figures["availability"]),
                ", ".join(r.figure for r in item.drill.regressions) or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _drill_json(past: Sequence[PastDrill]) -> list[dict[str, Any]]:
    out = []
    for item in past:
        drill = item.drill.to_dict()
        out.append(
            {
                "run_id": item.run.run_id,
                "started_at": item.run.started_at,
                "commit": item.run.commit,
                "dirty": item.run.dirty,
                "topology": item.run.topology,
                "target": item.run.target,
                **{k: v for k, v in drill.items() if k not in ("drill_id", "name")},
            }
        )
    return out


def _json_default(value: Any) -> Any:
    return str(value)


def _finite(value: Any) -> Any:
    """JSON has no infinity: "never" instead (a recovery that did not happen)."""
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "never"
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def cmd_history(args: argparse.Namespace) -> int:
    """Print (or chart) the history; see the module doc."""
    if args.last is not None and args.last < 1:
        raise ConfigError(f"--last={args.last}: give a number of runs >= 1")
    since = parse_since(args.since) if args.since else None
    url = args.store or default_store()
    parsed: HistoryURL | None = parse_history_url(url, source="--store")
    if parsed is None:
        raise ConfigError("--store=off: give the store to read (sqlite:///... or postgresql://...)")
    with open_store(parsed, read_only=True) as store:
        runs = store.runs(last=args.last or 10, since=since)
        if args.score:
            if not runs or runs[0].score is None:
                print(f"chaosrec: no scored run in {store.shown}", flush=True)
                return 1
            print(f"{runs[0].score:.1f}", flush=True)
            return 0
        selected = _select(store, args.drill, since)
        histories = [
            (drill_id, name, store.drill_runs(drill_id, last=args.last or 10, since=since)[::-1])
            for drill_id, name in selected
        ]
        if args.json:
            data = {
                "store": store.shown,
                "schema": store.version,
                "runs": [
                    {
                        "run_id": r.run_id,
                        "started_at": r.started_at,
                        "commit": r.commit,
                        "dirty": r.dirty,
                        "score": r.score,
                        "drills": r.drill_count,
                        "topology": r.topology,
                        "target": r.target,
                    }
                    for r in runs[::-1]
                ],
                "drills": [
                    {"drill_id": d, "name": n, "runs": _drill_json(p)} for d, n, p in histories
                ],
            }
            print(json.dumps(_finite(data), indent=2, default=_json_default), flush=True)
        else:
            _print_tables(store, runs, histories)
        if args.chart:
            for path in _charts(Path(args.chart), runs, histories):
                print(f"chart: {path}", flush=True)
    return 0


def _print_tables(
    store: HistoryStore, runs: list[RunSummary], histories: list[tuple[str, str, list[PastDrill]]]
) -> None:
    print(f"drill history: {store.shown} (schema {store.version}, {len(histories)} drill(s))")
    scores = ["-" if r.score is None else f"{r.score:.1f}" for r in runs[::-1]]
    if scores:
        print(f"resilience score, latest {len(scores)} run(s): {' → '.join(scores)}")
    for drill_id, name, past in histories:
        latest = past[-1].run if past else None
        where = f"; topology {latest.topology or '-'}, {latest.target or '-'}" if latest else ""
        print()
        print(f"{name}  ({drill_id}{where})")
        for line in _table(past):
            print(f"  {line}")


def _charts(
    folder: Path, runs: list[RunSummary], histories: list[tuple[str, str, list[PastDrill]]]
) -> list[Path]:
    from chaosrec.reporting.history_charts import figure_trend_png, score_trend_png

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for figure in CHART_FIGURES:
        series = {}
        for _, name, past in histories:
            points = [
                (p.run.started_at, drill_figures(p.drill)[figure],
                 any(r.figure == figure for r in p.drill.regressions), p.run.commit)
                for p in past
            ]  # fmt: skip
            if any(value is not None for _, value, _, _ in points):
                series[name] = points
        path = folder / f"{figure}.png"
        path.write_bytes(figure_trend_png(figure, series))
        written.append(path)
    if runs:
        path = folder / "score.png"
        trend = [
            {"started_at": r.started_at, "score": r.score, "commit": r.commit} for r in runs[::-1]
        ]
        path.write_bytes(score_trend_png(trend))
        written.append(path)
    return written


def add_history_parser(sub: Any) -> None:
    """Register ``chaosrec history`` on the CLI's subparsers."""
    p = sub.add_parser(
        "history",
        help="drills over time: RTO, MTTD, p99, availability per run; score; trend charts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--store", default=None, help="sqlite:///FILE or postgresql://... (read only)")
    p.add_argument("--drill", default=None, help="a drill's node name or id, an experiment "
                   "title, or a shell pattern (default: every drill)")  # fmt: skip
    p.add_argument("--last", type=int, default=None, help="runs per drill (default 10)")
    p.add_argument("--since", default=None, help="a date, a date-time or an age (7d, 12h)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--chart", default=None, metavar="DIR", help="write one PNG per figure here")
    p.add_argument("--score", action="store_true", help="print the latest run's score only")
    p.set_defaults(func=cmd_history)
    figures = ", ".join(FIGURES[f].label for f in CHART_FIGURES)
    p.epilog = f"charts: {figures} and the resilience score"
