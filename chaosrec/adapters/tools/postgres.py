"""PostgreSQL's server binaries, and a throwaway cluster on loopback.

The drill history's shared store is PostgreSQL; chaosrec tests that path against a real
server it starts itself, and :class:`PostgresServer` lets anyone try a shared store
locally. The binaries come from Debian's ``postgresql`` package (``apt-get install -y
postgresql``, which ``chaosrec setup`` runs as root): Debian keeps them in
``/usr/lib/postgresql/<major>/bin``, off ``PATH``. ``$POSTGRES_BIN`` (the ``postgres``
server binary; ``initdb`` and ``createdb`` are taken from its folder) overrides the
search.

Example::

    with PostgresServer() as server:           # initdb + postgres on 127.0.0.1, ~2 s
        url = server.create_database("drills")  # postgresql://chaosrec@127.0.0.1:PORT/drills
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Self

from chaosrec.adapters.ports import free_port
from chaosrec.adapters.process.manager import ManagedProcess, StartFailed
from chaosrec.adapters.process.scratch import scratch_dir
from chaosrec.adapters.tools._run import executable, first_line, from_env, run_tool, tool_output
from chaosrec.errors import ConfigError, SetupError, ToolNotFoundError

__all__ = [
    "PostgresServer",
    "find_postgres_bindir",
    "install_postgres",
    "postgres_version",
]

_DEBIAN_BINDIRS = "/usr/lib/postgresql"
_NEEDED = ("initdb", "postgres")
_READY = "database system is ready to accept connections"
_BIND_FAILED = re.compile(r"could not (bind|create listen socket)|Address already in use")
_SCRATCH_PREFIX = "chaosrec-postgres-"


def _complete(bindir: Path) -> bool:
    return all(executable(bindir / name) for name in _NEEDED)


def find_postgres_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``: ``$POSTGRES_BIN``'s, else the one
    an ``initdb`` on ``PATH`` really lives in, else Debian's newest
    ``/usr/lib/postgresql/<major>/bin``; None when there is none.

    Raises:
        ToolNotFoundError: ``$POSTGRES_BIN`` is set but is not an executable file, or
            its folder has no ``initdb``.
    """
    explicit = from_env("POSTGRES_BIN", "the postgres server binary")
    if explicit is not None:
        bindir = explicit.resolve().parent
        if not _complete(bindir):
            raise ToolNotFoundError(
                f"POSTGRES_BIN={explicit} has no initdb next to it in {bindir}; point it at "
                "the postgres binary of a full server installation"
            )
        return bindir
    on_path = shutil.which("initdb")
    if on_path is not None and _complete(Path(on_path).resolve().parent):
        return Path(on_path).resolve().parent
    candidates = []
    for bindir in Path(_DEBIAN_BINDIRS).glob("*/bin"):
        major = bindir.parent.name
        if major.isdigit() and _complete(bindir):
            candidates.append((int(major), bindir))
    return max(candidates)[1] if candidates else None


def postgres_version(bindir: Path) -> str:
    """``15.18`` from ``postgres --version`` (the whole first line if it has no number)."""
    line = first_line(tool_output(bindir / "postgres", ["--version"]))
    found = re.search(r"\) (\d+(?:\.\d+)+)", line)
    return found.group(1) if found else line


