"""An open-loop HTTP load generator: requests leave on a fixed schedule, whatever the server does.

A closed-loop client waits for each answer before sending the next, so a server
that stalls also stalls its own measurement (coordinated omission). Here the
i-th request is *scheduled* at ``i / rate_rps`` seconds and sent then, from an
asyncio loop in a background thread, without waiting for earlier answers; its
latency counts from the scheduled time. Requests in flight are bounded by
``max_inflight``: past it a request is recorded as dropped by the client (status
-1) instead of queueing, so the generator never hides overload by slowing down.

Example::

    with LoadRun("http://127.0.0.1:8080/recommend", rate_rps=200, duration_s=10) as run:
        run.wait(3)
        run.snapshot()    # the rows recorded so far, from any thread
        ...               # inject a fault here
    run.log.latency_ms    # one value per scheduled request
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, TypeAlias

from chaosrec.core.validation import check_positive, check_positive_int
from chaosrec.errors import ConfigError
from chaosrec.load.recorder import RowRecorder
from chaosrec.slo.log import STATUS_CLIENT_DROPPED, STATUS_TRANSPORT_ERROR, RequestLog

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "BYTES_PER_REQUEST",
    "DEFAULT_MEMORY_BUDGET_MB",
    "MAX_INFLIGHT",
    "LoadRun",
    "default_params",
]

#: ``i -> query parameters`` of the i-th request
ParamsFn: TypeAlias = Callable[[int], Mapping[str, str | int]]


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


def _check_memory(rate_rps: float, duration_s: float, n: int, budget_mb: float | None) -> None:
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
            f"rate_rps={rate_rps:g} x duration_s={duration_s:g} schedules {n:,} requests, whose "
            f"log needs ~{needed_mb:,.0f} MiB, over the load memory budget of {budget_mb:,.0f} "
            f"MiB; lower the rate or the duration, or raise memory_budget_mb= "
            f"(or {MEMORY_BUDGET_ENV})"
        )


class LoadRun:
    """One open-loop run against ``url``; a context manager.

    :param url: the full URL requested with GET (query parameters from ``params``).
    :param rate_rps: constant arrival rate, requests per second (> 0).
    :param duration_s: how long requests are scheduled for, seconds (> 0).
    :param timeout_s: per-request client timeout; a timeout is recorded as status 0.
    :param max_inflight: requests allowed in flight before new ones are dropped
        (at most :data:`MAX_INFLIGHT`).
    :param params: ``i -> query parameters`` for the i-th request.
    :param memory_budget_mb: refuse, before starting, a schedule whose request log would
        not fit (default ``$CHAOSREC_LOAD_MEMORY_MB``, else
        :data:`DEFAULT_MEMORY_BUDGET_MB`; :data:`BYTES_PER_REQUEST` a request).

    Leaving the ``with`` block waits out the remaining duration and the last
    answers (at most ``timeout_s`` more), so recovery after a fault is observed.
    While it runs, :meth:`snapshot` gives the rows recorded so far (any thread, cheap
    enough to call every 100 ms); :attr:`running` and :attr:`done` say where it is.
    """

    def __init__(
        self,
        url: str,
        *,
        rate_rps: float,
        duration_s: float,
        timeout_s: float = 5.0,
        max_inflight: int = 1000,
        params: ParamsFn | None = None,
        on_start: Callable[[LoadRun], None] | None = None,
        memory_budget_mb: float | None = None,
    ) -> None:
        self.url = url
        self.rate_rps = check_positive("rate_rps", rate_rps, maximum=20_000)
        self.duration_s = check_positive("duration_s", duration_s, maximum=3600)
        self.timeout_s = check_positive("timeout_s", timeout_s)
        self.max_inflight = check_positive_int("max_inflight", max_inflight, maximum=MAX_INFLIGHT)
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"url={url!r} must start with http:// or https://")
        self.params = params or default_params()
        self.n_requests = max(1, round(self.rate_rps * self.duration_s))
        _check_memory(self.rate_rps, self.duration_s, self.n_requests, memory_budget_mb)
        self._on_start = on_start
        self._rows = RowRecorder()
        self._thread: threading.Thread | None = None
        self._joined = False
        self._started = threading.Event()
        self._abort = threading.Event()
        self._error: BaseException | None = None
        self.t0: float = 0.0  # monotonic
        self.t0_epoch: float = 0.0
        self.log: RequestLog = RequestLog.from_rows(0.0, [])
        self.max_lag_ms = 0.0  # worst lateness of a send versus its schedule

    # -- context manager ------------------------------------------------------------

    def __enter__(self) -> LoadRun:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self._abort.set()  # the test failed: stop sending, keep what was measured
        self.join()

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

    @property
    def running(self) -> bool:
        """The generator thread is scheduling requests or waiting for their answers."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def done(self) -> bool:
        """:meth:`join` has returned (or raised the loop's error): :attr:`log` is final."""
        return self._joined

    @property
    def elapsed_s(self) -> float:
        """Seconds since the first scheduled request."""
        return time.monotonic() - self.t0 if self.t0 else 0.0

    def now(self) -> float:
        """The current time on this run's clock (seconds since its start)."""
        return self.elapsed_s

    def wait(self, seconds: float) -> None:
        """Let the load run ``seconds`` more (never past its end); returns early if aborted."""
        if seconds < 0:
            raise ConfigError(f"wait(seconds={seconds}) must be >= 0")
        end = min(time.monotonic() + seconds, self.t0 + self.duration_s)
        while not self._abort.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def stop(self) -> None:
        """Stop scheduling new requests now."""
        self._abort.set()

    # -- the loop -------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as err:  # noqa: BLE001
            self._error = err
            self._started.set()

    async def _main(self) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=self.max_inflight, force_close=False)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            inflight: set[asyncio.Task[None]] = set()
            self.t0 = time.monotonic()
            self.t0_epoch = time.time()
            self._started.set()
            interval = 1.0 / self.rate_rps
            for i in range(self.n_requests):
                scheduled = i * interval
                delay = self.t0 + scheduled - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self._abort.is_set():  # after the sleep: stop() may come while asleep
                    break
                if len(inflight) >= self.max_inflight:
                    now = time.monotonic() - self.t0
                    self._rows.record(
                        i,
                        (scheduled, now, now, STATUS_CLIENT_DROPPED, None, None, False, "dropped"),
                    )
                    continue
                task = asyncio.create_task(self._one(session, i, scheduled))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
            if inflight:
                await asyncio.wait(inflight, timeout=self.timeout_s + 1)

    async def _one(self, session: aiohttp.ClientSession, i: int, scheduled: float) -> None:
        import aiohttp

        sent = time.monotonic() - self.t0
        lag_ms = (sent - scheduled) * 1000
        if lag_ms > self.max_lag_ms:
            self.max_lag_ms = lag_ms
        try:
            async with session.get(self.url, params=self.params(i)) as resp:
                await resp.read()
                done = time.monotonic() - self.t0
                headers = resp.headers
                self._rows.record(
                    i,
                    (
                        scheduled,
                        sent,
                        done,
                        resp.status,
                        headers.get("X-Chaosrec-Region") or None,
                        headers.get("X-Chaosrec-Replica") or None,
                        headers.get("X-Chaosrec-Degraded") == "1",
                        None if resp.status < 400 else f"HTTP {resp.status}",
                    ),
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            done = time.monotonic() - self.t0
            self._rows.record(
                i,
                (
                    scheduled,
                    sent,
                    done,
                    STATUS_TRANSPORT_ERROR,
                    None,
                    None,
                    False,
                    type(err).__name__,
                ),
            )

    def __iter__(self) -> Iterator[int]:  # pragma: no cover - guard against misuse
        raise TypeError("LoadRun is a context manager, not an iterable")
