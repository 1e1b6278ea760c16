"""A drill judged against its history (chaosrec.drill.history.DrillHistory), on a SQLite
store in a temp folder: which runs count, when a drill is not judged, and a run recorded
with its score."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from chaosrec.adapters.history import DrillRecord, HistoryStore, RunRecord, open_store
from chaosrec.drill.history import DrillHistory
from chaosrec.slo.regression import RegressionRule


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return open_store(f"sqlite:///{tmp_path / 'h.sqlite'}")


def drill(**overrides: Any) -> DrillRecord:
    values: dict[str, Any] = {
        "drill_id": "t.py::test_region_outage[black-holed]",
        "name": "test_region_outage[black-holed]",
        "outcome": "passed",
        "topology_hash": "h",
        "target": "embedded stack",
        "signature": "s",
        "rto_s": 0.0,
        "p99_ms": 20.0,
        "availability": 1.0,
        "send_lag_p99_ms": 2.0,
        "blast_radius": "region",
    }
    values.update(overrides)
    return DrillRecord(**values)


def record(store: HistoryStore, *drills: DrillRecord, at: float) -> None:
    store.record(
        RunRecord(run_id=uuid.uuid4().hex, started_at=at, front="pytest",
                  chaosrec_version="0", drills=drills)
    )  # fmt: skip


def test_a_slower_run_is_judged_against_the_passed_runs(store: HistoryStore) -> None:
    for i, p99 in enumerate([18.0, 22.0, 20.0, 19.0, 21.0]):
        record(store, drill(p99_ms=p99), at=100.0 + i)
    record(store, drill(p99_ms=700.0, outcome="failed"), at=107.0)
    history = DrillHistory(store)
    judged = history.judge(drill(p99_ms=80.0))
    assert judged.not_judged is None and len(judged.past) == 5
    assert [p.drill.p99_ms for p in judged.past] == [21.0, 19.0, 20.0, 22.0, 18.0]
    (regression,) = judged.regressions
    assert (regression.figure, regression.median, regression.threshold) == ("p99_ms", 20.0, 60.0)
    assert history.judge(drill(p99_ms=59.0)).regressions == ()


def test_a_busy_run_stays_history_and_only_widens_the_baseline(store: HistoryStore) -> None:
    for i, p99 in enumerate([18.0, 22.0, 20.0, 19.0, 21.0]):
        record(store, drill(p99_ms=p99), at=100.0 + i)
    record(store, drill(p99_ms=900.0, send_lag_p99_ms=80.0), at=106.0)  # a busy machine
    history = DrillHistory(store)
    judged = history.judge(drill(p99_ms=80.0))
    assert len(judged.past) == 6 and judged.past[0].drill.p99_ms == 900.0
    # one wild run moves the median by half a step and the MAD not at all
    (regression,) = judged.regressions
    assert (regression.median, regression.threshold) == (20.5, 60.5)
    # half the window busy: the baseline widens, so the same value is no longer flagged
    for i in range(4):
        record(store, drill(p99_ms=900.0, send_lag_p99_ms=80.0), at=110.0 + i)
    assert history.judge(drill(p99_ms=80.0)).regressions == ()


@pytest.mark.parametrize(
    ("current", "why"),
    [
        (drill(outcome="failed", p99_ms=900.0), "not judged: the drill failed"),
        (
            drill(p99_ms=900.0, send_lag_p99_ms=45.0),
            "not judged: the machine was too busy (the load generator ran 45 ms behind "
            "schedule at p99, over 5 ms)",
        ),
    ],
    ids=["failed", "busy"],
)
def test_what_is_not_judged_says_why(store: HistoryStore, current: DrillRecord, why: str) -> None:
    for i in range(5):
        record(store, drill(), at=100.0 + i)
    judged = DrillHistory(store).judge(current)
    assert judged.regressions == () and judged.not_judged == why


def test_nothing_is_flagged_before_enough_runs(store: HistoryStore) -> None:
    for i in range(4):
        record(store, drill(), at=100.0 + i)
    judged = DrillHistory(store, RegressionRule(min_runs=5)).judge(drill(p99_ms=5000.0))
    assert judged.regressions == () and judged.not_judged == "not judged yet: 4 of 5 runs"
    assert DrillHistory(store, RegressionRule(min_runs=4)).regressions(drill(p99_ms=5000.0))


def test_a_run_is_recorded_with_its_score_and_trend(store: HistoryStore) -> None:
    history = DrillHistory(store)
    regressed = drill(name="other", drill_id="t.py::other", blast_radius="replica")
    run = RunRecord(run_id="r1", started_at=1.0, front="pytest", chaosrec_version="0",
                    topology_hash="h", target="embedded stack",
                    drills=(drill(), regressed))  # fmt: skip
    recorded = history.record(run)
    assert recorded.score == 100.0 and recorded.drill_count == 2
    (trend,) = history.trend(recorded)
    assert (trend.run_id, trend.score) == ("r1", 100.0)
