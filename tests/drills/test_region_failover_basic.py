"""A first drill on the embedded stack: one region black-holed at the proxy level.

Seed practice: region-level DR ("replicas in several regions; when a region fails,
another serves"), evaluated by response (detection) and recovery time.
"""

from __future__ import annotations

import time

import httpx
import pytest

from chaosrec.stack.stack import EmbeddedStack

pytestmark = [pytest.mark.drill, pytest.mark.integration]


def test_region_a_proxies_disabled(clean_stack: EmbeddedStack) -> None:
    """Disabling region-a's proxies moves traffic to region-b with no failed or degraded
    answers once failover happened, and traffic returns to region-a after the fault."""
    toxi = clean_stack.toxiproxy
    region_a = [r.id for r in clean_stack.topology.region_replicas("region-a")]
    served: list[tuple[float, int, str | None, bool]] = []
    with httpx.Client(base_url=clean_stack.gateway_url, timeout=5.0) as client:

        def hit(n: int) -> None:
            for i in range(n):
                resp = client.get("/recommend", params={"user_id": i % 5000})
                body = resp.json() if resp.status_code == 200 else {}
                served.append(
                    (
                        time.monotonic(),
                        resp.status_code,
                        body.get("region"),
                        body.get("degraded", True),
                    )
                )

        hit(100)
        fault_at = time.monotonic()
        for name in region_a:
            toxi.set_enabled(name, False)
        try:
            hit(400)
        finally:
            for name in region_a:
                toxi.set_enabled(name, True)
        clean_stack.wait_healthy(timeout_s=10)
        hit(100)
    during = [s for s in served if s[0] >= fault_at][:400]
    first_b = next(i for i, s in enumerate(during) if s[2] == "region-b")
    detect_s = during[first_b][0] - fault_at
    after_failover = during[first_b:]
    assert all(code == 200 and not degraded for _, code, _, degraded in during), (
        "every request during the outage must still be answered by the model"
    )
    assert {region for _, _, region, _ in after_failover} == {"region-b"}
    assert served[-1][2] == "region-a", "traffic should return to region-a after the fault"
    print(f"failover after {detect_s * 1000:.0f} ms; {len(after_failover)} requests from region-b")
