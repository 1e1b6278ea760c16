"""The history store's schema, as numbered migrations, for SQLite and PostgreSQL.

Every table is prefixed ``chaosrec_`` (a team's shared PostgreSQL database may hold
other things). ``chaosrec_schema`` has one row per migration applied: its ``version``,
the time, the chaosrec version that applied it, and ``compatible_with``, the oldest
schema version whose code may still read and write a store at this version.

* A chaosrec that opens a store for writing applies the migrations it is missing, in one
  transaction under a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on
  PostgreSQL), so two sessions opening a new store at once migrate it once.
* A chaosrec that only reads (``chaosrec history``) never changes the schema: it reads
  an older store as it is, leaving out what that version did not record (version 1 has
  no scores, effects or regressions).
* A store migrated by a newer chaosrec is used as long as its ``compatible_with`` is at
  most this chaosrec's :data:`SCHEMA_VERSION` (new tables and nullable columns keep it
  unchanged); otherwise :class:`~chaosrec.errors.HistoryError` says to upgrade.

Versions:

1. ``chaosrec_runs`` (one row per run: commit and dirty flag, topology, target,
   chaosrec version, host), ``chaosrec_drills`` (one row per drill per run: id, name,
   parameters, outcome, verdict, sample counts, duration, availability, p50/p99,
   degraded share, RTO, MTTD), ``chaosrec_objectives`` (one row per objective: target,
   measured value, status, window) and ``chaosrec_faults`` (one row per fault: kind,
   targets, parameters, timings).
2. The resilience score of a run, each drill's blast radius and weight and its load
   generator's send lag, ``chaosrec_effects`` (fault versus baseline with its interval) and
   ``chaosrec_regressions`` (the figures flagged regressed).

Migrations only add: a column, a table, an index. Changing or dropping one needs a
version whose ``compatible_with`` is itself.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIGRATIONS", "SCHEMA_TABLE", "SCHEMA_VERSION", "Dialect", "Migration"]

SCHEMA_TABLE = "chaosrec_schema"


@dataclass(frozen=True)
class Dialect:
    """What differs between the two databases in chaosrec's SQL: the floating-point type
    and the parameter placeholder (statements are written with ``?`` and ``{double}``)."""

    name: str
    double: str
    placeholder: str

    def sql(self, statement: str) -> str:
        return statement.replace("{double}", self.double).replace("?", self.placeholder)


SQLITE = Dialect("sqlite", "REAL", "?")
POSTGRESQL = Dialect("postgresql", "DOUBLE PRECISION", "%s")


@dataclass(frozen=True)
class Migration:
    """One schema version: the statements that reach it from the version before."""

    version: int
    compatible_with: int
    summary: str
    statements: tuple[str, ...]


SCHEMA_DDL = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (
    version INTEGER PRIMARY KEY,
    compatible_with INTEGER NOT NULL,
    applied_at {{double}} NOT NULL,
    chaosrec_version TEXT NOT NULL,
    summary TEXT NOT NULL
)"""

# a drill's children reference it by (run_id, seq): its position in the run (SQLite wants
# the columns first and the table constraints after them)
_CHILD = "run_id TEXT NOT NULL, seq INTEGER NOT NULL"
_CHILD_OF = "FOREIGN KEY (run_id, seq) REFERENCES chaosrec_drills (run_id, seq) ON DELETE CASCADE"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        1,
        "runs, drills, objectives and faults",
        (
            """CREATE TABLE chaosrec_runs (
                run_id TEXT PRIMARY KEY,
                started_at {double} NOT NULL,
                ended_at {double},
                commit_sha TEXT,
                dirty INTEGER,
                branch TEXT,
                chaosrec_version TEXT NOT NULL,
                host TEXT,
                front TEXT NOT NULL,
                topology TEXT NOT NULL,
                topology_hash TEXT NOT NULL,
                target TEXT NOT NULL,
                drill_count INTEGER NOT NULL
            )""",
            "CREATE INDEX chaosrec_runs_started ON chaosrec_runs (started_at)",
            """CREATE TABLE chaosrec_drills (
                run_id TEXT NOT NULL REFERENCES chaosrec_runs (run_id) ON DELETE CASCADE,
                seq INTEGER NOT NULL,
                drill_id TEXT NOT NULL,
                name TEXT NOT NULL,
                kind TEXT NOT NULL,
                params TEXT NOT NULL,
                topology TEXT NOT NULL,
                topology_hash TEXT NOT NULL,
                target TEXT NOT NULL,
                signature TEXT NOT NULL,
                outcome TEXT NOT NULL,
                verdict TEXT,
                category TEXT,
                started_at {double},
                duration_s {double},
                requests BIGINT,
                answered BIGINT,
                availability {double},
                p50_ms {double},
                p99_ms {double},
                degraded_share {double},
                rto_s {double},
                mttd_s {double},
                PRIMARY KEY (run_id, seq)
            )""",
            "CREATE INDEX chaosrec_drills_by_drill ON chaosrec_drills "
            "(drill_id, topology_hash, target, signature)",
            "CREATE INDEX chaosrec_drills_by_name ON chaosrec_drills (name)",
            f"""CREATE TABLE chaosrec_objectives (
                {_CHILD},
                position INTEGER NOT NULL,
                name TEXT NOT NULL,
                target TEXT NOT NULL,
                status TEXT NOT NULL,
                value {{double}},
                measured TEXT NOT NULL,
                span TEXT NOT NULL,
                PRIMARY KEY (run_id, seq, position),
                {_CHILD_OF}
            )""",
            f"""CREATE TABLE chaosrec_faults (
                {_CHILD},
                position INTEGER NOT NULL,
                label TEXT NOT NULL,
                kind TEXT NOT NULL,
                targets TEXT NOT NULL,
                params TEXT NOT NULL,
                injecting_at {{double}},
                started_at {{double}},
                ended_at {{double}},
                touched INTEGER,
                PRIMARY KEY (run_id, seq, position),
                {_CHILD_OF}
            )""",
        ),
    ),
    Migration(
        2,
        1,
        "resilience score, blast radius and weight, send lag, effects and regressions",
        (
            "ALTER TABLE chaosrec_runs ADD COLUMN score {double}",
            "ALTER TABLE chaosrec_drills ADD COLUMN blast_radius TEXT",
            "ALTER TABLE chaosrec_drills ADD COLUMN weight {double}",
            "ALTER TABLE chaosrec_drills ADD COLUMN send_lag_p99_ms {double}",
            f"""CREATE TABLE chaosrec_effects (
                {_CHILD},
                position INTEGER NOT NULL,
                metric TEXT NOT NULL,
                baseline {{double}} NOT NULL,
                fault {{double}} NOT NULL,
                delta {{double}} NOT NULL,
                ci_low {{double}} NOT NULL,
                ci_high {{double}} NOT NULL,
                confidence {{double}} NOT NULL,
                n_baseline BIGINT NOT NULL,
                n_fault BIGINT NOT NULL,
                PRIMARY KEY (run_id, seq, position),
                {_CHILD_OF}
            )""",
            f"""CREATE TABLE chaosrec_regressions (
                {_CHILD},
                figure TEXT NOT NULL,
                value {{double}} NOT NULL,
                median {{double}} NOT NULL,
                spread {{double}} NOT NULL,
                threshold {{double}} NOT NULL,
                runs INTEGER NOT NULL,
                PRIMARY KEY (run_id, seq, figure),
                {_CHILD_OF}
            )""",
        ),
    ),
)

#: the schema version this chaosrec writes
SCHEMA_VERSION = MIGRATIONS[-1].version
