"""The gateway sheds excess load with a fast 503 + Retry-After instead of queueing it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_requests_past_max_inflight_get_503_with_retry_after(recsys: Any, chaos: Any) -> None:
    url = f"{recsys.gateway_url}/recommend"
    # 100 ms on every link keeps requests in flight long enough to reach the limit
    with (
        recsys.policy_changed(max_inflight=4),
        chaos.latency("all", ms=100),
        httpx.Client(timeout=5) as client,
        ThreadPoolExecutor(16) as pool,
    ):
        answers = list(pool.map(lambda i: client.get(url, params={"user_id": i}), range(64)))
    shed = [a for a in answers if a.status_code == 503]
    served = [a for a in answers if a.status_code == 200]
    assert len(shed) + len(served) == len(answers)
    assert shed and served, [a.status_code for a in answers]
    for answer in shed:
        assert answer.headers["Retry-After"] == "1"
        assert "overloaded" in answer.json()["error"]
    assert recsys.policy()["max_inflight"] == 256  # restored
