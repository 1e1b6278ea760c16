"""The drill history store: every run of every drill, kept to compare drills over time.

One schema (:mod:`.schema`, versioned and migrated by chaosrec) on a SQLite file (the
default: no server) or a PostgreSQL database (a team's shared store), chosen by one URL
(:mod:`.url`). :func:`open_store` gives a :class:`HistoryStore` that records a run in one
transaction and reads runs back; the records are :mod:`.records`. Nothing secret is
stored: every text passes through :func:`chaosrec.core.redact.redact` first.

psycopg (the ``history`` extra) is imported only when a PostgreSQL store is opened.
"""

from chaosrec.adapters.history.records import (
    FIGURE_COLUMNS,
    DrillRecord,
    FaultRecord,
    ObjectiveRecord,
    PastDrill,
    RunRecord,
    RunSummary,
)
from chaosrec.adapters.history.schema import SCHEMA_VERSION
from chaosrec.adapters.history.store import HistoryStore, open_store
from chaosrec.adapters.history.url import DEFAULT_SQLITE_PATH, HistoryURL, parse_history_url

__all__ = [
    "DEFAULT_SQLITE_PATH",
    "FIGURE_COLUMNS",
    "SCHEMA_VERSION",
    "DrillRecord",
    "FaultRecord",
    "HistoryStore",
    "HistoryURL",
    "ObjectiveRecord",
    "PastDrill",
    "RunRecord",
    "RunSummary",
    "open_store",
    "parse_history_url",
]
