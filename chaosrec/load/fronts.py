"""Fronts: what a load run sends its requests through, and how a request ends.

The open-loop engine (:class:`~chaosrec.load.generator.LoadRun`) decides *when*; a front
decides *what* and *how*: :class:`HttpFront` (HTTP/1.1 on the lean client of
:mod:`chaosrec.load._http`) and :class:`chaosrec.load.grpc.KServeFront` (KServe v2
``ModelInfer`` over gRPC). Each reports every request's end as an :data:`Outcome`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeAlias

from chaosrec.load.requests import RequestSource

if TYPE_CHECKING:
    from chaosrec.load._http import HttpPool

__all__ = ["Front", "HttpFront", "Outcome", "OutcomeFn"]

#: how one request ended: ``(status, region, replica, degraded, error)``, the request
#: log's columns (status 0 for a transport error; see :mod:`chaosrec.slo.log`)
Outcome: TypeAlias = tuple[int, str | None, str | None, bool, str | None]
OutcomeFn: TypeAlias = Callable[[Outcome], None]


class Front(Protocol):
    """What a load run sends requests through (HTTP, KServe gRPC, ...).

    :meth:`send` must not block: it starts request ``i`` and arranges for ``done`` to be
    called once, on the loop's thread, with ``(status, region, replica, degraded,
    error)`` when it ends (answered, failed or timed out after ``timeout_s``).
    """

    @property
    def url(self) -> str: ...

    async def open(self, *, max_inflight: int, timeout_s: float) -> None: ...

    def send(self, i: int, done: Callable[[Outcome], None]) -> None: ...

    async def close(self) -> None: ...


class HttpFront:
    """HTTP/1.1 requests from ``source`` (``i -> HttpRequest``), on keep-alive pools."""

    def __init__(self, url: str, source: RequestSource) -> None:
        self.url = url
        self.source = source
        self._pool: HttpPool | None = None

    async def open(self, *, max_inflight: int, timeout_s: float) -> None:
        from chaosrec.load._http import HttpPool

        self._pool = HttpPool(
            asyncio.get_running_loop(), max_connections=max_inflight, timeout_s=timeout_s
        )

    def send(self, i: int, done: Callable[[Outcome], None]) -> None:
        assert self._pool is not None, "open() first"
        self._pool.send(self.source(i), done)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
