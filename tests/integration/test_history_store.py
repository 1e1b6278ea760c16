"""The drill history store against a real SQLite file and a real PostgreSQL server:
every test runs on both (``store_url`` is parametrized), the server started for this
module from Debian's ``postgresql`` package on a loopback port (as the ``postgres`` user
when the tests run as root), one fresh database per test.

Covered: a run round-trips with everything in it; what a drill is compared with; one
transaction per run (a failing insert and a SIGKILLed writer both leave nothing); nothing
secret is stored; migrations (an older store is read as it is and upgraded on write; a
newer store is refused unless compatible; two sessions migrate a new store once); and
``chaosrec history`` on both.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chaosrec.adapters.history import (
    SCHEMA_VERSION,
    DrillRecord,
    FaultRecord,
    ObjectiveRecord,
    RunRecord,
    open_store,
    parse_history_url,
)
from chaosrec.adapters.history.postgres import PostgresBackend
from chaosrec.adapters.history.schema import MIGRATIONS, SCHEMA_DDL, SCHEMA_TABLE
from chaosrec.adapters.history.sqlite import SQLiteBackend
from chaosrec.adapters.history.store import Backend, HistoryStore
from chaosrec.adapters.tools.postgres import PostgresServer, find_postgres_bindir
from chaosrec.errors import HistoryError
from chaosrec.slo.effects import Effect
from chaosrec.slo.regression import Regression

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-PLANTED"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for this module (stopped and deleted after it)."""
    bindir = find_postgres_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is missing in CI: `chaosrec setup` must install it")
        pytest.skip("no PostgreSQL server installed (run `chaosrec setup` as root)")
    with PostgresServer(bindir) as server:
        print(f"PostgreSQL started in {server.started_in_s:.2f} s on port {server.port}")
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")


def drill(name: str = "test_region_outage[killed]", **overrides: Any) -> DrillRecord:
    values: dict[str, Any] = {
        "drill_id": f"tests/drills/test_catalog.py::{name}",
        "name": name,
        "outcome": "passed",
        "params": {"mode": "kill", "rate": 150},
        "topology": "default",
        "topology_hash": "abc123",
        "target": "embedded stack",
        "signature": "sig1",
        "verdict": "pass",
        "started_at": 1_800_000_000.5,
        "duration_s": 12.25,
        "requests": 1500,
        "answered": 1499,
        "availability": 1499 / 1500,
        "p50_ms": 6.5,
        "p99_ms": 17.1,
        "degraded_share": 0.0,
        "rto_s": math.inf,
        "mttd_s": None,
        "blast_radius": "region",
        "weight": 3.0,
        "send_lag_p99_ms": 3.25,
        "objectives": (
            ObjectiveRecord(
                name="availability",
                target=">= 0.999",
                status="pass",
                value=1499 / 1500,
                measured="0.9993 (1499/1500)",
                span="whole run 0-10.0 s",
            ),
            ObjectiveRecord(
                name="rto_s",
                target="<= 2 s",
                status="fail",
                value=math.inf,
                measured="never",
                span="from fault start t=2.00 s",
            ),
        ),
        "faults": (
            FaultRecord(
                label="region_outage(region-a, mode=kill)",
                kind="region_outage",
                targets=("region-a",),
                params={"mode": "kill"},
                injecting_at=1_800_000_002.0,
                started_at=1_800_000_002.1,
                ended_at=1_800_000_007.0,
                touched=True,
            ),
        ),
        "effects": (Effect("p99_ms", 10.0, 13.1, 3.1, 2.4, 3.9, 0.95, 300, 750),),
        "regressions": (Regression("rto_s", math.inf, 0.5, 0.0, 1.0, 5),),
    }
    values.update(overrides)
    return DrillRecord(**values)


def run(*drills: DrillRecord, started_at: float = 1_800_000_000.0, **overrides: Any) -> RunRecord:
    values: dict[str, Any] = {
        "run_id": uuid.uuid4().hex,
        "started_at": started_at,
        "ended_at": started_at + 300,
        "commit": "946a96b0c0ffee",
        "dirty": False,
        "branch": "main",
        "chaosrec_version": "0.1.0",
        "host": "ci-runner-7",
        "front": "pytest",
        "topology": "default",
        "topology_hash": "abc123",
        "target": "embedded stack",
        "score": 87.5,
        "drill_count": len(drills),
        "drills": drills,
    }
    values.update(overrides)
    return RunRecord(**values)


