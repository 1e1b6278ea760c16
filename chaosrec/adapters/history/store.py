"""The drill history store: records runs, reads them back, one schema on SQLite or
PostgreSQL.

:func:`open_store` takes a store URL (:mod:`.url`) and gives a :class:`HistoryStore`:

* ``record(run)`` writes a run, its drills and every drill's objectives, faults, effects
  and regressions in **one transaction**: a run killed while it is being written leaves
  nothing behind, never half a run;
* ``recent(drill)`` gives the drill's latest passed runs (same drill, topology, target
  and faults), newest first: the history a regression is judged against;
* ``runs(...)`` and ``drills(...)`` read for reports and ``chaosrec history``.

**Nothing secret is stored.** Every text and every parameter passes through
:func:`chaosrec.core.redact.redact` on its way in (URLs lose their ``user:pass@``,
secret-looking parameters their values), whatever the caller already did.

Opening for writing creates the store and applies missing migrations (:mod:`.schema`);
opening with ``read_only=True`` changes nothing and reads older schema versions as
they are. Errors of the database are raised as :class:`~chaosrec.errors.HistoryError`,
naming the store by its URL without credentials.

Example::

    with open_store("sqlite:///.chaosrec/history.sqlite") as store:
        store.record(run)
        past = store.recent(run.drills[0], limit=10)
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, Self

from chaosrec.adapters.history.records import (
    DrillRecord,
    FaultRecord,
    ObjectiveRecord,
    PastDrill,
    RunRecord,
    RunSummary,
)
from chaosrec.adapters.history.schema import (
    MIGRATIONS,
    SCHEMA_DDL,
    SCHEMA_TABLE,
    SCHEMA_VERSION,
    Dialect,
)
from chaosrec.adapters.history.url import HistoryURL, parse_history_url
from chaosrec.core.redact import redact, redact_text
from chaosrec.errors import HistoryError
from chaosrec.slo.effects import Effect
from chaosrec.slo.regression import Regression

__all__ = ["Backend", "HistoryStore", "open_store"]


def _chaosrec_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chaosrec")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


class Backend(Protocol):
    """What the store needs from a database connection (:mod:`.sqlite`, :mod:`.postgres`)."""

    dialect: Dialect
    shown: str  # the store's URL without credentials
    errors: tuple[type[Exception], ...]  # the driver's error classes

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def transaction(self) -> contextlib.AbstractContextManager[None]: ...
    def lock_schema(self) -> None: ...
    def table_exists(self, name: str) -> bool: ...
    def close(self) -> None: ...


# -- values in and out ----------------------------------------------------------------------


def _text(value: str | None) -> str | None:
    return None if value is None else redact_text(str(value))


def _json(value: Any) -> str:
    return json.dumps(redact(value), sort_keys=True, default=str)


def _float(value: float | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(bool(value))


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


# -- columns, in the order of the INSERTs and SELECTs ----------------------------------------

_RUN_COLUMNS = (
    "run_id", "started_at", "ended_at", "commit_sha", "dirty", "branch", "chaosrec_version",
    "host", "front", "topology", "topology_hash", "target", "drill_count", "score",
)  # fmt: skip
_DRILL_COLUMNS = (
    "run_id", "seq", "drill_id", "name", "kind", "params", "topology", "topology_hash",
    "target", "signature", "outcome", "verdict", "category", "started_at", "duration_s",
    "requests", "answered", "availability", "p50_ms", "p99_ms", "degraded_share", "rto_s",
    "mttd_s", "blast_radius", "weight", "send_lag_p99_ms",
)  # fmt: skip
_OBJECTIVE_COLUMNS = (
    "run_id", "seq", "position", "name", "target", "status", "value", "measured", "span",
)  # fmt: skip
_FAULT_COLUMNS = (
    "run_id", "seq", "position", "label", "kind", "targets", "params", "injecting_at",
    "started_at", "ended_at", "touched",
)  # fmt: skip
_EFFECT_COLUMNS = (
    "run_id", "seq", "position", "metric", "baseline", "fault", "delta", "ci_low", "ci_high",
    "confidence", "n_baseline", "n_fault",
)  # fmt: skip
_REGRESSION_COLUMNS = (
    "run_id", "seq", "figure", "value", "median", "spread", "threshold", "runs",
)  # fmt: skip
_SCHEMA_COLUMNS = ("version", "compatible_with", "applied_at", "chaosrec_version", "summary")
#: columns added after schema version 1, by the version that added them
_ADDED_IN = {"score": 2, "blast_radius": 2, "weight": 2, "send_lag_p99_ms": 2}
_TABLE_ADDED_IN = {"chaosrec_effects": 2, "chaosrec_regressions": 2}


def _insert(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


class HistoryStore:
    """Runs of drills over time, in a SQLite file or a PostgreSQL database (see the
    module doc). Use :func:`open_store`; a context manager that closes it."""

    def __init__(self, backend: Backend, *, read_only: bool = False) -> None:
        self._db = backend
        self.read_only = read_only
        self.version = 0  #: the store's schema version (0: nothing recorded yet)
        self.compatible_with = 0
        with self._errors("read the schema version of"):
            self._read_version()
        if self.compatible_with > SCHEMA_VERSION:
            raise HistoryError(
                f"the drill history {self.shown} has schema version {self.version}, written "
                f"by a newer chaosrec, which this one (schema {SCHEMA_VERSION}) cannot use; "
                "upgrade chaosrec"
            )

    @property
    def shown(self) -> str:
        """The store's URL without credentials."""
        return self._db.shown

    @property
    def backend(self) -> Backend:
        """The database connection underneath, for raw SQL (tests, migrations tools)."""
        return self._db

    def __repr__(self) -> str:
        return f"HistoryStore({self.shown!r}, schema {self.version})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(*self._db.errors):
            self._db.close()

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except self._db.errors as err:
            reason = redact_text(str(err).strip().splitlines()[0] if str(err).strip() else "")
            raise HistoryError(
                f"cannot {action} the drill history {self.shown}: {reason or type(err).__name__}"
            ) from err

    def _sql(self, statement: str) -> str:
        return self._db.dialect.sql(statement)

    def _query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.query(self._sql(statement), params)

    # -- schema -----------------------------------------------------------------------------

    def _read_version(self) -> None:
        if not self._db.table_exists(SCHEMA_TABLE):
            self.version = self.compatible_with = 0
            return
        rows = self._query(
            f"SELECT version, compatible_with FROM {SCHEMA_TABLE} ORDER BY version DESC"
        )
        self.version, self.compatible_with = (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)

    def migrate(self, up_to: int = SCHEMA_VERSION) -> int:
        """Apply the migrations the store is missing, up to version ``up_to`` (default:
        this chaosrec's), in one transaction under a lock; the store's version after.
        ``up_to`` below :data:`SCHEMA_VERSION` is for testing upgrades of older stores."""
        if self.read_only:
            raise HistoryError(f"the drill history {self.shown} was opened read-only")
        with self._errors("migrate"), self._db.transaction():
            self._db.lock_schema()
            self._db.execute(self._sql(SCHEMA_DDL))
            self._read_version()  # again, under the lock: another session may have done it
            for migration in MIGRATIONS:
                if self.version < migration.version <= up_to:
                    for statement in migration.statements:
                        self._db.execute(self._sql(statement))
                    self._db.execute(
                        self._sql(_insert(SCHEMA_TABLE, _SCHEMA_COLUMNS)),
                        (
                            migration.version,
                            migration.compatible_with,
                            time.time(),
                            _chaosrec_version(),
                            migration.summary,
                        ),
                    )
                    self.version = migration.version
                    self.compatible_with = migration.compatible_with
        return self.version

    def _has(self, column_or_table: str) -> bool:
        needed = _ADDED_IN.get(column_or_table) or _TABLE_ADDED_IN.get(column_or_table) or 1
        return self.version >= needed

    def _select(self, columns: Sequence[str], prefix: str) -> str:
        """``prefix.column`` for each column, or NULL for one this store's version lacks."""
        return ", ".join(f"{prefix}.{c}" if self._has(c) else "NULL" for c in columns)

    # -- writing ----------------------------------------------------------------------------

    def record(self, run: RunRecord) -> None:
        """Write ``run`` and all of its drills in one transaction (all or nothing).

        :raises HistoryError: the store is read-only, too old to write (open it for
            writing: that migrates it) or the database refused; nothing was written.
        """
        if self.read_only:
            raise HistoryError(f"the drill history {self.shown} was opened read-only")
        if self.version < SCHEMA_VERSION:
            raise HistoryError(
                f"the drill history {self.shown} is at schema {self.version}; migrate() it "
                f"to {SCHEMA_VERSION} before recording"
            )
        drills, objectives, faults, effects, regressions = [], [], [], [], []
        for seq, d in enumerate(run.drills):
            drills.append(
                (
                    run.run_id, seq, _text(d.drill_id), _text(d.name), d.kind, _json(d.params),
                    _text(d.topology), d.topology_hash, _text(d.target), d.signature, d.outcome,
                    d.verdict, _text(d.category), _float(d.started_at), _float(d.duration_s),
                    d.requests, d.answered, _float(d.availability), _float(d.p50_ms),
                    _float(d.p99_ms), _float(d.degraded_share), _float(d.rto_s), _float(d.mttd_s),
                    d.blast_radius, _float(d.weight), _float(d.send_lag_p99_ms),
                )
            )  # fmt: skip
            for i, o in enumerate(d.objectives):
                objectives.append(
                    (run.run_id, seq, i, o.name, _text(o.target), o.status, _float(o.value),
                     _text(o.measured), _text(o.span))
                )  # fmt: skip
            for i, f in enumerate(d.faults):
                faults.append(
                    (run.run_id, seq, i, _text(f.label), f.kind, _json(list(f.targets)),
                     _json(f.params), _float(f.injecting_at), _float(f.started_at),
                     _float(f.ended_at), _flag(f.touched))
                )  # fmt: skip
            for i, e in enumerate(d.effects):
                effects.append(
                    (run.run_id, seq, i, e.metric, _float(e.baseline), _float(e.fault),
                     _float(e.delta), _float(e.ci_low), _float(e.ci_high), _float(e.confidence),
                     e.n_baseline, e.n_fault)
                )  # fmt: skip
            for r in d.regressions:
                regressions.append(
                    (run.run_id, seq, r.figure, _float(r.value), _float(r.median),
                     _float(r.spread), _float(r.threshold), r.runs)
                )  # fmt: skip
        run_row = (
            run.run_id, run.started_at, _float(run.ended_at), run.commit, _flag(run.dirty),
            _text(run.branch), run.chaosrec_version, _text(run.host), run.front,
            _text(run.topology), run.topology_hash, _text(run.target), len(run.drills),
            _float(run.score),
        )  # fmt: skip
        with self._errors("record a run in"), self._db.transaction():
            self._db.execute(self._sql(_insert("chaosrec_runs", _RUN_COLUMNS)), run_row)
            for table, columns, rows in (
                ("chaosrec_drills", _DRILL_COLUMNS, drills),
                ("chaosrec_objectives", _OBJECTIVE_COLUMNS, objectives),
                ("chaosrec_faults", _FAULT_COLUMNS, faults),
                ("chaosrec_effects", _EFFECT_COLUMNS, effects),
                ("chaosrec_regressions", _REGRESSION_COLUMNS, regressions),
            ):
                self._db.executemany(self._sql(_insert(table, columns)), rows)

    # -- reading ----------------------------------------------------------------------------

    def _run_from(self, row: Sequence[Any]) -> RunSummary:
        (run_id, started_at, ended_at, commit, dirty, branch, version, host, front, topology,
         topology_hash, target, drill_count, score) = row  # fmt: skip
        return RunSummary(
            run_id=str(run_id),
            started_at=float(started_at),
            ended_at=_opt_float(ended_at),
            commit=commit,
            dirty=_bool(dirty),
            branch=branch,
            chaosrec_version=str(version),
            host=host,
            front=str(front),
            topology=str(topology),
            topology_hash=str(topology_hash),
            target=str(target),
            drill_count=int(drill_count),
            score=_opt_float(score),
        )

    def _drill_from(self, row: Sequence[Any]) -> DrillRecord:
        (_run_id, _seq, drill_id, name, kind, params, topology, topology_hash, target, signature,
         outcome, verdict, category, started_at, duration_s, requests, answered, availability,
         p50_ms, p99_ms, degraded_share, rto_s, mttd_s, blast_radius, weight,
         send_lag_p99_ms) = row  # fmt: skip
        return DrillRecord(
            drill_id=str(drill_id),
            name=str(name),
            kind=str(kind),
            params=json.loads(params) if params else {},
            topology=str(topology),
            topology_hash=str(topology_hash),
            target=str(target),
            signature=str(signature),
            outcome=str(outcome),
            verdict=verdict,
            category=category,
            started_at=_opt_float(started_at),
            duration_s=_opt_float(duration_s),
            requests=_opt_int(requests),
            answered=_opt_int(answered),
            availability=_opt_float(availability),
            p50_ms=_opt_float(p50_ms),
            p99_ms=_opt_float(p99_ms),
            degraded_share=_opt_float(degraded_share),
            rto_s=_opt_float(rto_s),
            mttd_s=_opt_float(mttd_s),
            blast_radius=blast_radius,
            weight=_opt_float(weight),
            send_lag_p99_ms=_opt_float(send_lag_p99_ms),
        )

    def _past(
        self, where: str, params: Sequence[Any], *, limit: int | None, children: bool
    ) -> list[PastDrill]:
        if self.version == 0:
            return []
        statement = (
            f"SELECT {self._select(_RUN_COLUMNS, 'r')}, {self._select(_DRILL_COLUMNS, 'd')} "
            "FROM chaosrec_drills d JOIN chaosrec_runs r ON r.run_id = d.run_id "
            f"WHERE {where} ORDER BY r.started_at DESC, d.seq"
        )
        if limit is not None:
            statement += f" LIMIT {int(limit)}"
        n_run = len(_RUN_COLUMNS)
        with self._errors("read"):
            rows = self._query(statement, params)
            past = [
                PastDrill(run=self._run_from(row[:n_run]), drill=self._drill_from(row[n_run:]))
                for row in rows
            ]
            keys = [(row[n_run], int(row[n_run + 1])) for row in rows]
            if children and past:
                past = self._with_children(past, keys)
        return past

    def recent(
        self,
        drill: DrillRecord,
        *,
        limit: int = 10,
        before: float | None = None,
        outcomes: Sequence[str] = ("passed",),
        children: bool = False,
    ) -> list[PastDrill]:
        """The latest runs of ``drill`` (same ``drill_id``, topology, target and fault
        signature) whose outcome is in ``outcomes``, newest first, at most ``limit``;
        only runs started before ``before`` (epoch seconds) when given; with their
        objectives, faults, effects and regressions when ``children``."""
        marks = ", ".join("?" * len(outcomes))
        where = (
            "d.drill_id = ? AND d.topology_hash = ? AND d.target = ? AND d.signature = ? "
            f"AND d.outcome IN ({marks})"
        )
        params: list[Any] = [
            redact_text(drill.drill_id), drill.topology_hash, redact_text(drill.target),
            drill.signature, *outcomes,
        ]  # fmt: skip
        if before is not None:
            where += " AND r.started_at < ?"
            params.append(before)
        return self._past(where, params, limit=limit, children=children)

    def drill_names(self, *, since: float | None = None) -> list[tuple[str, str]]:
        """Every ``(drill_id, name)`` recorded (since ``since``), sorted by name."""
        if self.version == 0:
            return []
        where, params = ("WHERE r.started_at >= ?", [since]) if since is not None else ("", [])
        with self._errors("read"):
            rows = self._query(
                "SELECT DISTINCT d.drill_id, d.name FROM chaosrec_drills d "
                f"JOIN chaosrec_runs r ON r.run_id = d.run_id {where}",
                params,
            )
        return sorted(((str(a), str(b)) for a, b in rows), key=lambda pair: (pair[1], pair[0]))

    def drill_runs(
        self, drill_id: str, *, last: int | None = None, since: float | None = None
    ) -> list[PastDrill]:
        """Every recorded run of ``drill_id`` (any topology, target or outcome), newest
        first, with objectives, faults, effects and regressions."""
        where = "d.drill_id = ?"
        params: list[Any] = [redact_text(drill_id)]
        if since is not None:
            where += " AND r.started_at >= ?"
            params.append(since)
        return self._past(where, params, limit=last, children=True)

    def runs(
        self,
        *,
        last: int | None = None,
        since: float | None = None,
        topology_hash: str | None = None,
        target: str | None = None,
        before: float | None = None,
    ) -> list[RunSummary]:
        """Recorded runs, newest first (filtered when arguments are given)."""
        if self.version == 0:
            return []
        clauses, params = [], []
        for clause, value in (
            ("r.started_at >= ?", since),
            ("r.started_at < ?", before),
            ("r.topology_hash = ?", topology_hash),
            ("r.target = ?", None if target is None else redact_text(target)),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        statement = (
            f"SELECT {self._select(_RUN_COLUMNS, 'r')} FROM chaosrec_runs r {where} "
            "ORDER BY r.started_at DESC"
        )
        if last is not None:
            statement += f" LIMIT {int(last)}"
        with self._errors("read"):
            return [self._run_from(row) for row in self._query(statement, params)]

    def _with_children(self, past: list[PastDrill], keys: list[tuple[str, int]]) -> list[PastDrill]:
        """``past`` with each drill's objectives, faults, effects and regressions."""
        objectives: dict[tuple[str, int], list[ObjectiveRecord]] = {}
        faults: dict[tuple[str, int], list[FaultRecord]] = {}
        effects: dict[tuple[str, int], list[Effect]] = {}
        regressions: dict[tuple[str, int], list[Regression]] = {}
        run_ids = sorted({run_id for run_id, _ in keys})
        for start in range(0, len(run_ids), 200):
            chunk = run_ids[start : start + 200]
            marks = ", ".join("?" * len(chunk))
            for row in self._query(
                f"SELECT {', '.join(_OBJECTIVE_COLUMNS)} FROM chaosrec_objectives "
                f"WHERE run_id IN ({marks}) ORDER BY run_id, seq, position",
                chunk,
            ):
                run_id, seq, _, name, target, status, value, measured, span = row
                objectives.setdefault((run_id, int(seq)), []).append(
                    ObjectiveRecord(
                        name=name, target=target, status=status, value=_opt_float(value),
                        measured=measured, span=span,
                    )
                )  # fmt: skip
            for row in self._query(
                f"SELECT {', '.join(_FAULT_COLUMNS)} FROM chaosrec_faults "
                f"WHERE run_id IN ({marks}) ORDER BY run_id, seq, position",
                chunk,
            ):
                run_id, seq, _, label, kind, targets, params, inj, started, ended, touched = row
                faults.setdefault((run_id, int(seq)), []).append(
                    FaultRecord(
                        label=label, kind=kind, targets=tuple(json.loads(targets)),
                        params=json.loads(params), injecting_at=_opt_float(inj),
                        started_at=_opt_float(started), ended_at=_opt_float(ended),
                        touched=_bool(touched),
                    )
                )  # fmt: skip
            if self._has("chaosrec_effects"):
                for row in self._query(
                    f"SELECT {', '.join(_EFFECT_COLUMNS)} FROM chaosrec_effects "
                    f"WHERE run_id IN ({marks}) ORDER BY run_id, seq, position",
                    chunk,
                ):
                    run_id, seq, _, *values = row
                    effects.setdefault((run_id, int(seq)), []).append(
                        Effect.from_dict(dict(zip(_EFFECT_COLUMNS[3:], values, strict=True)))
                    )
            if self._has("chaosrec_regressions"):
                for row in self._query(
                    f"SELECT {', '.join(_REGRESSION_COLUMNS)} FROM chaosrec_regressions "
                    f"WHERE run_id IN ({marks}) ORDER BY run_id, seq, figure",
                    chunk,
                ):
                    run_id, seq, *values = row
                    regressions.setdefault((run_id, int(seq)), []).append(
                        Regression.from_dict(
                            dict(zip(_REGRESSION_COLUMNS[2:], values, strict=True))
                        )
                    )
        out = []
        for item, key in zip(past, keys, strict=True):
            drill = item.drill
            out.append(
                PastDrill(
                    run=item.run,
                    drill=DrillRecord(
                        **{
                            **{f: getattr(drill, f) for f in drill.__dataclass_fields__},
                            "objectives": tuple(objectives.get(key, ())),
                            "faults": tuple(faults.get(key, ())),
                            "effects": tuple(effects.get(key, ())),
                            "regressions": tuple(regressions.get(key, ())),
                        }
                    ),
                )
            )
        return out


def open_store(url: str | HistoryURL, *, read_only: bool = False, base: Any = None) -> HistoryStore:
    """Open (for writing: create and migrate) the store at ``url``.

    :param url: a store URL (:func:`~chaosrec.adapters.history.url.parse_history_url`)
        or a parsed one; ``off`` is refused here.
    :param read_only: never write, never migrate; a missing SQLite file is an error.
    :param base: the folder a relative SQLite path is resolved against.
    :raises ConfigError: a malformed URL.
    :raises MissingExtraError: a PostgreSQL URL without psycopg installed.
    :raises HistoryError: the store cannot be opened, or was written by a chaosrec whose
        schema this one cannot use.
    """
    parsed = url if isinstance(url, HistoryURL) else parse_history_url(url, base=base)
    if parsed is None:
        raise HistoryError("the drill history is off; give a store URL to open one")
    backend: Backend
    if parsed.scheme == "sqlite":
        from chaosrec.adapters.history.sqlite import SQLiteBackend

        assert parsed.path is not None
        backend = SQLiteBackend(parsed.path, read_only=read_only)
    else:
        from chaosrec.adapters.history.postgres import PostgresBackend

        backend = PostgresBackend(parsed.url, read_only=read_only)
    try:
        store = HistoryStore(backend, read_only=read_only)
        if not read_only and store.version < SCHEMA_VERSION:
            store.migrate()
    except BaseException:
        with contextlib.suppress(Exception):
            backend.close()
        raise
    return store
