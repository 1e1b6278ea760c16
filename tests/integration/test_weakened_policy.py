"""A weakened gateway policy makes the region-failover objectives fail, readably."""

from __future__ import annotations

from typing import Any

import pytest

from chaosrec.errors import SLOViolation

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("policy", "breached"),
    [
        (
            {"failover": False},
            r"degraded_share measured 0\.[1-9]\d* \(\d+/\d+\) vs target <= 0\.01",
        ),
        (
            {"failover": False, "fallback": False},
            r"availability measured 0\.[0-9]+ \(\d+/\d+\) vs target >= 0\.999",
        ),
    ],
    ids=["no-failover", "no-failover-no-fallback"],
)
def test_region_outage_without_failover_breaches_the_slo(
    recsys: Any, chaos: Any, load: Any, slo: Any, policy: dict[str, bool], breached: str
) -> None:
    with recsys.policy_changed(**policy):
        with load.run(rate=150, duration=6) as run:
            run.wait(1.5)
            with chaos.region_outage("region-a"):
                run.wait(3)
        with pytest.raises(SLOViolation, match=breached):
            slo.assert_met(run, availability=0.999, degraded_share=0.01)
    assert recsys.policy()["failover"] is True  # restored
