"""The open-loop load generator: requests leave on a schedule, whatever the server does.

A closed-loop client waits for each answer before sending the next, so a server
that stalls also stalls its own measurement (coordinated omission). Here request
``i`` is *scheduled* at the schedule's ``t_i`` (``i / rate_rps`` for a constant rate;
see :mod:`chaosrec.load.schedule` for ramps, steps, spikes, diurnal curves and
:mod:`chaosrec.load.traffic` for recorded traffic) and sent then, from an asyncio loop
in a background thread, without waiting for earlier answers; its latency counts from
the scheduled time. Requests in flight are bounded by ``max_inflight``: past it a
request is recorded as dropped by the client (status -1) instead of queueing, so the
generator never hides overload by slowing down. When its own CPU runs out, sends are
late (the lag is in the log, and latency counts from the schedule), and a request that
could not leave within ``timeout_s`` of its scheduled time is recorded as dropped too
(error ``"late"``) rather than sent: the backlog stays bounded, and the overflow shows
as drops, never hidden.

What is sent is a *front*: HTTP by default (any method, headers, JSON or raw bodies, a
builder ``i -> request``; :mod:`chaosrec.load.requests`, on the lean client of
:mod:`chaosrec.load._http`), or KServe v2 gRPC (:mod:`chaosrec.load.grpc`). Every
front records into the same :class:`~chaosrec.slo.log.RequestLog`.

Example::

    with LoadRun("http://127.0.0.1:8080/recommend", rate_rps=200, duration_s=10) as run:
        run.wait(3)
        run.snapshot()    # the rows recorded so far, from any thread
        ...               # inject a fault here
    run.log.latency_ms    # one value per scheduled request

    LoadRun(url, schedule=ramp(50, 500, duration_s=30), method="POST", json={...})
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from chaosrec.core.guard import TargetGuard
from chaosrec.core.validation import check_positive, check_positive_int
from chaosrec.errors import ConfigError, TargetNotAllowedError
from chaosrec.load.fronts import Front, HttpFront, Outcome
from chaosrec.load.recorder import RowRecorder
from chaosrec.load.requests import ParamsFn, RequestBuilder, request_source
from chaosrec.load.run import RunBase
from chaosrec.load.schedule import Schedule, constant
from chaosrec.slo.log import STATUS_CLIENT_DROPPED, RequestLog, Row

__all__ = [
    "BYTES_PER_REQUEST",
    "DEFAULT_MEMORY_BUDGET_MB",
    "MAX_INFLIGHT",
    "Front",
    "HttpFront",
    "LoadRun",
    "default_params",
]


def default_params(n_users: int = 5000, k: int = 10, seed: int = 11) -> ParamsFn:
    """Query parameters for the recommender gateway: pseudo-random users, fixed ``k``."""
    import random

    rng = random.Random(seed)
    users = [rng.randrange(n_users) for _ in range(4096)]
    return lambda i: {"user_id": users[i % len(users)], "k": k}


#: requests in flight at most (the connection pool's size); more are recorded as dropped
MAX_INFLIGHT = 10_000
#: memory one scheduled request's row costs at its peak: 462 bytes measured with
#: tracemalloc over 200,000 rows (the pending tuple, then its columns when the log is
#: built), rounded up
BYTES_PER_REQUEST = 500
DEFAULT_MEMORY_BUDGET_MB = 1024.0
MEMORY_BUDGET_ENV = "CHAOSREC_LOAD_MEMORY_MB"
#: sends in a row without giving the loop a turn (answers wait while we send)
_BURST = 64


def _check_memory(what: str, n: int, budget_mb: float | None) -> None:
    """Refuse, before anything is sent, a schedule whose log would not fit the budget."""
    if budget_mb is None:
        raw = os.environ.get(MEMORY_BUDGET_ENV)
        try:
            budget_mb = float(raw) if raw else DEFAULT_MEMORY_BUDGET_MB
        except ValueError:
            raise ConfigError(
                f"{MEMORY_BUDGET_ENV}={raw!r} is not a number of MiB; set e.g. 2048 or unset it"
            ) from None
    budget_mb = check_positive("memory_budget_mb", budget_mb)
    needed_mb = n * BYTES_PER_REQUEST / 2**20
    if needed_mb > budget_mb:
        raise ConfigError(
            f"{what} schedules {n:,} requests, whose "
            f"log needs ~{needed_mb:,.0f} MiB, over the load memory budget of {budget_mb:,.0f} "
            f"MiB; lower the rate or the duration, or raise memory_budget_mb= "
            f"(or {MEMORY_BUDGET_ENV})"
        )


class LoadRun(RunBase):
    """One open-loop run; a context manager.

    :param url: the URL requested (GET with ``params`` unless said otherwise), or a
        :class:`Front` such as :class:`chaosrec.load.grpc.KServeFront`.
    :param rate_rps: constant arrival rate, requests per second (> 0); or give
        ``schedule``.
    :param duration_s: how long requests are scheduled for, seconds (> 0), with
        ``rate_rps``.
    :param schedule: a :class:`~chaosrec.load.schedule.Schedule` (``ramp``, ``steps``,
        ``spike``, ``diurnal``, a sum of them, or a recorded-traffic ``Replay``) instead
        of ``rate_rps`` and ``duration_s``.
    :param method, headers, json, content, params: the HTTP request, named as in
        requests/httpx (see :mod:`chaosrec.load.requests`); ``params`` may be a callable
        ``i -> query parameters``.
    :param request: a builder ``i -> HttpRequest`` (or a path) instead of the above.
    :param timeout_s: per-request client timeout; a timeout is recorded as status 0.
    :param max_inflight: requests allowed in flight before new ones are dropped
        (at most :data:`MAX_INFLIGHT`).
    :param memory_budget_mb: refuse, before starting, a schedule whose request log would
        not fit (default ``$CHAOSREC_LOAD_MEMORY_MB``, else
        :data:`DEFAULT_MEMORY_BUDGET_MB`; :data:`BYTES_PER_REQUEST` a request).
    :param start_at_epoch: the wall-clock time the schedule starts (default: now); the
        workers of one distributed run share it, so their logs line up.
    :param ship_rows: keep new rows for :meth:`take_new_rows` too (a worker process
        ships them to the process that merges the logs).
    :param guard: checks every other host a ``request`` builder sends to (the ``load``
        fixture passes the run's target guard; ``url`` itself is the caller's to check).

    Leaving the ``with`` block waits out the remaining duration and the last
    answers (at most ``timeout_s`` more), so recovery after a fault is observed.
    While it runs, :meth:`snapshot` gives the rows recorded so far (any thread, cheap
    enough to call every 100 ms); :attr:`running` and :attr:`done` say where it is.
    """

    def __init__(
        self,
        url: str | Front,
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
        on_start: Callable[[LoadRun], None] | None = None,
        memory_budget_mb: float | None = None,
        start_at_epoch: float | None = None,
        ship_rows: bool = False,
        guard: TargetGuard | None = None,
    ) -> None:
        super().__init__(_schedule_of(rate_rps, duration_s, schedule))
        self.timeout_s = check_positive("timeout_s", timeout_s)
        self.max_inflight = check_positive_int("max_inflight", max_inflight, maximum=MAX_INFLIGHT)
        _check_memory(self.schedule.describe(), self.n_requests, memory_budget_mb)
        self._times = self.schedule.times()
        if isinstance(url, str):
            shaped = request_source(
                url,
                method=method,
                headers=headers,
                json=json,
                content=content,
                params=params,
                request=request,
                check_first=min(3, self.n_requests),
                guard=guard,
            )
            self.front: Front = HttpFront(url, shaped)
        else:
            given = [n for n, v in (("params", params), ("request", request), ("json", json)) if v]
            if given or headers or content is not None or method != "GET":
                raise ConfigError(
                    f"{', '.join(given) or 'request shape'} arguments apply to HTTP URLs; "
                    f"{type(url).__name__} builds its own requests"
                )
            self.front = url
        self.url = self.front.url
        self.start_at_epoch = start_at_epoch
        self._on_start = on_start
        self._rows = RowRecorder(keep_new=ship_rows)
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        # A full (generation 2) garbage collection walks every tracked object of this
        # process and holds the GIL while it does: with torch, tritonclient and the drill
        # reports loaded that is ~300k objects and 150-250 ms (measured), enough to stall
        # the schedule and bill the pause to the service as latency. Freezing what exists
        # now takes those objects out of every later collection; objects made during the
        # run are still collected.
        gc.freeze()
        self._thread = threading.Thread(target=self._thread_main, name="chaosrec-load", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout=10):
            raise ConfigError("the load generator thread did not start within 10 s")
        if self._error is not None:
            self.join()  # the loop died before its first request: raise its error now
        if self._on_start is not None:
            try:
                self._on_start(self)
            except BaseException:
                # __exit__ will not run when __enter__ raises: stop the load here
                self.stop()
                with contextlib.suppress(Exception):
                    self.join()
                raise

    def join(self) -> RequestLog:
        """Wait for the schedule to end and every answer (or timeout); build the log."""
        if self._thread is not None:
            remaining = self.t0 + self.duration_s + self.timeout_s + 5.0 - time.monotonic()
            self._thread.join(timeout=max(1.0, remaining))
            if self._thread.is_alive():
                self._abort.set()
                self._thread.join(timeout=self.timeout_s + 5)
            self._thread = None
        self.log = self.snapshot()
        self._joined = True
        if self._error is not None:
            raise self._error
        return self.log

    # -- while running ----------------------------------------------------------------

    def snapshot(self) -> RequestLog:
        """The rows recorded so far (answered, failed or dropped), as a log sorted by
        scheduled time; safe from any thread while the run goes on. Each call returns a
        copy that later rows leave alone. After :meth:`join` it equals :attr:`log`."""
        return self._rows.snapshot(self.t0_epoch)

    def take_new_rows(self) -> list[tuple[int, Row]]:
        """``(request number, row)`` of the requests that ended since the last call
        (needs ``ship_rows=True``)."""
        return self._rows.take_new()

    @property
    def running(self) -> bool:
        """The generator thread is scheduling requests or waiting for their answers."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    # -- the loop -------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as err:  # noqa: BLE001
            self._error = err
            self._started.set()

    async def _main(self) -> None:
        front = self.front
        await front.open(max_inflight=self.max_inflight, timeout_s=self.timeout_s)
        all_done = asyncio.Event()
        inflight = 0
        scheduling = True
        record = self._rows.record
        monotonic = time.monotonic

        def finisher(i: int, scheduled: float, sent: float) -> Callable[[Outcome], None]:
            def done(outcome: Outcome) -> None:
                nonlocal inflight
                status, region, replica, degraded, error = outcome
                record(
                    i, (scheduled, sent, monotonic() - t0, status, region, replica, degraded, error)
                )
                inflight -= 1
                if not inflight and not scheduling:
                    all_done.set()

            return done

        try:
            now_epoch, now_mono = time.time(), monotonic()
            start_epoch = self.start_at_epoch if self.start_at_epoch is not None else now_epoch
            t0 = self.t0 = now_mono + (start_epoch - now_epoch)
            self.t0_epoch = start_epoch
            self._started.set()
            times = self._times
            timeout_s = self.timeout_s
            burst = 0
            for block in range(0, self.n_requests, 4096):
                for offset, scheduled in enumerate(times[block : block + 4096].tolist()):
                    i = block + offset
                    delay = t0 + scheduled - monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                        burst = 0
                    elif burst >= _BURST:
                        await asyncio.sleep(0)  # let answers in: they are timed too
                        burst = 0
                    burst += 1
                    if self._abort.is_set():  # after the sleep: stop() may come while asleep
                        break
                    now = monotonic() - t0
                    if inflight >= self.max_inflight or now - scheduled > timeout_s:
                        # past max_inflight, or out of CPU for so long that it would have
                        # timed out anyway: recorded as dropped, never sent late
                        why = "dropped" if inflight >= self.max_inflight else "late"
                        drop = (scheduled, now, now, STATUS_CLIENT_DROPPED, None, None, False, why)
                        record(i, drop)
                        continue
                    lag_ms = (now - scheduled) * 1000
                    if lag_ms > self.max_lag_ms:
                        self.max_lag_ms = lag_ms
                    inflight += 1
                    try:
                        front.send(i, finisher(i, scheduled, now))
                    except Exception as err:
                        inflight -= 1
                        if isinstance(err, TargetNotAllowedError):
                            raise
                        raise _front_error(i, err) from err
                else:
                    continue
                break
            scheduling = False
            if inflight:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(all_done.wait(), timeout=self.timeout_s + 1)
        finally:
            await front.close()


