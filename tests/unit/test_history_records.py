"""Store URLs, the drill record's plain-data form, the score's weights, and what the
history compares a drill by (offline: no store is opened here)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from chaosrec.adapters.history.records import DrillRecord, FaultRecord, ObjectiveRecord
from chaosrec.adapters.history.url import parse_history_url
from chaosrec.core.topology import load_topology
from chaosrec.drill.history import drill_figures, fault_signature, score_of, topology_identity
from chaosrec.drill.score import ScoredDrill, blast_radius, resilience_score
from chaosrec.errors import ConfigError
from chaosrec.slo.effects import Effect
from chaosrec.slo.regression import Regression


@pytest.mark.parametrize(
    ("text", "scheme", "path"),
    [
        ("sqlite:///.chaosrec/history.sqlite", "sqlite", "BASE/.chaosrec/history.sqlite"),
        ("sqlite:////var/lib/drills.sqlite", "sqlite", "/var/lib/drills.sqlite"),
        ("  sqlite:///h.db ", "sqlite", "BASE/h.db"),
        ("postgresql://drills@db:5432/chaosrec", "postgresql", None),
        ("postgres://drills:pw@db/chaosrec?sslmode=require", "postgresql", None),
    ],
)
def test_store_urls(tmp_path: Path, text: str, scheme: str, path: str | None) -> None:
    url = parse_history_url(text, base=tmp_path)
    assert url is not None and url.scheme == scheme
    expected = None if path is None else Path(path.replace("BASE", str(tmp_path)))
    assert url.path == expected


@pytest.mark.parametrize("text", ["off", "OFF", "none", "false", "0"])
def test_off_switches_the_history_off(text: str) -> None:
    assert parse_history_url(text) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("history.sqlite", "unknown history store"),
        ("sqlite://host/x.db", "a SQLite URL is sqlite:/// and a path"),
        ("sqlite:///", "a SQLite URL is sqlite:/// and a path"),
        ("mysql://u@h/db", "unknown history store"),
        ("postgresql://u:hunter2@h:99999/db", "not a valid PostgreSQL URL"),
    ],
    ids=["bare-path", "sqlite-host", "sqlite-no-path", "mysql", "bad-port"],
)
def test_bad_urls_fail_with_one_line_without_the_password(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_history_url(text, source="--chaosrec-history")
    shown = str(info.value)
    assert shown.startswith("--chaosrec-history=") and message in shown
    assert "hunter2" not in shown and "\n" not in shown


def test_a_folder_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder; name the SQLite file"):
        parse_history_url(f"sqlite:///{tmp_path}")


def test_the_url_is_shown_without_credentials() -> None:
    url = parse_history_url("postgresql://drills:hunter2@db:5432/chaosrec")
    assert url is not None and "hunter2" not in url.shown and "hunter2" not in repr(url)


def _record(**overrides: Any) -> DrillRecord:
    values: dict[str, Any] = {
        "drill_id": "tests/drills/test_catalog.py::test_region_outage[killed]",
        "name": "test_region_outage[killed]",
        "outcome": "passed",
        "params": {"mode": "kill"},
        "rto_s": math.inf,
        "p99_ms": 17.1,
        "objectives": (
            ObjectiveRecord(name="p99_ms", target="<= 250 ms", status="pass", value=17.1),
        ),
        "faults": (
            FaultRecord(
                label="region_outage(region-a, mode=kill)",
                kind="region_outage",
                targets=("region-a",),
                params={"mode": "kill"},
                started_at=1.0,
            ),
        ),
        "effects": (Effect("p99_ms", 10.0, 13.1, 3.1, 2.4, 3.9, 0.95, 400, 700),),
        "regressions": (Regression("rto_s", math.inf, 0.5, 0.0, 1.0, 5),),
    }
    values.update(overrides)
    return DrillRecord(**values)


def test_a_drill_record_round_trips_as_plain_data() -> None:
    record = _record()
    assert DrillRecord.from_dict(record.to_dict()) == record
    assert DrillRecord.from_dict({**record.to_dict(), "added_later": 1}) == record


def test_what_a_drill_is_compared_by() -> None:
    default, quick = load_topology("default"), load_topology("quick")
    assert topology_identity(default)[0] == "default"
    assert topology_identity(default) != topology_identity(quick)
    assert topology_identity(None) == ("", "")
    record = _record()
    same = fault_signature(record.faults)
    assert same and same == fault_signature(_record().faults)
    other = (FaultRecord(label="x", kind="region_outage", targets=("region-b",)),)
    assert fault_signature(other) != same and fault_signature(()) == ""


def test_no_mttd_after_a_fault_means_nothing_to_detect() -> None:
    assert drill_figures(_record(rto_s=0.0, mttd_s=None))["mttd_s"] == 0.0
    assert drill_figures(_record(rto_s=None, mttd_s=None))["mttd_s"] is None  # no fault
    assert drill_figures(_record(p99_ms=math.nan))["p99_ms"] is None


@pytest.mark.parametrize(
    ("faults", "topology", "radius"),
    [
        ([["all"]], "default", "service"),
        ([["region-a"], ["region-b"]], "default", "service"),
        ([["region-a"]], "default", "region"),
        ([["region-a.r0"], ["region-a.r1"], ["region-b.r0"]], "default", "region"),
        ([["region-a.r0"], ["region-b.r0"]], "default", "replicas"),
        ([["region-a.r1"]], "default", "replica"),
        ([["region-a.r0"]], "quick", "region"),  # one replica a region: the region is down
        ([["their-service"]], "default", "replica"),
        ([["their-service"]], None, "replica"),
        ([["all"]], None, "service"),
        ([], "default", "none"),
    ],
)
def test_blast_radius(faults: list[list[str]], topology: str | None, radius: str) -> None:
    topo = load_topology(topology) if topology else None
    assert blast_radius(faults, topo) == radius


def test_the_score_weighs_outcomes_by_blast_radius() -> None:
    score = resilience_score(
        [
            ScoredDrill("region", "passed", "region"),
            ScoredDrill("replica", "failed", "replica"),
            ScoredDrill("total", "passed", "service", regressed=True),
            ScoredDrill("broken", "broken", "region"),
            ScoredDrill("unsure", "inconclusive", "replica"),
        ]
    )
    assert score.value == pytest.approx(100 * (3 + 0 + 0.5 * 4) / (3 + 1 + 4))  # 62.5
    assert score.scored == 3
    assert score.unscored == ("broken (broken)", "unsure (inconclusive)")
    assert score.describe().startswith("62.5/100 (3 drills scored; not scored: broken")
    assert resilience_score([ScoredDrill("x", "skipped")]).value is None


def test_a_run_is_scored_from_its_records() -> None:
    passed = _record(blast_radius="region", regressions=())
    regressed = _record(name="other", blast_radius="replica")
    assert score_of([passed, regressed]).value == pytest.approx(100 * (3 + 0.5) / 4)
