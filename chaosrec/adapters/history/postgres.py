"""The PostgreSQL backend: a team's shared store (CI runners are thrown away, the
history is not). Needs psycopg 3 (``pip install 'chaosrec[history]'``).

One connection in autocommit mode; a write is one transaction (``conn.transaction()``),
so a run killed while it is being recorded leaves nothing: the server rolls back a
transaction whose connection went away. Migrations take a transaction-level advisory
lock, so two sessions meeting a new database migrate it once.

The URL goes to libpq as it is (``sslmode``, ``connect_timeout``, ``PGPASSWORD`` and
``~/.pgpass`` all work); without ``connect_timeout`` in it, chaosrec waits 10 s for a
connection rather than libpq's forever.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from chaosrec.adapters.history.schema import POSTGRESQL, Dialect
from chaosrec.core.extras import require
from chaosrec.core.redact import redact_text, redact_url
from chaosrec.errors import HistoryError

__all__ = ["PostgresBackend"]

# pg_advisory_xact_lock key of chaosrec's schema migrations ("chaosrec" in ASCII, folded)
_MIGRATION_LOCK = 0x6368616F73726563 & 0x7FFFFFFFFFFFFFFF
_CONNECT_TIMEOUT_S = 10


class PostgresBackend:
    """A PostgreSQL database named by a ``postgresql://`` URL."""

    dialect: Dialect = POSTGRESQL

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        psycopg = require("psycopg", extra="history", feature="a PostgreSQL drill history")
        self.shown = redact_url(url)
        self.errors: tuple[type[Exception], ...] = (psycopg.Error,)
        options: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in url:
            options["connect_timeout"] = _CONNECT_TIMEOUT_S
        try:
            self._conn = psycopg.connect(url, **options)
        except psycopg.Error as err:
            # libpq's message may repeat the connection string: show it redacted
            reason = redact_text(str(err).strip().splitlines()[0] if str(err).strip() else "")
            raise HistoryError(
                f"cannot connect to the drill history {self.shown}: {reason or type(err).__name__}"
                "; check the URL, that the server is up and that this host may connect"
            ) from err
        self.read_only = read_only

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self._conn.cursor() as cursor:
                cursor.executemany(sql, [tuple(r) for r in rows])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._conn.execute(sql, tuple(params)).fetchall()]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing (rolled back on an exception or a lost connection)."""
        with self._conn.transaction():
            yield

    def lock_schema(self) -> None:
        """Serialize migrations between sessions until this transaction ends."""
        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))

    def table_exists(self, name: str) -> bool:
        rows = self.query(
            "SELECT 1 FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (name,),
        )
        return bool(rows)

    def close(self) -> None:
        self._conn.close()
