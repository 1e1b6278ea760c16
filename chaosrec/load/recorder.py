"""The rows of a running load, written by its loop thread and read as a
:class:`~chaosrec.slo.log.RequestLog` from any thread, at any time.

The loop only appends a tuple under a lock (no numpy on the hot path). A reader turns
the rows that arrived since its last read into columns and writes them into arrays
indexed by request number, so a snapshot costs the new rows plus one compaction of
the columns, not a sort of every row: a guardrail can read the log every 100 ms of a
20k-request run. Measured (2-core box at load average 3.6; 200 new rows per snapshot,
as 2000 req/s polled every 100 ms): median 0.63 ms at 20,000 rows, 0.30 ms at 5,000,
5 us when nothing is new; building the log from every row again took 23 ms at 20,000.

Request ``i`` is scheduled at ``i / rate``, so request number order *is* scheduled-time
order and a compaction keeps the log sorted as :class:`RequestLog` promises.
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt

from chaosrec.slo.log import COLUMNS, RequestLog, Row

__all__ = ["RowRecorder"]

_MIN_CAPACITY = 1024


class RowRecorder:
    """Rows keyed by request number; :meth:`record` from one thread, :meth:`snapshot`
    from any."""

    def __init__(self, *, keep_new: bool = False) -> None:
        self._lock = threading.Lock()  # guards _pending (the loop appends, readers swap)
        self._pending: list[tuple[int, Row]] = []
        #: with ``keep_new``, rows not yet handed out by :meth:`take_new` (a worker ships
        #: them to the process that merges the logs)
        self._new: list[tuple[int, Row]] | None = [] if keep_new else None
        self._read_lock = threading.Lock()  # one reader at a time updates the columns
        self._capacity = 0
        self._filled: npt.NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)
        self._columns: list[npt.NDArray[np.generic]] = [
            np.zeros(0, dtype=dtype) for _, dtype in COLUMNS
        ]
        self._count = 0
        self._cached: RequestLog | None = None

    def record(self, request: int, row: Row) -> None:
        """Row ``(scheduled_s, sent_s, done_s, status, region, replica, degraded, error)``
        of request number ``request`` (each request is recorded once)."""
        with self._lock:
            self._pending.append((request, row))
            if self._new is not None:
                self._new.append((request, row))

    def take_new(self) -> list[tuple[int, Row]]:
        """The rows recorded since the last call (needs ``keep_new=True``)."""
        with self._lock:
            if self._new is None:
                raise ValueError("this recorder was made without keep_new=True")
            new, self._new = self._new, []
        return new

    def __len__(self) -> int:
        """Rows recorded so far (read or not)."""
        with self._lock:
            return self._count + len(self._pending)

    def snapshot(self, t0_epoch: float) -> RequestLog:
        """Every row recorded so far, sorted by scheduled time. The returned log is a
        copy: later rows never change it."""
        with self._read_lock:
            with self._lock:
                new, self._pending = self._pending, []
                self._count += len(new)
            if new:
                self._add(new)
                self._cached = None
            if self._cached is None or self._cached.t0_epoch != t0_epoch:
                filled = self._filled
                columns = [col[filled] for col in self._columns]  # compaction: copies
                self._cached = RequestLog.from_columns(t0_epoch, columns)
            return self._cached

    def _add(self, new: list[tuple[int, Row]]) -> None:
        index = np.fromiter((i for i, _ in new), dtype=np.int64, count=len(new))
        self._grow(int(index.max()) + 1)
        columns = list(zip(*(row for _, row in new), strict=True))
        for target, values in zip(self._columns, columns, strict=True):
            target[index] = np.asarray(values, dtype=target.dtype)
        self._filled[index] = True

    def _grow(self, size: int) -> None:
        if size <= self._capacity:
            return
        capacity = max(size, 2 * self._capacity, _MIN_CAPACITY)
        grown = []
        for col in self._columns:
            bigger = np.zeros(capacity, dtype=col.dtype)
            if col.dtype == np.object_:
                bigger[:] = None
            bigger[: self._capacity] = col
            grown.append(bigger)
        self._columns = grown
        filled = np.zeros(capacity, dtype=np.bool_)
        filled[: self._capacity] = self._filled
        self._filled = filled
        self._capacity = capacity