def test_a_run_round_trips_with_everything_in_it(store_url: str) -> None:
    recorded = run(drill(), drill("test_single_gpu_lost", rto_s=0.0, mttd_s=0.12, regressions=()))
    with open_store(store_url) as store:
        assert store.version == SCHEMA_VERSION
        store.record(recorded)
    with open_store(store_url, read_only=True) as store:
        (summary,) = store.runs()
        assert summary.run_id == recorded.run_id and summary.drill_count == 2
        assert (summary.commit, summary.dirty, summary.score) == ("946a96b0c0ffee", False, 87.5)
        for original in recorded.drills:
            (past,) = store.drill_runs(original.drill_id)
            assert past.run == summary
            assert past.drill == original  # figures (inf and None too), children, params
        assert store.drill_names() == [
            (recorded.drills[0].drill_id, "test_region_outage[killed]"),
            (recorded.drills[1].drill_id, "test_single_gpu_lost"),
        ]


def test_a_drill_is_compared_with_passed_runs_of_the_same_drill_topology_target_faults(
    store_url: str,
) -> None:
    me = drill()
    with open_store(store_url) as store:
        for i in range(12):
            store.record(run(drill(p99_ms=float(i)), started_at=1_800_000_000.0 + i))
        store.record(run(drill(p99_ms=100.0, outcome="failed"), started_at=1_800_000_100.0))
        store.record(
            run(drill(p99_ms=200.0, topology_hash="other"), topology_hash="other",
                started_at=1_800_000_101.0)
        )  # fmt: skip
        store.record(run(drill(p99_ms=300.0, target="remote gateway"), started_at=1_800_000_102))
        store.record(run(drill(p99_ms=400.0, signature="sig2"), started_at=1_800_000_103.0))
        store.record(run(drill("test_other", p99_ms=500.0), started_at=1_800_000_104.0))
        recent = store.recent(me, limit=10)
        assert [p.drill.p99_ms for p in recent] == [float(i) for i in range(11, 1, -1)]
        before = store.recent(me, limit=3, before=1_800_000_005.0)
        assert [p.drill.p99_ms for p in before] == [4.0, 3.0, 2.0]
        assert [p.drill.p99_ms for p in store.recent(me, outcomes=("failed",))] == [100.0]
        assert len(store.runs()) == 17 and len(store.runs(last=5)) == 5
        assert len(store.runs(topology_hash="other")) == 1
        assert len(store.runs(since=1_800_000_100.0)) == 5


def test_a_failed_write_leaves_nothing(store_url: str) -> None:
    good = run(drill())
    with open_store(store_url) as store:
        store.record(good)
        twice = Regression("p99_ms", 90.0, 30.0, 2.0, 50.0, 5)
        broken = run(drill(), drill("test_two"), drill("test_three", regressions=(twice, twice)))
        with pytest.raises(HistoryError, match="cannot record a run in the drill history"):
            store.record(broken)  # the third drill's second row breaks its primary key
        with pytest.raises(HistoryError):
            store.record(good)  # the same run id twice
        assert [r.run_id for r in store.runs()] == [good.run_id]
        assert store.drill_runs(drill("test_two").drill_id) == []


WRITER = """
import os, sys, time
from chaosrec.adapters.history import open_store
from chaosrec.adapters.history.store import HistoryStore

sys.path.insert(0, os.environ["TEST_DIR"])
from test_history_store import drill, run


class Paused:
    '''The real backend, stopping for good once the drills of the run are written.'''

    def __init__(self, backend):
        self.backend = backend

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def executemany(self, sql, rows):
        self.backend.executemany(sql, rows)
        if "INSERT INTO chaosrec_drills" in sql:
            open(os.environ["MARKER"], "w").close()
            time.sleep(600)  # the test kills us here, in the middle of the transaction


store = open_store(os.environ["STORE"])
HistoryStore(Paused(store.backend)).record(run(*[drill(f"test_{i}") for i in range(20)]))
"""


def test_a_killed_run_leaves_no_half_written_run(
    store_url: str, tmp_path: Path, wait_for: Callable[..., float]
) -> None:
    with open_store(store_url) as store:
        store.record(run(drill()))  # an earlier run, which must survive
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    marker = tmp_path / "in-the-middle"
    env = {
        **os.environ,
        "STORE": store_url,
        "MARKER": str(marker),
        "TEST_DIR": str(Path(__file__).parent),
    }
    writer = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: marker.exists() or writer.poll() is not None, 60, "the writer to pause")
        assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""
        writer.send_signal(signal.SIGKILL)  # no finally, no rollback: the process is gone
        writer.wait(30)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        if writer.stderr is not None:
            writer.stderr.close()
    with open_store(store_url) as store:
        assert len(store.runs()) == 1  # only the earlier run
        assert store.drill_runs(drill("test_0").drill_id) == []
        store.record(run(drill("test_0")))  # and the store still takes runs
        assert len(store.drill_runs(drill("test_0").drill_id)) == 1


