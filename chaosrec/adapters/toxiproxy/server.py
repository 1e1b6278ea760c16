"""A toxiproxy-server child process on a free port, managed by :class:`ManagedProcess`."""

from __future__ import annotations

import json
import secrets
import tempfile
from pathlib import Path
from typing import Self

import httpx

from chaosrec.adapters.ports import free_port
from chaosrec.adapters.process.manager import ManagedProcess, StartFailed
from chaosrec.adapters.toxiproxy.client import ToxiproxyClient
from chaosrec.adapters.toxiproxy.schema import _check_positive
from chaosrec.errors import ConfigError, PortInUseError, ProcessStartError, StackError

__all__ = ["ToxiproxyServer"]


class _BindFailed(StartFailed):
    """The server could not bind its API port; the start may be retried on another."""


class ToxiproxyServer:
    """A toxiproxy-server child process bound to a free port, with a client for it.

    Starting picks a free port (retrying up to ``bind_attempts`` times when
    another process takes it first), appends the server's output to
    ``log_path``, and waits until the API answers *and* is the server just
    started: a readiness probe that only called ``GET /version`` would be fooled
    by another Toxiproxy already on that port, because a toxiproxy-server that
    fails to bind logs the error and keeps running. So the server starts with a
    disabled sentinel proxy that only this process knows, and is ready when its
    API has it. A failed start stops the child and raises
    :class:`~chaosrec.errors.ProcessStartError` with the log tail noted.

    The process is a :class:`~chaosrec.adapters.process.manager.ManagedProcess`:
    its own session, dies with this Python process, swept by the next session
    if it did not.

    Args:
        binary: the toxiproxy-server executable, e.g. from ``ensure_toxiproxy()``.
        log_path: file the server's output is appended to (parents are created).
        host: address the API listens on.
        port: API port; 0 picks a free one.
        start_timeout_s: seconds to wait for the API to answer.
        stop_timeout_s: seconds between SIGTERM and SIGKILL when stopping.
        bind_attempts: ports to try when ``port`` is 0.

    Example::

        with ToxiproxyServer(ensure_toxiproxy(), tmp_path / "toxiproxy.log") as server:
            server.client.create_proxy("api", "127.0.0.1:8000")
    """

    def __init__(
        self,
        binary: Path | str,
        log_path: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout_s: float = 10.0,
        stop_timeout_s: float = 3.0,
        bind_attempts: int = 3,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(f"port={port!r} is outside [0, 65535]; pass 0 to pick a free one")
        if (
            isinstance(bind_attempts, bool)
            or not isinstance(bind_attempts, int)
            or bind_attempts < 1
        ):
            raise ConfigError(f"bind_attempts={bind_attempts!r} is not a positive integer")
        for name, value in (
            ("start_timeout_s", start_timeout_s),
            ("stop_timeout_s", stop_timeout_s),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"{name}={value!r} must be a positive number of seconds")
        self.binary = Path(binary)
        self.log_path = Path(log_path)
        self.host = host
        self._requested_port = port
        self._start_timeout_s = _check_positive("start_timeout_s", start_timeout_s)
        self._stop_timeout_s = _check_positive("stop_timeout_s", stop_timeout_s)
        self._bind_attempts = bind_attempts
        self._process: ManagedProcess | None = None
        self._port: int | None = None
        self._client: ToxiproxyClient | None = None

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"ToxiproxyServer({str(self.binary)!r}, {state}, port={self._port})"

    # -- state

    @property
    def running(self) -> bool:
        """Whether the server was started and its process has not exited."""
        return self._process is not None and self._client is not None and self._process.alive

    def _require_started(self) -> ManagedProcess:
        if self._process is None or self._client is None:
            raise StackError(
                "ToxiproxyServer is not started; call start() or use it in a `with` block"
            )
        return self._process

    @property
    def process(self) -> ManagedProcess:
        """The managed toxiproxy-server process."""
        return self._require_started()

    @property
    def pid(self) -> int:
        """Process id of the server."""
        pid = self._require_started().pid
        assert pid is not None
        return pid

    @property
    def port(self) -> int:
        """TCP port of the API."""
        self._require_started()
        assert self._port is not None
        return self._port

    @property
    def api_url(self) -> str:
        """Base URL of the API, e.g. ``"http://127.0.0.1:40123"``."""
        return self._url(self.port)

    def _url(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"

    @property
    def client(self) -> ToxiproxyClient:
        """A client for this server's API (closed by :meth:`stop`)."""
        self._require_started()
        assert self._client is not None
        return self._client

    # -- lifecycle

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Self:
        """Start the server and wait until its API answers; return ``self``.

        Raises:
            ProcessStartError: it could not be launched, exited early, or did not
                answer within ``start_timeout_s``; the log tail is noted and the
                process is gone.
            PortInUseError: an explicit ``port`` is taken by another process.
        """
        if self._process is not None:
            raise StackError(f"{self!r} is already started; stop() it first")
        attempts = 1 if self._requested_port else self._bind_attempts
        for attempt in range(1, attempts + 1):
            port = self._requested_port or free_port(self.host)
            try:
                self._start_on(port)
                return self
            except _BindFailed as err:
                if self._requested_port:
                    raise PortInUseError(
                        f"port {port} on {self.host} is already in use; choose another "
                        "port or pass port=0 to pick a free one"
                    ) from None
                if attempt == attempts:
                    error = ProcessStartError(
                        f"toxiproxy-server could not bind a free port on {self.host} in "
                        f"{attempts} attempts; check what is taking ports, or raise bind_attempts"
                    )
                    for note in getattr(err, "__notes__", []):
                        error.add_note(note)
                    raise error from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_on(self, port: int) -> None:
        sentinel = f"__chaosrec_ready_{secrets.token_hex(6)}"
        # A disabled proxy only this process knows of: if the API on `port` has it, the
        # API is ours. Disabled, so it binds no port of its own.
        config = [
            {"name": sentinel, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9", "enabled": False}
        ]
        with tempfile.NamedTemporaryFile(
            "w", prefix="chaosrec-toxiproxy-", suffix=".json", delete=False
        ) as handle:
            json.dump(config, handle)
        config_path = Path(handle.name)
        url = self._url(port)
        probe = httpx.Client(base_url=url, timeout=0.5, trust_env=False)
        process = ManagedProcess(
            f"toxiproxy-server at {url}",
            [
                str(self.binary),
                "-host",
                self.host,
                "-port",
                str(port),
                "-config",
                str(config_path),
                "-proxy-metrics",  # per-proxy byte counters: evidence a fault met traffic
            ],
            log_path=self.log_path,
            ready_timeout_s=self._start_timeout_s,
            stop_grace_s=self._stop_timeout_s,
            poll_s=0.02,
        )

        def ready() -> bool:
            logged = process.log_tail(1000)
            if "address already in use" in logged:
                raise _BindFailed(f"toxiproxy-server could not bind {url}")
            if "Server finished with error" in logged:
                raise StartFailed(
                    f"toxiproxy-server could not serve its API at {url}; see the log tail "
                    "below and check host"
                )
            if probe.get(f"/proxies/{sentinel}").status_code != 200:
                return False
            try:
                probe.delete(f"/proxies/{sentinel}").raise_for_status()
            except httpx.HTTPError as err:
                raise StartFailed(
                    f"toxiproxy-server at {url} answered but could not delete its readiness "
                    f"proxy: {err}; see the log tail below"
                ) from err
            return True

        process.ready_check = ready
        try:
            try:
                process.start()
            except ProcessStartError as err:
                why = err.__cause__.strerror if isinstance(err.__cause__, OSError) else err
                raise ProcessStartError(
                    f"cannot start {self.binary}: {why}; check that it is an executable "
                    "toxiproxy-server binary (see ensure_toxiproxy())"
                ) from err
            process.wait_ready()
        finally:
            probe.close()
            config_path.unlink(missing_ok=True)
        self._process, self._port = process, port
        self._client = ToxiproxyClient(url)

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``stop_timeout_s``. Idempotent."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._process is not None:
            self._process.stop()
            self._process = None
