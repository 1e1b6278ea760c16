"""The request log of a load run: one row per scheduled request, as numpy columns.

Times are seconds relative to the run's start (``t0``, monotonic); ``t0_epoch``
converts them to wall-clock time for reports. ``latency_ms`` is measured from
the request's *scheduled* time, not from when it was sent, so a stalled server
cannot hide its own latency (no coordinated omission); ``service_ms`` is from
send to answer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = ["COLUMNS", "STATUS_CLIENT_DROPPED", "STATUS_TRANSPORT_ERROR", "RequestLog", "Row"]

#: status recorded when the request failed below HTTP (refused, reset, timed out)
STATUS_TRANSPORT_ERROR = 0
#: status recorded when the load generator itself had too many requests in flight
STATUS_CLIENT_DROPPED = -1

#: one request: (scheduled_s, sent_s, done_s, status, region, replica, degraded, error)
Row: TypeAlias = tuple[float, float, float, int, str | None, str | None, bool, str | None]

#: the columns of a log, in row order, with their dtypes
COLUMNS: tuple[tuple[str, type[np.generic]], ...] = (
    ("scheduled_s", np.float64),
    ("sent_s", np.float64),
    ("done_s", np.float64),
    ("status", np.int32),
    ("region", np.object_),
    ("replica", np.object_),
    ("degraded", np.bool_),
    ("error", np.object_),
)


@dataclass(frozen=True, eq=False)  # numpy columns: compare them explicitly
class RequestLog:
    """Columns of equal length, sorted by scheduled time."""

    t0_epoch: float
    scheduled_s: npt.NDArray[np.float64]
    sent_s: npt.NDArray[np.float64]
    done_s: npt.NDArray[np.float64]
    status: npt.NDArray[np.int32]
    region: npt.NDArray[np.object_]
    replica: npt.NDArray[np.object_]
    degraded: npt.NDArray[np.bool_]
    error: npt.NDArray[np.object_]

    @classmethod
    def from_rows(cls, t0_epoch: float, rows: Sequence[Row]) -> RequestLog:
        """A log of ``rows`` (see :data:`Row`) in any order; sorted here by scheduled time."""
        ordered = sorted(rows, key=lambda r: r[0])
        columns = list(zip(*ordered, strict=True)) if ordered else [()] * len(COLUMNS)
        return cls.from_columns(t0_epoch, columns)

    @classmethod
    def from_columns(cls, t0_epoch: float, columns: Sequence[npt.ArrayLike]) -> RequestLog:
        """A log of ``columns`` in :data:`COLUMNS` order, already sorted by scheduled time
        (arrays of the right dtype are used as they are, not copied)."""
        if len(columns) != len(COLUMNS):
            raise ValueError(
                f"got {len(columns)} columns; a request log has {len(COLUMNS)}: "
                f"{[name for name, _ in COLUMNS]}"
            )
        scheduled, sent, done, status, region, replica, degraded, error = columns
        return cls(
            t0_epoch=t0_epoch,
            scheduled_s=np.asarray(scheduled, dtype=np.float64),
            sent_s=np.asarray(sent, dtype=np.float64),
            done_s=np.asarray(done, dtype=np.float64),
            status=np.asarray(status, dtype=np.int32),
            region=np.asarray(region, dtype=object),
            replica=np.asarray(replica, dtype=object),
            degraded=np.asarray(degraded, dtype=np.bool_),
            error=np.asarray(error, dtype=object),
        )

    def __len__(self) -> int:
        return int(self.scheduled_s.shape[0])

    @property
    def latency_ms(self) -> npt.NDArray[np.float64]:
        """Response time from the scheduled send time (coordinated-omission free)."""
        return (self.done_s - self.scheduled_s) * 1000.0

    @property
    def service_ms(self) -> npt.NDArray[np.float64]:
        """Time from the actual send to the answer."""
        return (self.done_s - self.sent_s) * 1000.0

    @property
    def ok(self) -> npt.NDArray[np.bool_]:
        """Answered with HTTP 2xx (degraded answers included)."""
        return (self.status >= 200) & (self.status < 300)

    def window(self, start_s: float, end_s: float) -> RequestLog:
        """Rows whose scheduled time is in ``[start_s, end_s)``."""
        mask = (self.scheduled_s >= start_s) & (self.scheduled_s < end_s)
        return self.select(mask)

    def select(self, mask: npt.NDArray[np.bool_]) -> RequestLog:
        return RequestLog(
            t0_epoch=self.t0_epoch,
            scheduled_s=self.scheduled_s[mask],
            sent_s=self.sent_s[mask],
            done_s=self.done_s[mask],
            status=self.status[mask],
            region=self.region[mask],
            replica=self.replica[mask],
            degraded=self.degraded[mask],
            error=self.error[mask],
        )

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                "scheduled_s",
                "sent_s",
                "latency_ms",
                "status",
                "region",
                "replica",
                "degraded",
                "error",
            ]
        )
        for i in range(len(self)):
            writer.writerow(
                [
                    f"{self.scheduled_s[i]:.6f}",
                    f"{self.sent_s[i]:.6f}",
                    f"{self.latency_ms[i]:.3f}",
                    int(self.status[i]),
                    self.region[i] or "",
                    self.replica[i] or "",
                    int(self.degraded[i]),
                    self.error[i] or "",
                ]
            )
        return out.getvalue()