def _all_text(store_url: str, tmp_path: Path) -> str:
    """Every value of every chaosrec table, as text (and the SQLite file's bytes)."""
    with open_store(store_url, read_only=True) as store:
        backend = store.backend  # the store's own connection: this is the test of what it wrote
        tables = ["chaosrec_runs", "chaosrec_drills", "chaosrec_objectives", "chaosrec_faults",
                  "chaosrec_effects", "chaosrec_regressions", SCHEMA_TABLE]  # fmt: skip
        text = "\n".join(repr(backend.query(f"SELECT * FROM {table}")) for table in tables)
    url = parse_history_url(store_url)
    if url is not None and url.path is not None:
        text += url.path.read_bytes().decode("latin-1")
    return text


def test_nothing_secret_is_stored(store_url: str, tmp_path: Path) -> None:
    planted = drill(
        params={"api_key": SECRET, "mode": "kill"},
        target=f"remote gateway http://drill:{SECRET}@gw.internal:8080",
        category=f"SLO breached at http://u:{SECRET}@x/",
        objectives=(
            ObjectiveRecord(
                name="p99_ms",
                target="<= 1 ms",
                status="fail",
                value=3.0,
                measured=f"3.0 ms token={SECRET}",
                span="whole run",
            ),
        ),
        faults=(
            FaultRecord(
                label="latency(shared-a, ms=10)",
                kind="latency",
                targets=("shared-a",),
                params={"password": SECRET, "url": f"http://a:{SECRET}@h:1"},
            ),
        ),
    )
    with open_store(store_url) as store:
        store.record(run(planted, target=f"remote gateway http://drill:{SECRET}@gw:8080",
                         branch=f"feature?token={SECRET}"))  # fmt: skip
        (past,) = store.drill_runs(planted.drill_id)
        assert past.drill.params == {"api_key": "***", "mode": "kill"}
        assert past.drill.target == "remote gateway http://***@gw.internal:8080"
    assert SECRET not in _all_text(store_url, tmp_path)


