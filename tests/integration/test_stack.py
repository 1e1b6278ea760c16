"""The embedded 2 x 2 stack, end to end: real Triton, real Toxiproxy, the real gateway."""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from chaosrec.stack.stack import EmbeddedStack

pytestmark = pytest.mark.integration


def _get(client: httpx.Client, user_id: int) -> httpx.Response:
    return client.get("/recommend", params={"user_id": user_id, "k": 10})


def test_status_shows_every_process(clean_stack: EmbeddedStack) -> None:
    status = clean_stack.status()
    assert status["gateway"]["alive"]
    assert len(status["replicas"]) == 4
    assert all(r["alive"] and r["http_port"] > 0 for r in status["replicas"])
    assert status["versions"]["triton"].startswith("2.")
    assert status["versions"]["toxiproxy"].startswith("2.")
    assert set(clean_stack.topology.replica_ids()) <= set(clean_stack.toxiproxy.proxies())


def test_thousand_requests_all_succeed(
    clean_stack: EmbeddedStack, record_property: Callable[[str, object], None]
) -> None:
    latencies_ms: list[float] = []
    replicas: Counter[str] = Counter()
    with httpx.Client(base_url=clean_stack.gateway_url, timeout=5.0) as client:
        for i in range(1000):
            started = time.perf_counter()
            resp = _get(client, i % 5000)
            latencies_ms.append((time.perf_counter() - started) * 1000)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert not body["degraded"] and len(body["items"]) == 10
            replicas[body["replica"]] += 1
    cuts = statistics.quantiles(latencies_ms, n=100)
    record_property("p50_ms", round(cuts[49], 2))
    record_property("p99_ms", round(cuts[98], 2))
    print(
        f"1000 sequential requests: p50 {cuts[49]:.2f} ms, p99 {cuts[98]:.2f} ms, {dict(replicas)}"
    )
    # Healthy: the home region serves everything, spread over both of its replicas.
    assert set(replicas) == {"region-a.r0", "region-a.r1"}
    assert min(replicas.values()) > 300


def test_answers_differ_per_user_and_are_deterministic(clean_stack: EmbeddedStack) -> None:
    with httpx.Client(base_url=clean_stack.gateway_url, timeout=5.0) as client:
        first = [_get(client, u).json()["items"] for u in (1, 2, 1)]
    assert first[0] == first[2]
    assert first[0] != first[1]


def test_region_outage_fails_over_and_back(clean_stack: EmbeddedStack, wait_for: Any) -> None:
    toxi = clean_stack.toxiproxy
    region_a = [r.id for r in clean_stack.topology.region_replicas("region-a")]
    with httpx.Client(base_url=clean_stack.gateway_url, timeout=5.0) as client:
        for name in region_a:
            toxi.set_enabled(name, False)
        try:
            took = wait_for(
                lambda: _get(client, 1).json()["region"] == "region-b", 5.0, "failover to region-b"
            )
            print(f"failover observed after {took:.3f} s")
            after = [_get(client, u) for u in range(300)]
            assert all(r.status_code == 200 for r in after)
            bodies = [r.json() for r in after]
            assert {b["region"] for b in bodies} == {"region-b"}
            assert not any(b["degraded"] for b in bodies)
        finally:
            for name in region_a:
                toxi.set_enabled(name, True)
        back = wait_for(
            lambda: _get(client, 1).json()["region"] == "region-a", 10.0, "traffic back to region-a"
        )
        print(f"traffic back in region-a after {back:.3f} s")


def test_gpu_loss_is_retried_on_the_peer(clean_stack: EmbeddedStack) -> None:
    clean_stack.set_gpu_fault("region-a.r0", {"device_lost": True})
    with httpx.Client(base_url=clean_stack.gateway_url, timeout=5.0) as client:
        bodies = [_get(client, u).json() for u in range(200)]
    assert not any(b["degraded"] for b in bodies)
    assert {b["replica"] for b in bodies} == {"region-a.r1"}
    # The gateway saw the emulated device error from region-a.r0 and retried.
    metrics = _metric_values(httpx.get(f"{clean_stack.gateway_url}/metrics").text)
    errors = metrics.get(
        (
            "chaosrec_gateway_upstream_attempts_total",
            (("outcome", "error"), ("replica", "region-a.r0")),
        )
    )
    assert errors is not None and errors > 0


