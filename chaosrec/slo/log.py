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
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["STATUS_CLIENT_DROPPED", "STATUS_TRANSPORT_ERROR", "RequestLog"]

#: status recorded when the request failed below HTTP (refused, reset, timed out)
STATUS_TRANSPORT_ERROR = 0
#: status recorded when the load generator itself had too many requests in flight
STATUS_CLIENT_DROPPED = -1


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
    def from_rows(cls, t0_epoch: float, rows: list[tuple[Any, ...]]) -> RequestLog:
        rows = sorted(rows, key=lambda r: r[0])
        cols = list(zip(*rows, strict=True)) if rows else [()] * 8
        return cls(
            t0_epoch=t0_epoch,
            scheduled_s=np.asarray(cols[0], dtype=np.float64),
            sent_s=np.asarray(cols[1], dtype=np.float64),
            done_s=np.asarray(cols[2], dtype=np.float64),
            status=np.asarray(cols[3], dtype=np.int32),
            region=np.asarray(cols[4], dtype=object),
            replica=np.asarray(cols[5], dtype=object),
            degraded=np.asarray(cols[6], dtype=np.bool_),
            error=np.asarray(cols[7], dtype=object),
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