V1_RUN = (
    "INSERT INTO chaosrec_runs (run_id, started_at, ended_at, commit_sha, dirty, branch, "
    "chaosrec_version, host, front, topology, topology_hash, target, drill_count) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
V1_DRILL = (
    "INSERT INTO chaosrec_drills (run_id, seq, drill_id, name, kind, params, topology, "
    "topology_hash, target, signature, outcome, verdict, category, started_at, duration_s, "
    "requests, answered, availability, p50_ms, p99_ms, degraded_share, rto_s, mttd_s) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _backend(store_url: str) -> Backend:
    """A writable connection to the store, without the migration open_store() applies."""
    url = parse_history_url(store_url)
    assert url is not None
    if url.path is not None:
        return SQLiteBackend(url.path)
    return PostgresBackend(url.url)


def _write_v1_store(store_url: str) -> None:
    """What a chaosrec at schema version 1 wrote: its tables and one run, as it wrote it."""
    backend = _backend(store_url)
    store = HistoryStore(backend)
    assert store.migrate(up_to=1) == 1
    sql = backend.dialect.sql
    with backend.transaction():
        backend.execute(sql(V1_RUN), ("old-run", 1_700_000_000.0, 1_700_000_300.0, "0ld",
                                      0, "main", "0.0.9", "ci", "pytest", "default", "abc123",
                                      "embedded stack", 1))  # fmt: skip
        backend.execute(sql(V1_DRILL), ("old-run", 0, drill().drill_id, drill().name, "pytest",
                                        "{}", "default", "abc123", "embedded stack", "sig1",
                                        "passed", "pass", None, 1_700_000_001.0, 10.0, 1500,
                                        1500, 1.0, 6.0, 15.0, 0.0, 0.5, 0.1))  # fmt: skip
    store.close()


def test_a_newer_chaosrec_reads_an_older_store_and_upgrades_it_on_write(store_url: str) -> None:
    _write_v1_store(store_url)
    with open_store(store_url, read_only=True) as old:
        assert old.version == 1  # read as it is: nothing migrated
        (past,) = old.drill_runs(drill().drill_id)
        assert (past.drill.p99_ms, past.drill.rto_s, past.run.commit) == (15.0, 0.5, "0ld")
        assert past.run.score is None and past.drill.effects == () and past.drill.weight is None
        assert len(old.recent(drill())) == 1
    with open_store(store_url) as store:
        assert store.version == SCHEMA_VERSION  # upgraded on opening for writing
        store.record(run(drill()))
        versions = store.backend.query(f"SELECT version FROM {SCHEMA_TABLE} ORDER BY version")
        assert [v for (v,) in versions] == [m.version for m in MIGRATIONS]
        old_and_new = store.drill_runs(drill().drill_id)
        assert [p.run.commit for p in old_and_new] == ["946a96b0c0ffee", "0ld"]


@pytest.mark.parametrize("compatible_with", [SCHEMA_VERSION, 99])
def test_a_store_from_a_newer_chaosrec(store_url: str, compatible_with: int) -> None:
    with open_store(store_url) as store:
        store.record(run(drill()))
        sql = store.backend.dialect.sql
        with store.backend.transaction():
            store.backend.execute(
                sql(f"INSERT INTO {SCHEMA_TABLE} (version, compatible_with, applied_at, "
                    "chaosrec_version, summary) VALUES (?, ?, ?, ?, ?)"),
                (99, compatible_with, time.time(), "9.0", "a future change"),
            )  # fmt: skip
    if compatible_with > SCHEMA_VERSION:
        with pytest.raises(HistoryError, match=r"written by a newer chaosrec.*upgrade chaosrec"):
            open_store(store_url)
        return
    with open_store(store_url) as store:  # additive: still read and written
        assert store.version == 99
        store.record(run(drill()))
        assert len(store.runs()) == 2


def test_two_sessions_migrate_a_new_store_once(store_url: str) -> None:
    errors: list[BaseException] = []

    def open_and_record() -> None:
        try:
            with open_store(store_url) as store:
                store.record(run(drill()))
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=open_and_record) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with open_store(store_url, read_only=True) as store:
        assert len(store.runs()) == 4
        rows = store.backend.query(f"SELECT version FROM {SCHEMA_TABLE}")
        assert sorted(v for (v,) in rows) == [m.version for m in MIGRATIONS]


def test_reading_creates_nothing(store_url: str) -> None:
    url = parse_history_url(store_url)
    assert url is not None
    if url.path is not None:
        with pytest.raises(HistoryError, match=r"no drill history at .*run the drills first"):
            open_store(url, read_only=True)
        assert not url.path.exists()
        return
    with open_store(url, read_only=True) as store:
        assert store.version == 0 and store.runs() == [] and store.drill_names() == []
        assert not store.backend.table_exists(SCHEMA_TABLE)
    assert SCHEMA_DDL  # created by the first writer only


def test_chaosrec_history_reads_both_stores(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chaosrec.cli import main

    with open_store(store_url) as store:
        for i in range(3):
            store.record(
                run(drill(p99_ms=15.0 + i, rto_s=0.5 * i, regressions=()),
                    drill("test_single_gpu_lost", rto_s=0.0, mttd_s=0.1),
                    started_at=1_800_000_000.0 + 60 * i, score=90.0 + i)
            )  # fmt: skip
    assert main(["history", "--store", store_url, "--drill", "test_region_outage*"]) == 0
    out = capsys.readouterr().out
    assert "resilience score, latest 3 run(s): 90.0 → 91.0 → 92.0" in out
    assert "test_region_outage[killed]  (tests/drills/test_catalog.py::test_region" in out
    table = [line.split() for line in out.splitlines() if line.startswith("  2027-01-15")]
    # date, time, commit, outcome, RTO, s, MTTD, s, p99, ms, availability, regressed
    assert [row[8] for row in table] == ["15.0", "16.0", "17.0"]  # p99, oldest first
    assert [row[4] for row in table] == ["0.00", "0.50", "1.00"]  # RTO
    assert "test_single_gpu_lost" not in out

    assert main(["history", "--store", store_url, "--json", "--last", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in data["drills"]] == ["test_region_outage[killed]",
                                                   "test_single_gpu_lost"]  # fmt: skip
    gpu = data["drills"][1]["runs"]
    assert len(gpu) == 2 and gpu[-1]["regressions"][0]["value"] == "never"

    charts = tmp_path / "charts"
    assert main(["history", "--store", store_url, "--chart", str(charts)]) == 0
    written = sorted(p.name for p in charts.glob("*.png"))
    assert written == ["availability.png", "degraded_share.png", "mttd_s.png", "p99_ms.png",
                       "rto_s.png", "score.png"]  # fmt: skip
    assert all((charts / name).read_bytes()[:4] == b"\x89PNG" for name in written)

    capsys.readouterr()
    assert main(["history", "--store", store_url, "--score"]) == 0
    assert capsys.readouterr().out == "92.0\n"
    assert main(["history", "--store", store_url, "--drill", "nothing-like-it"]) == 2
    assert "matches no recorded drill" in capsys.readouterr().err
