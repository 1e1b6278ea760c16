"""How the drill history reads in reports and on the terminal (plain data in, text out),
and the arguments of ``chaosrec history``."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest

from chaosrec.errors import ConfigError
from chaosrec.reporting.history_cli import default_store, parse_since
from chaosrec.reporting.history_text import (
    REGRESSED_PREFIX,
    compared_rows,
    compared_text,
    effect_sentence,
    effect_sentences,
    history_lines,
    regression_message,
    regression_problems,
    sparkline_svg,
    trend_text,
)


def effect(metric: str, delta: float, low: float, high: float) -> dict[str, Any]:
    return {"metric": metric, "baseline": 1.0, "fault": 1.0 + delta, "delta": delta,
            "ci_low": low, "ci_high": high, "confidence": 0.95, "n_baseline": 300,
            "n_fault": 700}  # fmt: skip


@pytest.mark.parametrize(
    ("given", "faults", "text"),
    [
        (effect("p99_ms", 3.1, 2.4, 3.9), "the region outage",
         "the region outage added 3.1 ms to p99 (95 % CI 2.4 to 3.9)"),
        (effect("p50_ms", -1.25, -2.0, 0.5), "",
         "took 1.2 ms off p50 (95 % CI -2.0 to 0.5), within noise"),
        (effect("availability", -0.0012, -0.002, -0.0005), "x",
         "x lowered availability by 0.12 pp (95 % CI -0.20 to -0.05)"),
        (effect("degraded_share", 0.05, 0.03, 0.07), "x",
         "x raised the degraded share by 5.00 pp (95 % CI +3.00 to +7.00)"),
        (effect("availability", 0.0, 0.0, 0.0), "x", "x left availability unchanged"),
    ],
)  # fmt: skip
def test_effects_read_as_sentences(given: dict[str, Any], faults: str, text: str) -> None:
    assert effect_sentence(given, faults) == text


def judged_result(**history: Any) -> dict[str, Any]:
    record = {
        "drill_id": "t.py::test_x", "name": "test_x", "outcome": "passed", "rto_s": 1.5,
        "mttd_s": None, "p99_ms": 40.0, "availability": 1.0,
        "effects": [effect("p99_ms", 20.0, 15.0, 25.0)],
        "regressions": [{"figure": "rto_s", "value": 1.5, "median": 0.0, "spread": 0.0,
                         "threshold": 0.5, "runs": 5}],
    }  # fmt: skip
    recent = [
        {"started_at": 1.0 + i, "commit": "abc", "dirty": False,
         "figures": {"rto_s": 0.0, "mttd_s": 0.0, "p99_ms": 30.0 + i, "availability": 1.0,
                     "p99_delta_ms": 2.0}}
        for i in range(5)
    ]  # fmt: skip
    return {
        "scenario": "test_x",
        "outcome": "passed",
        "faults": [{"label": "region_outage(region-a, mode=refuse)", "started_at": 5.0}],
        "runs": [{"requests": 10, "effects": record["effects"]}],
        "history": {"record": record, "recent": recent, "compared_runs": 5,
                    "rule": {"runs": 10, "min_runs": 5, "k": 4.0}, **history},
    }  # fmt: skip


def test_a_judged_drill_is_compared_figure_by_figure() -> None:
    rows = {figure: (now, median, status) for figure, now, median, status in
            compared_rows(judged_result()) or []}  # fmt: skip
    assert rows["RTO"] == ("1.50 s", "0.00 s", "REGRESSED (past 0.50 s)")
    assert rows["MTTD"][0] == "0.00 s"  # no MTTD after a fault: nothing to detect
    assert rows["p99"] == ("40.0 ms", "32.0 ms", "ok")
    assert rows["p99 added by the fault"] == ("20.0 ms", "2.0 ms", "ok")
    early = judged_result(compared_runs=2)
    assert compared_rows(early) is not None
    assert compared_rows({"scenario": "x", "outcome": "passed", "runs": []}) is None


def test_regressions_read_as_problems_and_as_the_allure_message() -> None:
    result = judged_result()
    (line,) = regression_problems([result])
    assert line == (
        "test_x: [Regressed, SLO still met] rto_s 1.50 s: median of the last 5 runs 0.00 s, "
        "regressed past 0.50 s"
    )
    assert regression_message(result).startswith(f"{REGRESSED_PREFIX} rto_s 1.50 s")
    (sentence,) = effect_sentences(result)
    assert sentence.startswith("region_outage(region-a, mode=refuse) added 20.0 ms to p99")


def test_the_terminal_lines_and_the_trend() -> None:
    view = {
        "store": "sqlite:///h.sqlite", "run_id": "r3" * 8, "score": 62.5, "error": None,
        "trend": [{"run_id": "r1", "score": 100.0}, {"run_id": "r2", "score": None},
                  {"run_id": "r3" * 8, "score": 62.5}],
        "regressions": [{"drill": "test_x", "figure": "rto_s", "text": "rto_s 1.50 s: ..."}],
        "judged": 21, "not_judged": {"too few earlier runs": 3, "machine too busy": 5},
    }  # fmt: skip
    assert trend_text(view) == "100.0 → - → 62.5 (this run)"
    assert history_lines(view) == [
        "resilience score: 62.5/100 (trend: 100.0 → - → 62.5 (this run))",
        "regressions: 1 (SLOs may still pass)",
        "  regressed: test_x: rto_s 1.50 s: ...",
        "compared with history: 21 of 29 drills (not judged: 5 machine too busy, "
        "3 too few earlier runs)",
        "drill history: run r3r3r3r3r3r3 recorded in sqlite:///h.sqlite",
    ]
    assert compared_text({"judged": 0, "not_judged": {}}) == "compared with history: 0 of 0 drills"
    assert compared_text({}) == ""
    broken = history_lines({**view, "error": "cannot connect"})
    assert broken == ["chaosrec: the drill history was not recorded: cannot connect"]


def test_the_sparkline_is_an_inline_svg() -> None:
    svg = sparkline_svg([100.0, None, 50.0])
    assert svg.startswith("<svg class='trend'") and svg.count("<circle") == 1
    assert "points='0.0,4.0 240.0,24.0'" in svg  # 100 at the top, 50 half-way
    assert sparkline_svg([None]) == ""


def test_since_takes_dates_and_ages() -> None:
    assert parse_since("7d", now=1_000_000.0) == 1_000_000.0 - 7 * 86400
    assert parse_since("30m", now=100_000.0) == 100_000.0 - 1800
    when = dt.datetime(2026, 11, 30, tzinfo=dt.UTC).timestamp()
    assert parse_since("2026-11-30") == when
    assert parse_since("2026-11-30T02:00+02:00") == when
    with pytest.raises(ConfigError, match=r"--since='yesterday': use a date"):
        parse_since("yesterday")


def test_the_default_store_is_the_nearest_one_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHAOSREC_HISTORY", raising=False)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert default_store(deep) == f"sqlite:///{deep / '.chaosrec' / 'history.sqlite'}"
    (tmp_path / ".chaosrec").mkdir()
    (tmp_path / ".chaosrec" / "history.sqlite").touch()
    assert default_store(deep) == f"sqlite:///{tmp_path / '.chaosrec' / 'history.sqlite'}"
    monkeypatch.setenv("CHAOSREC_HISTORY", "postgresql://h/db")
    assert default_store(deep) == "postgresql://h/db"
    assert not math.isnan(parse_since("1h"))
