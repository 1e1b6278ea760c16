"""What every load run is, whoever sends its requests: the clock, waiting, stopping,
the ``with`` block and the request log. :class:`~chaosrec.load.generator.LoadRun` (one
process) and :class:`~chaosrec.load.distributed.DistributedRun` (worker processes,
Locust) build on it, so drills, SLOs, guardrails and reports take either."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Protocol, Self

from chaosrec.errors import ConfigError
from chaosrec.load.schedule import Schedule
from chaosrec.slo.log import RequestLog

__all__ = ["MeasuredRun", "RunBase", "RunView"]


class MeasuredRun(Protocol):
    """What the SLO code reads from a run: a :class:`RunBase`, or a :class:`RunView`."""

    @property
    def log(self) -> RequestLog: ...

    @property
    def t0_epoch(self) -> float: ...

    @property
    def duration_s(self) -> float: ...

    @property
    def done(self) -> bool: ...

    def join(self) -> RequestLog: ...


class RunBase:
    """The shared half of a load run; subclasses give :meth:`start`, :meth:`join`,
    :meth:`snapshot` and :attr:`running`."""

    url: str

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.n_requests = schedule.n_requests
        self._abort = threading.Event()
        self._joined = False
        self.t0: float = 0.0  # monotonic
        self.t0_epoch: float = 0.0
        self.log: RequestLog = RequestLog.from_rows(0.0, [])
        self.max_lag_ms = 0.0  # worst lateness of a send versus its schedule

    # -- to implement ---------------------------------------------------------------------

    def start(self) -> None:
        raise NotImplementedError

    def join(self) -> RequestLog:
        raise NotImplementedError

    def snapshot(self) -> RequestLog:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------

    @property
    def rate_rps(self) -> float:
        """The schedule's mean rate (its constant rate for a constant schedule)."""
        return self.schedule.mean_rate_rps

    @property
    def duration_s(self) -> float:
        return self.schedule.duration_s

    def __enter__(self) -> Self:
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

    @property
    def done(self) -> bool:
        """:meth:`join` has returned (or raised the run's error): :attr:`log` is final."""
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

    def where(self, *, region: str | None = None, replica: str | None = None) -> RunView:
        """The requests recorded with this ``region`` and/or ``replica`` (for gRPC runs:
        the target called; for HTTP: the one that answered), as a run for the SLO code::

            slo.assert_met(run.where(region="region-b"), availability=1.0)
        """
        if region is None and replica is None:
            raise ConfigError("where() needs region= or replica=")
        return RunView(self, region=region, replica=replica)

    def __iter__(self) -> Iterator[int]:  # pragma: no cover - guard against misuse
        raise TypeError(f"{type(self).__name__} is a context manager, not an iterable")


class RunView:
    """The requests of a run that one region (or replica) was asked or answered: what
    ``slo.assert_met`` and the measures need (``log``, ``t0_epoch``, ``duration_s``,
    ``done``, ``join``), over a subset. Made by :meth:`RunBase.where`."""

    def __init__(self, run: RunBase, *, region: str | None, replica: str | None) -> None:
        self.run = run
        self.region = region
        self.replica = replica

    def _select(self, log: RequestLog) -> RequestLog:
        import numpy as np

        mask = np.ones(len(log), dtype=np.bool_)
        if self.region is not None:
            mask &= log.region == self.region
        if self.replica is not None:
            mask &= log.replica == self.replica
        return log.select(mask)

    @property
    def log(self) -> RequestLog:
        return self._select(self.run.log)

    def snapshot(self) -> RequestLog:
        return self._select(self.run.snapshot())

    @property
    def url(self) -> str:
        return self.run.url

    @property
    def t0_epoch(self) -> float:
        return self.run.t0_epoch

    @property
    def duration_s(self) -> float:
        return self.run.duration_s

    @property
    def rate_rps(self) -> float:
        return len(self.log) / self.duration_s if self.run.done else self.run.rate_rps

    @property
    def done(self) -> bool:
        return self.run.done

    def join(self) -> RequestLog:
        self.run.join()
        return self.log
