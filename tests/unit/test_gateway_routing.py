"""The gateway's routing, retries and hedging, with replicas replaced by in-process
coroutines (the real network path is covered by the integration tests and drills)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from chaosrec.stack.gateway.app import Gateway
from chaosrec.stack.gateway.config import GatewayConfig, PolicyConfig, UpstreamConfig
from chaosrec.stack.gateway.upstream import InferenceResult, Upstream

IDS = ("a.r0", "a.r1", "b.r0", "b.r1")


def _gateway(**policy: Any) -> Gateway:
    config = GatewayConfig(
        port=1,
        home_region="a",
        upstreams=tuple(UpstreamConfig(i, i[0], f"127.0.0.1:{n + 2}") for n, i in enumerate(IDS)),
        popularity=(3, 2, 1),
        policy=PolicyConfig(**policy),
    )
    gateway = Gateway(config)
    for upstream in gateway.upstreams:
        upstream.healthy = True
    return gateway


def _by_id(gateway: Gateway) -> dict[str, Upstream]:
    return {u.id: u for u in gateway.upstreams}


def _replica(delay_s: float, fail: bool = False) -> Callable[..., Any]:
    async def infer(model: str, user_ids: Any, timeout_s: float) -> InferenceResult:
        await asyncio.wait_for(asyncio.sleep(delay_s), timeout_s)
        if fail:
            raise RuntimeError("CUDA error: device lost")
        n = len(user_ids)
        return InferenceResult(
            items=np.tile(np.arange(50, dtype=np.int64), (n, 1)),
            scores=np.zeros((n, 50), dtype=np.float32),
            model_version="1",
        )

    return infer


def _serve(gateway: Gateway, delays: dict[str, tuple[float, bool]]) -> Any:
    for rid, (delay, fail) in delays.items():
        _by_id(gateway)[rid].infer = _replica(delay, fail)  # type: ignore[method-assign]
    return asyncio.run(gateway.recommend(np.array([7], dtype=np.int64), 10, "a"))


def test_fast_replicas_of_any_region_come_before_slow_ones() -> None:
    gateway = _gateway()
    replicas = _by_id(gateway)
    replicas["a.r0"].observe_attempt(0.4)
    replicas["a.r1"].observe_attempt(0.4)
    gateway.candidates("a")  # spends this interval's probe of each slow replica
    order = [u.id for u in gateway.candidates("a")]
    assert order[:2] == ["b.r0", "b.r1"] or order[:2] == ["b.r1", "b.r0"]
    assert set(order[2:]) == {"a.r0", "a.r1"}


def test_without_failover_slow_home_replicas_are_all_there_is() -> None:
    gateway = _gateway(failover=False)
    for upstream in gateway.upstreams:
        upstream.observe_attempt(0.4)
    assert {u.id for u in gateway.candidates("a")} == {"a.r0", "a.r1"}


def test_latency_ewma_follows_a_change_within_two_samples() -> None:
    upstream = _gateway().upstreams[0]
    upstream.observe_attempt(0.002)
    upstream.observe_attempt(0.2)
    upstream.observe_attempt(0.2)
    assert upstream.slow  # 0.1505 s > 0.1 s
    upstream.observe_attempt(0.002)
    upstream.observe_attempt(0.002)
    assert not upstream.slow


def test_fast_health_checks_do_not_hide_slow_answers() -> None:
    upstream = _gateway().upstreams[0]
    for _ in range(10):
        upstream.observe_rtt(0.001)  # a throttled link still passes tiny checks quickly
    upstream.observe_attempt(0.5)
    assert upstream.slow and upstream.latency_ewma_s == 0.5


def test_a_slow_replica_is_still_probed_once_per_interval() -> None:
    gateway = _gateway(health_interval_s=0.2)
    replicas = _by_id(gateway)
    for rid in ("a.r0", "a.r1"):
        replicas[rid].observe_attempt(0.4)
    first = [u.id for u in gateway.candidates("a")]
    second = [u.id for u in gateway.candidates("a")]
    # the first call promotes both slow replicas for one probe; the next does not
    assert first[0].startswith("a.") and second[0].startswith("b.")


def test_a_slow_attempt_is_hedged_to_the_other_region() -> None:
    gateway = _gateway(hedge_after_s=0.02, attempt_timeout_s=1.0)
    slow, fast = (0.5, False), (0.0, False)
    answer = _serve(gateway, {"a.r0": slow, "a.r1": slow, "b.r0": fast, "b.r1": fast})
    assert answer.region == "b" and answer.source == "model"
    assert answer.attempts == 2  # the first attempt and one hedge, not three
    text = gateway.registry.get_sample_value
    assert text("chaosrec_gateway_hedges_total") == 1
    cancelled = sum(
        text("chaosrec_gateway_upstream_attempts_total", {"replica": r, "outcome": "cancelled"})
        or 0
        for r in ("a.r0", "a.r1")
    )
    assert cancelled == 1
    # the loser was slower than the hedge delay, and no breaker counted it as a failure
    assert all(u.breaker.allow() for u in gateway.upstreams)


def test_no_hedging_when_disabled() -> None:
    gateway = _gateway(hedge_after_s=0, attempt_timeout_s=1.0)
    answer = _serve(gateway, {"a.r0": (0.1, False), "a.r1": (0.1, False)})
    assert answer.region == "a" and answer.attempts == 1


def test_the_hedge_budget_bounds_extra_attempts() -> None:
    gateway = _gateway(hedge_after_s=0.005, hedge_budget_max=2, hedge_budget_ratio=0.0)
    slow = (0.03, False)
    hedged = 0
    for _ in range(5):
        answer = _serve(gateway, dict.fromkeys(IDS, slow))
        hedged += answer.attempts - 1
    assert gateway.registry.get_sample_value("chaosrec_gateway_hedges_total") == 2
    assert hedged == 2


def test_a_failed_attempt_is_retried_at_once() -> None:
    gateway = _gateway(hedge_after_s=0)
    answer = _serve(
        gateway,
        {"a.r0": (0.0, True), "a.r1": (0.0, True), "b.r0": (0.0, False), "b.r1": (0.0, False)},
    )
    assert answer.region == "b" and answer.attempts == 3


def test_every_attempt_failing_gives_the_fallback() -> None:
    gateway = _gateway(hedge_after_s=0)
    answer = _serve(gateway, {rid: (0.0, True) for rid in IDS})
    assert answer.degraded and answer.source == "popularity"


@pytest.mark.parametrize("hedge_after_s", [0.0, 0.01], ids=["no-hedge", "hedge"])
def test_request_timeout_bounds_the_whole_request(hedge_after_s: float) -> None:
    gateway = _gateway(
        hedge_after_s=hedge_after_s, attempt_timeout_s=5.0, request_timeout_s=0.1, max_attempts=3
    )
    for rid in IDS:
        _by_id(gateway)[rid].infer = _replica(5.0)  # type: ignore[method-assign]

    async def timed() -> tuple[Any, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        answer = await gateway.recommend(np.array([7], dtype=np.int64), 10, "a")
        return answer, loop.time() - started

    answer, took_s = asyncio.run(timed())
    assert took_s < 1.0  # 0.1 s request timeout, against 5 s replicas
    assert answer.degraded
