"""The gateway's HTTP edge: limits and answers that apply before and around every handler.

* :func:`server_options`: aiohttp server settings that bound how long a client may
  take to send its headers (``GatewayConfig.header_timeout_s``);
* :func:`read_body`: a request body, bounded in size (413) and time (408);
* :func:`client_errors`: a middleware answering :class:`RequestError` and aiohttp's
  own 4xx (404 unknown path, 405 wrong method) as ``{"error": reason}``. It catches
  nothing else: an unexpected exception stays a bug (aiohttp logs it and answers 500);
* :func:`admin_auth`: a middleware requiring the admin token on ``/admin/*``;
* :func:`log_handler`: the process's log output, with the admin token blanked out.

What aiohttp's HTTP parser refuses before any of this runs (a malformed request line,
a header line over 8190 bytes, more than 128 headers) it answers itself with a plain
text 400 and closes the connection.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO

from aiohttp import web

from chaosrec.stack.gateway.config import GatewayConfig
from chaosrec.stack.gateway.recording import BODY_KEY
from chaosrec.stack.gateway.validation import RequestError, check_bearer, check_body_headers, show

__all__ = [
    "LINGER_S",
    "admin_auth",
    "client_errors",
    "log_handler",
    "read_body",
    "server_options",
]

#: after an answer sent before its request's body was read (413, 408, a GET with a
#: body), how long the rest of the body is read and dropped before closing, so that
#: the client sees the answer rather than a reset
LINGER_S = 2.0

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def server_options(config: GatewayConfig) -> dict[str, Any]:
    """Keyword arguments for ``web.run_app`` / ``web.AppRunner``.

    aiohttp has no separate header timeout: its keep-alive timer runs from the moment
    a connection opens (or answers a request) and closes the connection if no complete
    request has arrived by then, partial headers included (the default, 75 s, held a
    slow-loris connection that long). Body reads are bounded in :func:`read_body`.
    """
    return {
        "keepalive_timeout": config.header_timeout_s,
        # encoded bodies are refused (415) by read_body; left on, the parser would inflate
        # them as they arrive, and a body it cannot inflate fails the connection after
        # the 415 was sent (a reset for the client's next request on it)
        "auto_decompress": False,
        "lingering_time": LINGER_S,
        "max_line_size": 8190,
        "max_field_size": 8190,
        "max_headers": 128,
    }


async def read_body(request: web.Request, max_bytes: int, timeout_s: float) -> bytes:
    """The whole body of a JSON request, or :class:`RequestError`: 415 for another
    content type, 413 past ``max_bytes`` (read no further), 408 when it has not arrived
    whole within ``timeout_s``, 400 when its framing is broken."""
    check_body_headers(request.headers.get("Content-Type"), request.headers.get("Content-Encoding"))
    declared = request.content_length
    too_large = f"body is larger than {max_bytes} bytes; allowed at most {max_bytes}"
    if declared is not None and declared > max_bytes:
        raise RequestError(f"Content-Length={declared} is too large; allowed <= {max_bytes}", 413)
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            while chunk := await request.content.readany():
                body += chunk
                if len(body) > max_bytes:
                    raise RequestError(too_large, 413)
    except TimeoutError:
        expected = f"of {declared} " if declared is not None else ""
        raise RequestError(
            f"body not received within {timeout_s:g} s ({len(body)} bytes {expected}arrived); "
            "send the whole body at once",
            408,
        ) from None
    except web.RequestPayloadError:
        raise RequestError("body framing is broken (chunked encoding or length)") from None
    request[BODY_KEY] = raw = bytes(body)  # for the traffic recorder
    return raw


def _routes(app: web.Application) -> list[str]:
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    return sorted(paths)


def _reason(request: web.Request, exc: web.HTTPException) -> str:
    """A one-line reason for one of aiohttp's own client errors."""
    path = show(request.path)
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"method {show(request.method)} is not allowed on {path}; allowed: {allowed}"
    if isinstance(exc, web.HTTPNotFound):
        return f"path {path} not found; paths: {', '.join(_routes(request.app))}"
    return f"{exc.status} {exc.reason} on {path}"


def client_errors(on_reject: Callable[[int], None]) -> Any:
    """A middleware: every 4xx as ``{"error": "one-line reason"}``, counted by
    ``on_reject(status)``. 408 and 413 close the connection (its body is unread)."""

    @web.middleware
    async def middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except RequestError as err:
            status, reason, headers = err.status, err.reason, err.headers
        except web.HTTPException as exc:
            if not 400 <= exc.status <= 499 or exc.content_type == "application/json":
                raise
            status, reason = exc.status, _reason(request, exc)
            headers = {k: v for k, v in exc.headers.items() if k in ("Allow",)}
        on_reject(status)
        response = web.json_response({"error": reason}, status=status, headers=headers)
        if status in (408, 413):
            response.force_close()
        return response

    return middleware


def admin_auth(token: str, prefixes: Sequence[str] = ("/admin",)) -> Any:
    """A middleware: requests under ``prefixes`` need ``Authorization: Bearer <token>``
    (checked before routing's 404/405, so it does not reveal which admin paths exist).
    Both the request's path and the route it matched are checked."""

    def guarded(path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in prefixes)

    @web.middleware
    async def middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        matched = resource.canonical if resource is not None else ""
        if guarded(request.path) or guarded(matched):
            check_bearer(request.headers.get("Authorization"), token)
        return await handler(request)

    return middleware


class _Redacting(logging.Formatter):
    def __init__(self, secret: str) -> None:
        super().__init__("%(message)s")
        self._secret = secret

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace(self._secret, "<admin token>")


def log_handler(secret: str, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing to ``stream`` (stderr) that never writes ``secret``. The gateway
    logs nothing about its token, but aiohttp logs the line of a request it cannot
    parse, and a malformed ``Authorization`` line would carry the token into the log."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Redacting(secret))
    return handler
