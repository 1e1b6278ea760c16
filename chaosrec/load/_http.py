"""A lean HTTP/1.1 client for the open loop: asyncio protocols, keep-alive pools, and
llhttp (through ``httptools``) to parse answers.

Why not aiohttp's client: per request it builds a ``ClientResponse``, a cookie jar
lookup, a timer context, a task and several coroutines; that is most of the ~80 µs of
CPU the generator spent per request, and it capped one core at ~9,000 req/s (measured,
see ``bench/bench_load.py``). Here a request is one ``transport.write`` of bytes built
once per distinct request, and its answer is parsed by llhttp (C) with a callback for
the three headers the request log keeps; no task or coroutine exists per request.
HTTPS works (``ssl`` on the connection); proxies are never used (loopback drills).

What counts as an answer: a complete response (Content-Length, chunked, or read until
close); anything else (refused, reset, closed early, unparsable, timed out) is a
transport error, reported as ``(0, ..., error name)``.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

from chaosrec.load.fronts import Outcome, OutcomeFn
from chaosrec.load.requests import HttpRequest
from chaosrec.slo.log import STATUS_TRANSPORT_ERROR

__all__ = ["HttpPool", "encode"]


_REGION = b"x-chaosrec-region"
_REPLICA = b"x-chaosrec-replica"
_DEGRADED = b"x-chaosrec-degraded"
_WANTED = frozenset({_REGION, _REPLICA, _DEGRADED})


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int
    host_header: str

    @classmethod
    def of(cls, url: str) -> _Origin:
        parts = urlsplit(url)
        scheme = parts.scheme
        port = parts.port or (443 if scheme == "https" else 80)
        host = parts.hostname or ""
        default = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
        shown = f"[{host}]" if ":" in host else host
        return cls(scheme, host, port, shown if default else f"{shown}:{port}")


def encode(req: HttpRequest, origin: _Origin) -> bytes:
    """The request's bytes on the wire (HTTP/1.1, keep-alive)."""
    parts = urlsplit(req.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{req.method} {target} HTTP/1.1"]
    names = {name.lower() for name, _ in req.headers}
    if "host" not in names:
        lines.append(f"Host: {origin.host_header}")
    if "user-agent" not in names:
        lines.append("User-Agent: chaosrec")
    lines += [f"{name}: {value}" for name, value in req.headers]
    body = req.body
    if body is not None or req.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    __slots__ = (
        "_degraded",
        "_done",
        "_head_only",
        "_parser",
        "_pool",
        "_region",
        "_replica",
        "_status",
        "_timer",
        "complete",
        "transport",
    )

    def __init__(self, pool: HttpPool) -> None:
        self._pool = pool
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._done: OutcomeFn | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._head_only = False
        self.complete = False
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._region: str | None = None
        self._replica: str | None = None
        self._degraded = False

    # -- requests ----------------------------------------------------------------------

    def send(self, wire: bytes, done: OutcomeFn, deadline: float, head_only: bool) -> None:
        assert self.transport is not None
        self._done = done
        self._head_only = head_only
        self.complete = False
        self._reset()
        self._timer = self._pool.loop.call_at(deadline, self._timed_out)
        self.transport.write(wire)

    def _finish(self, outcome: Outcome, reusable: bool) -> None:
        done, self._done = self._done, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if reusable:
            self._pool.release(self)
        else:
            self._close()
        if done is not None:
            done(outcome)

    def _fail(self, error: str) -> None:
        if self._done is not None:
            self._finish((STATUS_TRANSPORT_ERROR, None, None, False, error), False)
        else:
            self._close()

    def _timed_out(self) -> None:
        self._timer = None
        self._fail("TimeoutError")

    def _close(self) -> None:
        self._pool.forget(self)
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        if self._done is None:  # bytes nobody asked for: the connection is unusable
            self._close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as err:
            self._fail(f"HttpParserError: {err}")

    def connection_lost(self, exc: Exception | None) -> None:
        self._pool.forget(self)
        if self._done is None:
            return
        if self._status and not self.complete and self._reads_until_close():
            self._answer(reusable=False)  # a body delimited by the connection's end
            return
        self._fail(type(exc).__name__ if exc is not None else "ServerDisconnectedError")

    def _reads_until_close(self) -> bool:
        return not self._parser.should_keep_alive()

    # -- httptools callbacks -----------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower in _WANTED:
            if lower == _REGION:
                self._region = value.decode("latin-1") or None
            elif lower == _REPLICA:
                self._replica = value.decode("latin-1") or None
            else:
                self._degraded = value == b"1"

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        if self._head_only:  # no body follows an answer to HEAD; llhttp cannot be told
            self.complete = True
            self._answer(reusable=False)

    def on_message_complete(self) -> None:
        if self._done is None:
            return
        self.complete = True
        self._answer(reusable=self._parser.should_keep_alive())

    def _answer(self, reusable: bool) -> None:
        status = self._status
        error = None if status < 400 else f"HTTP {status}"
        self._finish((status, self._region, self._replica, self._degraded, error), reusable)


class HttpPool:
    """Keep-alive connections per origin, at most ``max_connections`` open in all.

    :meth:`send` is non-blocking: it writes the request on an idle connection, or queues
    it for the first connection to become free (opening new ones as the queue needs,
    up to ``max_connections``), and calls ``done(outcome)`` on the loop's thread when the
    answer is complete, the connection fails, or ``timeout_s`` has passed.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, *, max_connections: int, timeout_s: float
    ) -> None:
        self.loop = loop
        self.max_connections = max_connections
        self.timeout_s = timeout_s
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._origin_of: dict[_Connection, _Origin] = {}
        self._origins: dict[str, _Origin] = {}
        self._wire: dict[HttpRequest, tuple[_Origin, bytes]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: requests waiting for a connection, oldest first: (bytes, done, deadline, HEAD?)
        self._queue: dict[_Origin, collections.deque[tuple[bytes, OutcomeFn, float, bool]]] = {}
        self._connecting: dict[_Origin, int] = {}
        self._connecting_total = 0
        self._closing = False

    @property
    def open_connections(self) -> int:
        return len(self._origin_of)

    def prepare(self, req: HttpRequest) -> tuple[_Origin, bytes]:
        """Origin and bytes of ``req``, cached (a run sends few distinct requests)."""
        cached = self._wire.get(req)
        if cached is not None:
            return cached
        base = req.url.split("/", 3)
        key = "/".join(base[:3])
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin.of(req.url)
        made = (origin, encode(req, origin))
        if len(self._wire) < 65_536:  # bounded: a builder may make every request unique
            self._wire[req] = made
        return made

    def send(self, req: HttpRequest, done: OutcomeFn) -> None:
        origin, wire = self.prepare(req)
        deadline = self.loop.time() + self.timeout_s
        head_only = req.method == "HEAD"
        idle = self._idle.get(origin)
        if idle:
            idle.pop().send(wire, done, deadline, head_only)
            return
        # No idle connection: the request waits for the first one free, and a new
        # connection is opened only if every queued request is not already covered by one
        # being opened. Opening one per request instead cascades: at 14,000 req/s each
        # connect (~0.1 ms of CPU) let more requests find no idle connection, and a run
        # opened all 1,000 allowed and fell ~1 s behind (measured). The wait counts in the
        # request's latency, which runs from its scheduled time.
        queue = self._queue.get(origin)
        if queue is None:
            queue = self._queue[origin] = collections.deque()
        queue.append((wire, done, deadline, head_only))
        self._grow(origin)

    def _grow(self, origin: _Origin) -> None:
        queue = self._queue.get(origin)
        if not queue or self._closing:
            return
        connecting = self._connecting.get(origin, 0)
        while connecting < len(queue) and (
            len(self._origin_of) + self._connecting_total < self.max_connections
        ):
            connecting += 1
            self._connecting[origin] = connecting
            self._connecting_total += 1
            task = self.loop.create_task(self._connect(origin))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _connect(self, origin: _Origin) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                conn = await self._open(origin)
        except asyncio.CancelledError:
            self._connected(origin)
            raise
        except Exception as err:  # noqa: BLE001 - the request it was opened for fails
            self._connected(origin)
            queue = self._queue.get(origin)
            if queue:
                _, done, _, _ = queue.popleft()
                done((STATUS_TRANSPORT_ERROR, None, None, False, type(err).__name__))
            return
        self._connected(origin)
        self.release(conn)

    def _connected(self, origin: _Origin) -> None:
        self._connecting[origin] -= 1
        self._connecting_total -= 1

    async def _open(self, origin: _Origin) -> _Connection:
        context: ssl.SSLContext | None = None
        if origin.scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        _, conn = await self.loop.create_connection(
            lambda: _Connection(self),
            origin.host,
            origin.port,
            ssl=context,
            server_hostname=origin.host if context is not None else None,
        )
        self._origin_of[conn] = origin
        return conn

    def release(self, conn: _Connection) -> None:
        """``conn`` is free: it takes the oldest waiting request, else goes idle."""
        origin = self._origin_of.get(conn)
        if origin is None or self._closing:
            if conn.transport is not None:
                conn.transport.close()
            return
        queue = self._queue.get(origin)
        while queue:
            wire, done, deadline, head_only = queue.popleft()
            if deadline <= self.loop.time():  # waited out its whole timeout
                done((STATUS_TRANSPORT_ERROR, None, None, False, "TimeoutError"))
                continue
            conn.send(wire, done, deadline, head_only)
            return
        self._idle.setdefault(origin, []).append(conn)

    def forget(self, conn: _Connection) -> None:
        origin = self._origin_of.pop(conn, None)
        if origin is not None:
            idle = self._idle.get(origin)
            if idle and conn in idle:
                idle.remove(conn)
            self._grow(origin)  # waiting requests lost a connection they could have had

    async def close(self) -> None:
        """Close every connection (requests still in flight or waiting end as transport
        errors)."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        for queue in self._queue.values():
            while queue:
                _, done, _, _ = queue.popleft()
                done((STATUS_TRANSPORT_ERROR, None, None, False, "ClientClosed"))
        for conn in list(self._origin_of):
            conn._fail("ClientClosed")
            if conn.transport is not None:
                conn.transport.close()
        self._idle.clear()
        await asyncio.sleep(0)