def install_postgres(timeout_s: float = 900.0) -> Path:
    """The PostgreSQL server's bin folder, installing Debian's ``postgresql`` with
    apt-get if needed.

    Raises:
        ToolNotFoundError: none found and this is not a root shell with ``apt-get``
            (the message says what to run instead).
        SetupError: ``apt-get`` failed; its output tail is noted.
    """
    found = find_postgres_bindir()
    if found is not None:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise ToolNotFoundError(
            "no PostgreSQL server found (POSTGRES_BIN unset, no initdb on PATH or in "
            f"{_DEBIAN_BINDIRS}) and chaosrec can install it only as root with apt-get; run "
            "`sudo apt-get install -y postgresql` or set POSTGRES_BIN (needed only to test a "
            "PostgreSQL drill history)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    fix = "check access to Debian's package mirrors, or install postgresql yourself"
    run_tool([apt, "update"], env=env, timeout_s=timeout_s, fix=fix)
    run_tool(
        [apt, "install", "-y", "--no-install-recommends", "postgresql"],
        env=env,
        timeout_s=timeout_s,
        fix=fix,
    )
    found = find_postgres_bindir()
    if found is None:
        raise SetupError(
            f"apt-get installed postgresql but no initdb is in {_DEBIAN_BINDIRS}/*/bin; "
            "set POSTGRES_BIN to its postgres binary"
        )
    return found


class _BindFailed(StartFailed):
    """The server could not bind its port; the start may be retried on another."""


class PostgresServer:
    """A throwaway PostgreSQL cluster: ``initdb`` in a scratch folder, ``postgres`` on
    127.0.0.1 and a free port, trusting local connections of user ``user``; :meth:`stop`
    shuts it down and deletes the folder. The server is a
    :class:`~chaosrec.adapters.process.manager.ManagedProcess`: it dies with this
    Python process, and the next session sweeps it if that failed.

    ``initdb`` refuses to run as root, so as root both run as the ``postgres`` system
    user (which Debian's package creates) through ``setpriv``, in a folder owned by it.
    Durability is switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``):
    a test server loses nothing it needs on a crash, and starts and writes faster.

    :param bindir: where ``initdb`` and ``postgres`` are (default: :func:`install_postgres`).
    :param user: the cluster's superuser name.
    :param start_timeout_s: how long to wait for connections to be accepted.
    :param bind_attempts: ports to try when another process takes the first.
    """

    def __init__(
        self,
        bindir: Path | None = None,
        *,
        user: str = "chaosrec",
        start_timeout_s: float = 60.0,
        bind_attempts: int = 3,
    ) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", user):
            raise ConfigError(f"user={user!r} must be a lowercase PostgreSQL role name")
        self.bindir = bindir
        self.user = user
        self.start_timeout_s = start_timeout_s
        self.bind_attempts = bind_attempts
        self.port: int | None = None
        self.folder: Path | None = None
        self.started_in_s: float | None = None  #: initdb to accepting connections
        self._proc: ManagedProcess | None = None
        self._as: list[str] = []

    def __repr__(self) -> str:
        return f"PostgresServer(port={self.port}, {'running' if self.running else 'stopped'})"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.alive

    def url(self, database: str = "postgres") -> str:
        """``postgresql://USER@127.0.0.1:PORT/DATABASE``."""
        if self.port is None:
            raise ConfigError("the PostgreSQL server is not started; call start() first")
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run_as(self) -> list[str]:
        """The prefix that runs a command as the ``postgres`` user when we are root."""
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise ToolNotFoundError(
                "initdb refuses to run as root and there is no 'postgres' system user; "
                "install Debian's postgresql package (it creates one) or run as another user"
            ) from None
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise ToolNotFoundError(
                "running PostgreSQL as root needs util-linux's setpriv to switch to the "
                "'postgres' user; install util-linux"
            )
        # the death signal is set after the switch (a change of user clears it)
        return [setpriv, "--reuid=postgres", "--regid=postgres", "--init-groups",
                "--pdeathsig", "KILL", "--"]  # fmt: skip

    def start(self) -> Self:
        """initdb, then start the server; returns once it accepts connections.

        Raises:
            ToolNotFoundError: no server binaries, or root without a ``postgres`` user.
            SetupError: initdb failed (its output tail noted).
            ProcessStartError: the server exited or was not ready in time (log tail noted).
        """
        if self.running:
            return self
        started = time.monotonic()
        self.bindir = self.bindir or install_postgres()
        self._as = self._run_as()
        self.folder = scratch_dir("postgres")
        try:
            if self._as:
                entry = pwd.getpwnam("postgres")
                os.chown(self.folder, entry.pw_uid, entry.pw_gid)
            run_tool(
                [*self._as, str(self.bindir / "initdb"), "-D", str(self.folder / "data"),
                 "-U", self.user, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"],
                timeout_s=120,
                fix=f"see initdb's output below; the cluster was in {self.folder}",
            )  # fmt: skip
            for attempt in range(self.bind_attempts):
                try:
                    self._start_server(free_port())
                    break
                except _BindFailed:
                    if attempt == self.bind_attempts - 1:
                        raise
        except BaseException:
            self.stop()
            raise
        self.started_in_s = time.monotonic() - started
        return self

    def _start_server(self, port: int) -> None:
        assert self.bindir is not None and self.folder is not None
        log = self.folder / "postgres.log"

        def ready() -> bool:
            tail = proc.log_tail(200)
            if _BIND_FAILED.search(tail):
                raise _BindFailed(f"postgres could not listen on 127.0.0.1:{port}")
            return _READY in tail

        proc = ManagedProcess(
            f"postgres[{port}]",
            [*self._as, str(self.bindir / "postgres"), "-D", str(self.folder / "data"),
             "-h", "127.0.0.1", "-p", str(port), "-k", str(self.folder),
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=40", "-c", "logging_collector=off"],
            log_path=log,
            ready_check=ready,
            ready_timeout_s=self.start_timeout_s,
            stop_grace_s=10.0,
        )  # fmt: skip
        proc.start()
        self._proc = proc
        proc.wait_ready()
        self.port = port

    def create_database(self, name: str) -> str:
        """Create database ``name`` (``createdb``); its URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ConfigError(f"name={name!r} must be a lowercase PostgreSQL database name")
        if self.port is None or self.bindir is None:
            raise ConfigError("the PostgreSQL server is not started; call start() first")
        run_tool(
            [str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", self.user, name],
            timeout_s=60,
            fix="see createdb's output below",
        )  # fmt: skip
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients disconnected, no waiting for them), then the
        process manager's stop; the scratch folder is deleted. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.signal(signal.SIGINT)
            proc.wait(10.0)
            proc.stop()
        folder, self.folder = self.folder, None
        # only the folder scratch_dir() made for this server, never anything else
        if (
            folder is not None
            and folder.name.startswith(_SCRATCH_PREFIX)
            and folder.parent == Path(tempfile.gettempdir())
            and not folder.is_symlink()
        ):
            shutil.rmtree(folder, ignore_errors=True)
        self.port = None
