"""The cluster capacity arithmetic (chaosrec.slo.capacity) on hand-made timelines."""

from __future__ import annotations

import pytest

from chaosrec.slo.capacity import CapacitySample, CapacityTimeline, RegionSample, summarize


def _timeline(available: list[int], *, desired: int = 4, start: float = 1.0) -> CapacityTimeline:
    samples = [
        CapacitySample(
            float(t),
            (RegionSample("region-a", 2, 16, 8, a),),
            desired=desired,
            available=a,
            pending=desired - a,
        )
        for t, a in enumerate(available)
    ]
    return CapacityTimeline(samples, fault_start_s=start, label="lose region-a")


@pytest.mark.parametrize(
    ("available", "impaired", "recovered", "rto"),
    [
        ([4, 4, 2, 2, 4, 4], 2.0, 4.0, 3.0),
        ([4, 4, 4, 4], None, None, 0.0),  # never impaired
        ([4, 2, 2, 2], 1.0, None, None),  # ended impaired: no RTO
        ([4, 2, 4, 2, 4, 4], 1.0, 4.0, 3.0),  # full only for good counts
    ],
    ids=["recovers", "never-impaired", "never-recovers", "flapping"],
)
def test_impaired_recovered_and_rto(
    available: list[int], impaired: float | None, recovered: float | None, rto: float | None
) -> None:
    timeline = _timeline(available)
    assert timeline.impaired_at_s() == impaired
    assert timeline.recovered_at_s() == recovered
    assert timeline.rto_s() == rto


def test_pending_and_free_gpus() -> None:
    timeline = _timeline([4, 1, 3])
    assert timeline.pending_max() == 3
    assert timeline.pending_at_end() == 1
    assert timeline.samples[0].regions[0].gpus_free == 8
    assert timeline.to_dict()["rto_s"] is None


def test_no_fault_start_means_no_rto() -> None:
    assert CapacityTimeline(_timeline([4, 2, 4]).samples).rto_s() is None


def test_summarize_uses_the_nearest_rank() -> None:
    assert summarize([60.6, 54.0, 67.8, 55.3, 63.0]) == {
        "n": 5.0, "min": 54.0, "p50": 60.6, "max": 67.8,
    }  # fmt: skip
    assert summarize([]) == {}