def _front_error(i: int, err: Exception) -> Exception:
    if isinstance(err, TargetNotAllowedError):
        return err
    if isinstance(err, ConfigError):
        return ConfigError(f"request {i}: {err}")
    return ConfigError(f"building request {i} failed: {type(err).__name__}: {err}")


#: the highest constant rate one process is asked for (more: ``workers=N`` or Locust)
MAX_RATE_RPS = 20_000


def _schedule_of(
    rate_rps: float | None,
    duration_s: float | None,
    schedule: Schedule | None,
    *,
    processes: int = 1,
) -> Schedule:
    if schedule is not None:
        if rate_rps is not None or duration_s is not None:
            raise ConfigError(
                "give schedule= or rate_rps= and duration_s=, not both (a schedule has its own "
                "rates and duration)"
            )
        if not isinstance(schedule, Schedule):
            raise ConfigError(
                f"schedule={schedule!r} must be a chaosrec.load.schedule.Schedule "
                "(constant, ramp, steps, spike, diurnal, a Replay)"
            )
        return schedule
    if rate_rps is None or duration_s is None:
        raise ConfigError("give rate_rps= and duration_s= (or a schedule=)")
    check_positive("rate_rps", rate_rps, maximum=MAX_RATE_RPS * processes)
    check_positive("duration_s", duration_s, maximum=3600)
    return constant(rate_rps, duration_s=duration_s)
