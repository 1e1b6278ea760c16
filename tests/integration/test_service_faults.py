"""Service-level faults on the embedded stack: GPU loss (3 modes), degradation, OOM,
crash, bad model, partial toxicity; each reverts and the steady state comes back."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from chaosrec.errors import SteadyStateDeviated
from chaosrec.steady_state.hypotheses import at_least

pytestmark = pytest.mark.integration


def _served(recsys: Any, n: int = 100) -> list[dict[str, Any]]:
    with httpx.Client(base_url=recsys.gateway_url, timeout=5) as client:
        return [client.get("/recommend", params={"user_id": u}).json() for u in range(n)]


def test_gpu_loss_error_mode_is_routed_around(recsys: Any, chaos: Any) -> None:
    with chaos.gpu_loss("region-a.r0", mode="error"):
        answers = _served(recsys)
        assert all(not a["degraded"] for a in answers)
        assert "region-a.r0" not in {a["replica"] for a in answers}
    assert recsys.stack.replicas["region-a.r0"].fault_file.read_text() == "{}"


def test_gpu_loss_unload_uses_model_control(recsys: Any, chaos: Any) -> None:
    stack = recsys.stack
    with chaos.gpu_loss("region-a.r1", mode="unload"):
        assert stack.served_version("region-a.r1") is None
        assert not stack.replicas["region-a.r1"].triton.model_ready()
        assert all(not a["degraded"] for a in _served(recsys, 50))
    assert stack.replicas["region-a.r1"].triton.model_ready()
    assert stack.served_version("region-a.r1") == "1"


def test_gpu_loss_kill_holds_the_replica_down_until_revert(
    recsys: Any, chaos: Any, wait_for: Any
) -> None:
    handle = recsys.stack.replicas["region-b.r0"]
    with chaos.gpu_loss("region-b.r0", mode="kill"):
        # wait on the supervisor itself: ten passes in which it must leave the held replica down
        ticks = recsys.stack.supervisor_ticks
        wait_for(lambda: recsys.stack.supervisor_ticks >= ticks + 10, 10, "10 supervisor passes")
        assert not handle.triton.process.alive
    wait_for(handle.triton.control.ready_or_false, 60, "restart after release")


def test_crash_is_restarted_and_recorded(recsys: Any, chaos: Any, wait_for: Any) -> None:
    stack = recsys.stack
    handle = stack.replicas["region-b.r1"]
    old_pid = handle.triton.process.pid
    seen = len(stack.events)
    chaos.crash("region-b.r1")
    wait_for(
        lambda: any(e.kind == "ready" and e.process == "region-b.r1" for e in stack.events[seen:]),
        60,
        "region-b.r1 ready again",
    )
    events = [e for e in stack.events[seen:] if e.process == "region-b.r1"]
    assert [e.kind for e in events][:3] == ["crashed", "restarted", "ready"]
    assert events[2].detail["recovery_s"] > 0
    assert handle.triton.process.pid not in (None, old_pid)
    assert handle.triton.model_ready()


def test_gpu_degrade_slows_only_that_replica(recsys: Any, chaos: Any) -> None:
    import numpy as np
    import tritonclient.http as httpclient

    def latency_ms(replica: str) -> float:
        client = httpclient.InferenceServerClient(recsys.stack.triton_url(replica)[7:])
        inp = httpclient.InferInput("USER_ID", [1, 1], "INT64")
        inp.set_data_from_numpy(np.array([[1]], dtype=np.int64))
        samples = []
        for _ in range(20):
            started = time.perf_counter()
            client.infer("recsys", [inp])
            samples.append((time.perf_counter() - started) * 1000)
        return float(np.median(samples))

    with chaos.gpu_degrade("region-a.r0", slowdown=10):
        slow, normal = latency_ms("region-a.r0"), latency_ms("region-a.r1")
    # the emulated slowdown adds at least 2 ms x factor per batch (see faults.gpu)
    assert slow >= normal + 15


def test_gpu_oom_fails_a_share_of_attempts(recsys: Any, chaos: Any) -> None:
    with chaos.gpu_oom("region-a", fraction=0.5):
        answers = _served(recsys, 100)
    assert all(not a["degraded"] for a in answers)
    retried = sum(a["attempts"] > 1 for a in answers)
    assert 10 <= retried <= 90  # binomial(100, ~0.5): far outside this is a bug


def test_bad_model_deviates_quality_steady_state(
    recsys: Any, chaos: Any, steady_state: Any
) -> None:
    good = recsys.recall_at_10()
    hypothesis = steady_state.hypothesis(
        "recommendations are relevant", recall_at_10=at_least(0.08)
    )
    hypothesis.verify("before")
    with chaos.bad_model("all"):
        bad = recsys.recall_at_10()
        with pytest.raises(
            SteadyStateDeviated, match=r"recall_at_10: 0\.0\d+ \(tolerance >= 0.08\)"
        ):
            hypothesis.verify("during")
    hypothesis.verify("after")
    assert bad < good / 3, (good, bad)


def test_partial_toxicity_hits_a_share_of_requests(recsys: Any, chaos: Any) -> None:
    # Hedging and latency-aware ordering exist to hide exactly this delay from users;
    # switched off here so each request's own connection shows whether it was hit.
    with (
        recsys.policy_changed(hedge_after_s=0, slow_after_s=0),
        chaos.latency("region-a", ms=150, toxicity=0.3),
    ):
        assert recsys.policy()["connection_reuse"] is False
        with httpx.Client(base_url=recsys.gateway_url, timeout=5) as client:
            slow = 0
            for u in range(200):
                started = time.perf_counter()
                client.get("/recommend", params={"user_id": u})
                slow += (time.perf_counter() - started) >= 0.15
    assert recsys.policy()["connection_reuse"] is True
    # binomial(200, 0.3): 60 expected; 25..110 is > 5 sigma either way
    assert 25 <= slow <= 110, slow


def test_outage_of_an_idle_region_is_inconclusive(
    recsys: Any, chaos: Any, load: Any, slo: Any
) -> None:
    """All traffic stays in region-a; taking region-b down proves nothing about it."""
    from chaosrec.errors import DrillInconclusive

    with load.run(rate=100, duration=4) as run:
        run.wait(1)
        with chaos.region_outage("region-b"):
            run.wait(2)
    with pytest.raises(DrillInconclusive, match="no request went through a faulted target"):
        slo.assert_met(run, availability=0.999)
