"""One entry point for every kind of run: in-process, ``workers=N`` local processes, or
Locust workers; the ``load`` fixture and the Chaos Toolkit front call it.

    run = open_run(url, rate_rps=200, duration_s=10, method="POST", json={...})
    run = open_run(url, schedule=ramp(100, 2000, duration_s=30), workers=2)
    run = open_run(url, rate_rps=5000, duration_s=30, locust=LocustWorkers(4))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from chaosrec.core.guard import TargetGuard
from chaosrec.core.validation import check_positive_int
from chaosrec.errors import ConfigError
from chaosrec.load.distributed import MAX_LOCAL_WORKERS, DistributedRun, LocalWorkers
from chaosrec.load.generator import LoadRun, _schedule_of
from chaosrec.load.requests import ParamsFn, RequestBuilder, request_source
from chaosrec.load.run import RunBase
from chaosrec.load.schedule import Schedule

__all__ = ["open_run"]


def open_run(
    url: str,
    *,
    rate_rps: float | None = None,
    duration_s: float | None = None,
    schedule: Schedule | None = None,
    method: str = "GET",
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    json: Any = None,
    content: bytes | str | None = None,
    params: ParamsFn | Mapping[str, str | int] | None = None,
    request: RequestBuilder | None = None,
    timeout_s: float = 5.0,
    max_inflight: int = 1000,
    workers: int = 1,
    locust: Any = None,
    on_start: Callable[[Any], None] | None = None,
    memory_budget_mb: float | None = None,
    scratch: Path | None = None,
    guard: TargetGuard | None = None,
) -> RunBase:
    """A run of the given shape (see :class:`~chaosrec.load.generator.LoadRun` for the
    arguments), sent by this process (``workers=1``), by ``workers`` local processes, or
    by Locust (``locust=`` a :class:`chaosrec.load.locust.LocustWorkers`, or ``True`` for
    ``workers`` local Locust workers). Nothing is started: use it as a context manager.
    ``guard`` checks every host a ``request`` builder sends to besides ``url`` (for a
    distributed run, all of them before any worker starts)."""
    workers = check_positive_int("workers", workers, maximum=MAX_LOCAL_WORKERS)
    if locust is None and workers == 1:
        return LoadRun(
            url,
            rate_rps=rate_rps,
            duration_s=duration_s,
            schedule=schedule,
            method=method,
            headers=headers,
            json=json,
            content=content,
            params=params,
            request=request,
            timeout_s=timeout_s,
            max_inflight=max_inflight,
            on_start=on_start,
            memory_budget_mb=memory_budget_mb,
            guard=guard,
        )
    if locust is True or locust is False:
        if not locust:
            raise ConfigError("locust=False: leave it out for local workers")
        from chaosrec.load.locust import LocustWorkers

        locust = LocustWorkers(workers)
    if locust is not None:
        backend = locust
        workers = int(locust.n)
    else:
        backend = LocalWorkers(workers)
    whole = _schedule_of(rate_rps, duration_s, schedule, processes=workers)
    source = request_source(
        url,
        method=method,
        headers=headers,
        json=json,
        content=content,
        params=params,
        request=request,
        check_first=min(3, whole.n_requests),
        guard=guard,
    )
    return DistributedRun(
        url,
        schedule=whole,
        source=source,
        backend=backend,
        workers=workers,
        scratch=scratch,
        timeout_s=timeout_s,
        max_inflight=max_inflight,
        on_start=on_start,
        memory_budget_mb=memory_budget_mb,
    )
