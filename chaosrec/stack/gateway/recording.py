"""The gateway's traffic recorder: what shoppers sent, in the ``chaosrec-traffic`` format
(:mod:`chaosrec.load.traffic`), for replay drills.

Off by default. ``POST /admin/recording/start`` (admin token; optional body
``{"max_requests": N}``, default 100,000, at most 1,000,000) starts a new recording in
the gateway's memory; ``POST /admin/recording/stop`` ends it and answers the recording
as JSON lines (``application/x-ndjson``). The gateway writes no file itself: the client
that asked decides where the recording goes (:class:`chaosrec.load.traffic.Recording`
does both calls).

What is recorded: every request to the service's own paths (not ``/admin/*``,
``/metrics``, ``/healthz``), refused ones included, with its arrival time, method,
path and query, headers and the body the handler read. Credentials and cookies
(:data:`~chaosrec.load.traffic.DENY_HEADERS`) and hop-by-hop headers are never
recorded: ``Authorization`` carries the admin token, among others.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from chaosrec.load.traffic import TrafficWriter
from chaosrec.stack.gateway.validation import RequestError, show

__all__ = ["BODY_KEY", "DEFAULT_MAX_REQUESTS", "MAX_REQUESTS", "TrafficRecorder"]

#: where :func:`~chaosrec.stack.gateway.edge.read_body` leaves the body it read
BODY_KEY = "chaosrec_body"
DEFAULT_MAX_REQUESTS = 100_000
MAX_REQUESTS = 1_000_000
_NOT_RECORDED = ("/admin", "/metrics", "/healthz")

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TrafficRecorder:
    """At most one recording at a time, in memory, bounded by ``max_requests``."""

    def __init__(self) -> None:
        self._writer: TrafficWriter | None = None
        self._started = 0.0  # monotonic

    @property
    def recording(self) -> bool:
        return self._writer is not None

    def start(self, max_requests: int) -> None:
        self._writer = TrafficWriter(time.time(), source="gateway", max_requests=max_requests)
        self._started = time.monotonic()

    def stop(self) -> TrafficWriter | None:
        writer, self._writer = self._writer, None
        return writer

    def middleware(self) -> Any:
        """Records each request after its handler ran (answered or refused)."""

        @web.middleware
        async def record(request: web.Request, handler: _Handler) -> web.StreamResponse:
            writer = self._writer
            if writer is None or request.path.startswith(_NOT_RECORDED):
                return await handler(request)
            arrived = time.monotonic() - self._started
            try:
                return await handler(request)
            finally:
                if self._writer is writer:  # not stopped (and restarted) meanwhile
                    body = request.get(BODY_KEY)
                    writer.add(
                        arrived,
                        request.method,
                        request.path_qs,
                        request.headers.items(),
                        body if isinstance(body, bytes) else None,
                    )

        return record

    # -- admin handlers ------------------------------------------------------------------

    async def handle_start(self, request: web.Request, body: Any) -> web.Response:
        limit = DEFAULT_MAX_REQUESTS
        if body is not None:
            if not isinstance(body, dict) or set(body) - {"max_requests"}:
                raise RequestError('expected {"max_requests": N} or no body')
            limit = body.get("max_requests", limit)
            if isinstance(limit, bool) or not isinstance(limit, int):
                raise RequestError(f"max_requests={show(limit)} must be an integer")
            if not 1 <= limit <= MAX_REQUESTS:
                raise RequestError(f"max_requests={limit} must be in [1, {MAX_REQUESTS}]")
        self.start(limit)
        return web.json_response({"recording": True, "max_requests": limit})

    async def handle_stop(self, request: web.Request) -> web.Response:
        writer = self.stop()
        if writer is None:
            raise RequestError(
                "no recording is running; start one with POST /admin/recording/start", 409
            )
        return web.Response(
            text=writer.text(),
            content_type="application/x-ndjson",
            headers={"X-Chaosrec-Skipped": str(writer.skipped)},
        )
