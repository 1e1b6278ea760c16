"""The SQLite backend: a file, no server; the default store.

One connection in autocommit mode; a write is one ``BEGIN IMMEDIATE`` transaction, which
takes SQLite's write lock at once (two sessions writing the same file wait for each
other, up to ``timeout_s``, instead of failing half-way). SQLite's rollback journal makes
a transaction all or nothing, also when the process is killed in the middle of it: the
next connection rolls the journal back.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from chaosrec.adapters.history.schema import SQLITE, Dialect
from chaosrec.errors import HistoryError

__all__ = ["SQLiteBackend"]


class SQLiteBackend:
    """A SQLite file; ``read_only`` opens an existing file without ever writing to it."""

    dialect: Dialect = SQLITE
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, path: Path, *, read_only: bool = False, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.shown = f"sqlite:///{self.path}"
        if read_only and not self.path.is_file():
            raise HistoryError(
                f"no drill history at {self.shown}: no drill has been recorded there yet "
                "(run the drills first, or give --store URL)"
            )
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        mode = "ro" if read_only else "rwc"
        try:
            self._conn = sqlite3.connect(
                f"file:{quote(str(self.path))}?mode={mode}",
                uri=True,
                isolation_level=None,  # autocommit; transactions are explicit
                timeout=timeout_s,
            )
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as err:
            raise HistoryError(f"cannot open the drill history {self.shown}: {err}") from err

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._conn.executemany(sql, [tuple(r) for r in rows])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._conn.execute(sql, tuple(params)).fetchall()]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing; holds the write lock from the start."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def lock_schema(self) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already excludes other writers."""

    def table_exists(self, name: str) -> bool:
        rows = self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return bool(rows)

    def close(self) -> None:
        self._conn.close()
