"""Where the drill history lives, as one URL: a SQLite file or a PostgreSQL database.

::

    sqlite:///.chaosrec/history.sqlite        a file, relative to a base folder (the rootdir)
    sqlite:////var/lib/chaosrec/history.sqlite    an absolute path (four slashes)
    postgresql://drills@db.internal:5432/chaosrec a team's shared store (also postgres://)
    off                                       no history

The slashes follow SQLAlchemy's convention. A PostgreSQL URL is handed to libpq as it
is, so its query parameters (``?sslmode=require&connect_timeout=5``) work, and so do
``PGPASSWORD`` and ``~/.pgpass``, which keep the password out of the URL. Wherever a
URL is shown (messages, the drill summary, the store itself) its credentials are
replaced by ``***`` (:func:`chaosrec.core.redact.redact_url`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from chaosrec.core.redact import redact_url
from chaosrec.errors import ConfigError

__all__ = ["DEFAULT_SQLITE_PATH", "OFF_WORDS", "HistoryURL", "parse_history_url"]

#: the default store, relative to the rootdir
DEFAULT_SQLITE_PATH = Path(".chaosrec") / "history.sqlite"
#: values that switch recording off
OFF_WORDS = ("off", "none", "false", "no", "0")

_ALLOWED = (
    "sqlite:///PATH (relative to the rootdir), sqlite:////ABSOLUTE/PATH, "
    "postgresql://USER@HOST:PORT/DATABASE or off"
)


@dataclass(frozen=True)
class HistoryURL:
    """A parsed store URL. ``url`` may hold credentials: show :attr:`shown` instead."""

    scheme: str  # "sqlite" or "postgresql"
    url: str
    path: Path | None = None  # the SQLite file (absolute)

    @property
    def shown(self) -> str:
        """The URL without credentials, for messages and reports."""
        return redact_url(self.url)

    def __repr__(self) -> str:  # never the credentials
        return f"HistoryURL({self.shown!r})"


def parse_history_url(
    text: str, *, base: Path | None = None, source: str = "--chaosrec-history"
) -> HistoryURL | None:
    """Parse a store URL (see the module doc); None for ``off``.

    :param base: the folder a relative SQLite path is resolved against (default: the
        current folder).
    :param source: how messages name where the URL came from.
    :raises ConfigError: one line naming ``source``, the URL without credentials and
        what is allowed.
    """
    value = str(text).strip()
    if value.lower() in OFF_WORDS:
        return None
    shown = redact_url(value)
    if value.startswith("sqlite:"):
        rest = value[len("sqlite:") :]
        if not rest.startswith("///") or len(rest) == 3:
            raise ConfigError(
                f"{source}={shown!r}: a SQLite URL is sqlite:/// and a path (relative to the "
                "rootdir), or sqlite://// and an absolute path; use " + _ALLOWED
            )
        path = Path(rest[3:]).expanduser()
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        if path.is_dir():
            raise ConfigError(
                f"{source}={shown!r}: {path} is a folder; name the SQLite file inside it, "
                f"e.g. sqlite:///{DEFAULT_SQLITE_PATH}"
            )
        return HistoryURL("sqlite", f"sqlite:///{path}", path)
    if value.startswith(("postgresql://", "postgres://")):
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as err:
            raise ConfigError(f"{source}={shown!r}: not a valid PostgreSQL URL ({err})") from err
        return HistoryURL("postgresql", value)
    raise ConfigError(f"{source}={shown!r}: unknown history store; use {_ALLOWED}")