def _metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse Prometheus text into {(name, sorted labels): value}."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name, _, labels = head.partition("{")
        pairs = tuple(
            sorted(
                (k, v.strip('"'))
                for k, v in (p.split("=", 1) for p in labels.rstrip("}").split(",") if p)
            )
        )
        out[(name, pairs)] = float(value)
    return out


def test_total_outage_gives_degraded_answers(clean_stack: EmbeddedStack, wait_for: Any) -> None:
    toxi = clean_stack.toxiproxy
    with httpx.Client(base_url=clean_stack.gateway_url, timeout=5.0) as client:
        warm = _get(client, 42).json()["items"]
        for name in clean_stack.topology.replica_ids():
            toxi.set_enabled(name, False)
        try:
            wait_for(lambda: _get(client, 42).json()["degraded"], 5.0, "degraded answers")
            remembered = _get(client, 42).json()
            unknown = _get(client, 4999).json()
        finally:
            for name in clean_stack.topology.replica_ids():
                toxi.set_enabled(name, True)
    assert remembered["source"] == "last_good" and remembered["items"] == warm
    assert unknown["source"] in ("popularity", "last_good") and len(unknown["items"]) == 10


def test_crashed_replica_is_restarted(
    clean_stack: EmbeddedStack, wait_for: Any, tree_nices: Any
) -> None:
    handle = clean_stack.replicas["region-b.r1"]
    pid = handle.triton.process.pid
    assert pid is not None
    seen = len(clean_stack.events)
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: any(
            e.kind == "ready" and e.process == "region-b.r1" for e in clean_stack.events[seen:]
        ),
        60.0,
        "restart of region-b.r1",
    )
    kinds = [e.kind for e in clean_stack.events[seen:] if e.process == "region-b.r1"]
    assert kinds[:3] == ["crashed", "restarted", "ready"]
    assert handle.triton.process.pid != pid
    # restarted at a lower CPU priority (a Triton start is seconds of CPU), and back at
    # ours once ready, Python-backend stub and every thread included (we run as root in
    # CI; without CAP_SYS_NICE the replica would stay lower)
    new_pid = handle.triton.process.pid
    assert new_pid is not None
    nices = tree_nices(new_pid)
    assert len(nices) > 2
    if os.geteuid() == 0:
        assert set(nices) == {os.getpriority(os.PRIO_PROCESS, 0)}
    ready = next(e for e in clean_stack.events[seen:] if e.kind == "ready")
    print(f"replica restarted and ready after {ready.detail['recovery_s']} s")
    # Killing only tritonserver can orphan its Python-backend stub (it usually notices
    # and exits); whatever is left, the reaper removes, and a second pass finds nothing.
    from chaosrec.stack.reaper import reap_orphans

    assert clean_stack._dist is not None
    reap_orphans(clean_stack._dist.backend_dir)
    assert reap_orphans(clean_stack._dist.backend_dir) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"user_id": "abc"}, "user_id='abc' must be a non-negative integer"),
        ({"user_id": "-1"}, "user_id=-1 must be a non-negative integer"),
        ({"user_id": "1", "k": "0"}, "k=0 must be in [1, 50]"),
        ({"user_id": "1", "k": "999"}, "k=999 must be in [1, 50]"),
        ({"user_id": "1", "region": "mars"}, "region='mars' is not one of"),
        ({}, "user_id=None must be a non-negative integer"),
    ],
    ids=["not-int", "negative", "k-zero", "k-large", "bad-region", "missing"],
)
def test_bad_requests_get_400(
    clean_stack: EmbeddedStack, query: dict[str, str], message: str
) -> None:
    resp = httpx.get(f"{clean_stack.gateway_url}/recommend", params=query)
    assert resp.status_code == 400
    assert message in resp.json()["error"]


def test_batch_endpoint(clean_stack: EmbeddedStack) -> None:
    resp = httpx.post(
        f"{clean_stack.gateway_url}/recommend/batch", json={"user_ids": [1, 2, 3], "k": 5}
    )
    assert resp.status_code == 200
    results = resp.json()["results"]
    assert [r["user_id"] for r in results] == [1, 2, 3]
    assert all(len(r["items"]) == 5 for r in results)


def test_gateway_metrics_are_prometheus_text(clean_stack: EmbeddedStack) -> None:
    httpx.get(f"{clean_stack.gateway_url}/recommend", params={"user_id": 3})
    text = httpx.get(f"{clean_stack.gateway_url}/metrics").text
    assert "chaosrec_gateway_requests_total" in text
    healthy = _metric_values(text)[
        ("chaosrec_gateway_upstream_healthy", (("region", "region-a"), ("replica", "region-a.r0")))
    ]
    assert healthy == 1.0


def test_gateway_reports_its_gc_pauses(clean_stack: EmbeddedStack) -> None:
    """Every request waits out a collection in the gateway, so its pauses are a metric."""
    for user in range(300):  # enough allocation for young-generation collections
        httpx.get(f"{clean_stack.gateway_url}/recommend", params={"user_id": user})
    values = _metric_values(httpx.get(f"{clean_stack.gateway_url}/metrics").text)
    young = values[("chaosrec_gateway_gc_pause_seconds_count", (("generation", "0"),))]
    total = values[("chaosrec_gateway_gc_pause_seconds_sum", (("generation", "0"),))]
    assert young >= 1
    assert 0 < total < young  # each pause well under a second
