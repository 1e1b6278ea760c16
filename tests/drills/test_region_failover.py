"""The drill API's reference example, as written in the issue."""

from __future__ import annotations

import pytest

from chaosrec.errors import SLOViolation


@pytest.mark.drill
def test_region_failover(recsys, chaos, load, slo):  # type: ignore[no-untyped-def]
    """Seed practice: region-level DR. Proves that losing the home region (its proxies
    refuse connections) costs at most 0.1 % of requests, keeps p99 under 250 ms and
    recovers within 2 s."""
    with load.run(rate=200, duration=12) as run:
        run.wait(3)
        with chaos.region_outage("region-a"):
            run.wait(5)
    slo.assert_met(run, availability=0.999, p99_ms=250, rto_s=2.0)
    # the same run against an impossible objective fails, saying measured vs target
    with pytest.raises(
        SLOViolation, match=r"p99_ms measured \d+\.\d ms \(n=\d+\) vs target <= 0.01 ms"
    ):
        slo.assert_met(run, availability=0.999, p99_ms=0.01)
