"""A cluster's serving capacity over time, and the recovery figures drills assert on: pure
arithmetic over samples (taken by :class:`chaosrec.drill.capacity.CapacityRecorder`).

Request-level measures (availability, latency percentiles) stay in :mod:`.measures`; this
module measures the *cluster*: how many pods were Ready and how many GPUs were usable per
region at each moment, and from that

* **impaired at**: the first sample after the fault's start with fewer available pods
  than desired (Kubernetes noticed the loss; for deleted nodes that is when the pod
  garbage collector removed their pods, ~40 s later);
* **RTO**: from the fault's start to the moment every Deployment was back at full
  availability *and stayed there* until the end of the recording;
* **pending**: pods the scheduler could not place, at most and at the end.

Example::

    timeline = CapacityTimeline(samples, fault_start_s=3.0)
    timeline.rto_s()            # 51.2, or None if it never recovered
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from chaosrec.slo.measures import nearest_rank

__all__ = ["CapacitySample", "CapacityTimeline", "RegionSample", "summarize"]


@dataclass(frozen=True)
class RegionSample:
    """One region at one moment: Ready schedulable nodes, GPUs they offer, GPUs requested by
    pods bound there, Ready pods there."""

    region: str
    nodes_ready: int
    gpus_allocatable: int
    gpus_requested: int
    pods_ready: int

    @property
    def gpus_free(self) -> int:
        return max(0, self.gpus_allocatable - self.gpus_requested)


@dataclass(frozen=True)
class CapacitySample:
    """The cluster at ``t_s`` seconds after the recording started."""

    t_s: float
    regions: tuple[RegionSample, ...]
    desired: int  # pods the Deployments want
    available: int  # pods the Deployments count available
    pending: int  # pods not bound to any node

    @property
    def full(self) -> bool:
        return self.available >= self.desired


@dataclass
class CapacityTimeline:
    """Samples (in time order) and the fault window on the same clock."""

    samples: list[CapacitySample] = field(default_factory=list)
    fault_start_s: float | None = None
    fault_end_s: float | None = None
    label: str = ""

    def impaired_at_s(self) -> float | None:
        """First sample time at or after the fault's start with fewer pods available than
        desired (None: never impaired)."""
        start = self.fault_start_s or 0.0
        for sample in self.samples:
            if sample.t_s >= start and not sample.full:
                return sample.t_s
        return None

    def recovered_at_s(self) -> float | None:
        """Start of the final run of full samples after the fault started, if the
        recording ends full and was impaired in between (None otherwise)."""
        start = self.fault_start_s or 0.0
        after = [s for s in self.samples if s.t_s >= start]
        if not after or not after[-1].full or self.impaired_at_s() is None:
            return None
        recovered = after[-1].t_s
        for sample in reversed(after):
            if not sample.full:
                break
            recovered = sample.t_s
        return recovered

    def rto_s(self) -> float | None:
        """Fault start to full availability for good; 0 when never impaired; None when the
        recording ended impaired."""
        if self.fault_start_s is None:
            return None
        if self.impaired_at_s() is None:
            return 0.0 if self.samples and self.samples[-1].full else None
        recovered = self.recovered_at_s()
        return None if recovered is None else recovered - self.fault_start_s

    def pending_max(self) -> int:
        return max((s.pending for s in self.samples), default=0)

    def pending_at_end(self) -> int:
        return self.samples[-1].pending if self.samples else 0

    def regions(self) -> list[str]:
        names: list[str] = []
        for sample in self.samples:
            names += [r.region for r in sample.regions if r.region not in names]
        return names

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "fault_start_s": self.fault_start_s,
            "fault_end_s": self.fault_end_s,
            "impaired_at_s": self.impaired_at_s(),
            "recovered_at_s": self.recovered_at_s(),
            "rto_s": self.rto_s(),
            "pending_max": self.pending_max(),
            "pending_at_end": self.pending_at_end(),
            "samples": len(self.samples),
        }


def summarize(values: Sequence[float]) -> dict[str, float]:
    """min, p50 and max (nearest rank, as every chaosrec percentile) of repeated figures,
    e.g. the RTOs of five runs of a drill."""
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "n": float(len(ordered)),
        "min": ordered[0],
        "p50": nearest_rank(ordered, None, 50),
        "max": ordered[-1],
    }
