"""Time windows over a request log, and the recovery / detection times computed from them.

All times are seconds on the run's clock (0 = first scheduled request). Windows
are half-open ``[start, start + width)`` and bucket requests by *scheduled* time.

Definitions (pure functions, property-tested against brute force):

* a request is **good** when it was answered 2xx, not degraded, and (when a
  latency bound is given) within that bound (answered and degraded as
  :mod:`chaosrec.slo.measures` defines them);
* a window **meets** the objective when it holds at least ``min_requests``
  requests and its share of good requests is at least ``target``;
* **recovery** is the start of the first window, at or after the reference time,
  from which *every* later window of the run meets the objective (one good window
  in the middle of flapping is not recovery); ``RTO = recovery - reference``;
* **detection** (MTTD) is how long the service took to route around the fault: from
  the fault's start to the scheduled time of the first good answer served by a
  replica outside the faulted targets after which no request is impaired for the
  rest of the fault (impaired: failed, degraded, too slow, or served by a faulted
  target). No impaired request means there was nothing to detect (``None``); an
  impairment still present when the fault ended means it was never detected (inf).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from chaosrec.slo.log import RequestLog
from chaosrec.slo.measures import answered_mask, degraded_mask

__all__ = ["WindowStats", "detection_time", "good_mask", "recovery_time", "window_stats"]


def good_mask(log: RequestLog, latency_ms: float | None = None) -> npt.NDArray[np.bool_]:
    """Per request: 2xx, not degraded, and within ``latency_ms`` when given."""
    good = answered_mask(log) & ~degraded_mask(log)
    if latency_ms is not None:
        good &= log.latency_ms <= latency_ms
    return good


@dataclass(frozen=True)
class WindowStats:
    """Per-window counts (arrays of equal length, one entry per window)."""

    start_s: npt.NDArray[np.float64]
    width_s: float
    total: npt.NDArray[np.int64]
    good: npt.NDArray[np.int64]
    ok: npt.NDArray[np.int64]
    degraded: npt.NDArray[np.int64]

    def meets(self, target: float, min_requests: int = 1) -> npt.NDArray[np.bool_]:
        """Windows with at least ``min_requests`` requests and good share >= ``target``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(self.total > 0, self.good / np.maximum(self.total, 1), 0.0)
        return (self.total >= min_requests) & (share >= target - 1e-12)


def window_stats(
    log: RequestLog,
    width_s: float,
    *,
    end_s: float | None = None,
    latency_ms: float | None = None,
) -> WindowStats:
    """Bucket the log into windows of ``width_s`` from 0 to ``end_s`` (default: last request)."""
    if width_s <= 0:
        raise ValueError(f"width_s={width_s} must be > 0")
    last = float(log.scheduled_s.max()) if len(log) else 0.0
    end = last + 1e-9 if end_s is None else end_s
    n = max(1, math.ceil(end / width_s))
    idx = np.minimum((log.scheduled_s // width_s).astype(np.int64), n - 1)
    idx = idx[idx >= 0]
    good = good_mask(log, latency_ms)

    def count(mask: npt.NDArray[np.bool_] | None) -> npt.NDArray[np.int64]:
        sel = idx if mask is None else idx[mask[: len(idx)]]
        return np.bincount(sel, minlength=n).astype(np.int64)

    return WindowStats(
        start_s=np.arange(n, dtype=np.float64) * width_s,
        width_s=width_s,
        total=count(None),
        good=count(good),
        ok=count(answered_mask(log)),
        degraded=count(degraded_mask(log)),
    )


def recovery_time(
    log: RequestLog,
    reference_s: float,
    *,
    target: float,
    width_s: float = 0.5,
    latency_ms: float | None = None,
    min_requests: int = 1,
) -> float:
    """Seconds from ``reference_s`` until the service met ``target`` for good (see module doc).

    Windows are aligned on ``reference_s``. Returns ``0.0`` when every window from the
    reference on meets the target, and ``inf`` when the run ends before recovery.
    Windows with fewer than ``min_requests`` requests neither break nor prove recovery.
    """
    after = log.select(log.scheduled_s >= reference_s)
    if len(after) == 0:
        return math.inf
    shifted = RequestLog(
        t0_epoch=after.t0_epoch,
        scheduled_s=after.scheduled_s - reference_s,
        sent_s=after.sent_s - reference_s,
        done_s=after.done_s - reference_s,
        status=after.status,
        region=after.region,
        replica=after.replica,
        degraded=after.degraded,
        error=after.error,
    )
    stats = window_stats(shifted, width_s, latency_ms=latency_ms)
    meets = stats.meets(target, 1)
    counted = stats.total >= min_requests
    # A window breaks recovery only if it has enough requests to judge and misses.
    bad = counted & ~meets
    if not bad.any():
        return 0.0
    last_bad = int(np.nonzero(bad)[0][-1])
    later_good = np.nonzero(counted & meets)[0]
    later_good = later_good[later_good > last_bad]
    if later_good.size == 0:
        return math.inf
    return float(stats.start_s[later_good[0]])


def detection_time(
    log: RequestLog,
    fault_start_s: float,
    faulted: Collection[str],
    *,
    latency_ms: float | None = None,
    fault_end_s: float | None = None,
) -> float | None:
    """Seconds from ``fault_start_s`` to detection (see module doc).

    ``faulted`` holds the replica ids the fault hit. Returns ``None`` when no
    request was impaired (nothing to detect) and ``inf`` when an impairment was
    never routed around before the fault ended (or the run ended).
    """
    end = math.inf if fault_end_s is None else fault_end_s
    mask = (log.scheduled_s >= fault_start_s) & (log.scheduled_s < end)
    during = log.select(mask)
    if len(during) == 0:
        return None
    good = good_mask(during, latency_ms)
    on_faulted = np.array([r in faulted for r in during.replica], dtype=np.bool_)
    impaired = ~good | on_faulted
    if not impaired.any():
        return None
    first_impaired = int(np.argmax(impaired))
    routed_around = good & ~on_faulted
    routed_around[: first_impaired + 1] = False
    # detection: the first good answer from elsewhere after which no request
    # is impaired anymore while the fault lasts
    impaired_idx = np.nonzero(impaired)[0]
    last_impaired = int(impaired_idx[-1])
    candidates = np.nonzero(routed_around)[0]
    candidates = candidates[candidates > last_impaired]
    if candidates.size == 0:
        return math.inf
    return float(during.scheduled_s[candidates[0]] - fault_start_s)
