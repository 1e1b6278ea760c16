"""Real traffic against the real embedded stack: KServe v2 gRPC straight to Triton (a GPU
loss recorded with its gRPC status), the batch POST through the gateway, and the
gateway's traffic recorder (what it writes, what it never writes, and that a recording
replays)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chaosrec.load.grpc import GRPC_STATUS, GrpcTarget, KServeFront
from chaosrec.load.traffic import Recording, read_traffic
from chaosrec.slo.measures import measure


def test_grpc_to_one_triton_replica_records_a_gpu_loss_with_its_status(
    recsys: Any, chaos: Any, load: Any
) -> None:
    handle = recsys.stack.replicas["region-a.r0"]
    target = GrpcTarget(f"127.0.0.1:{handle.triton.ports.grpc}", "region-a", "region-a.r0")
    with load.grpc([target], rate=50, duration=4) as run:
        run.wait(1.0)
        with chaos.gpu_loss("region-a.r0", mode="error"):
            run.wait(1.5)
    log = run.log
    assert len(log) == 200
    assert set(log.replica) == {"region-a.r0"}  # every row names the replica it called
    before = log.window(0.0, 0.9)
    assert before.ok.all(), set(before.error)
    failed = log.select(~log.ok)
    assert len(failed) >= 20, "the emulated GPU loss failed no gRPC call"
    # Triton answers a failed model execution with gRPC INTERNAL: recorded as 500
    assert set(failed.status.tolist()) == {GRPC_STATUS["INTERNAL"]}, set(failed.error)
    assert all(str(e).startswith("grpc INTERNAL: ") for e in failed.error)
    after = log.window(3.0, 4.0)  # the fault was reverted at ~2.5 s
    assert after.ok.all(), set(after.error)


def test_grpc_status_of_an_unloaded_model_and_a_dead_port(recsys: Any, load: Any) -> None:
    from chaosrec.adapters.ports import free_port

    handle = recsys.stack.replicas["region-b.r0"]
    wrong_model = KServeFront(
        f"127.0.0.1:{handle.triton.ports.grpc}",
        model="no-such-model",
        inputs=lambda i: {"USER_ID": np.array([[1]], dtype=np.int64)},
    )
    from chaosrec.load.generator import LoadRun

    with LoadRun(wrong_model, rate_rps=20, duration_s=0.5) as run:
        pass
    codes = {str(e).split(":")[0] for e in run.log.error}
    assert codes in ({"grpc NOT_FOUND"}, {"grpc UNAVAILABLE"}), codes
    assert set(run.log.status.tolist()) <= {404, 503}
    dead = KServeFront(
        f"127.0.0.1:{free_port()}",
        model="recsys",
        inputs=lambda i: {"USER_ID": np.array([[1]], dtype=np.int64)},
    )
    with LoadRun(dead, rate_rps=20, duration_s=0.5, timeout_s=2.0) as run:
        pass
    assert set(run.log.status.tolist()) == {503}  # refused: gRPC says UNAVAILABLE
    assert all(str(e).startswith("grpc UNAVAILABLE") for e in run.log.error)


def test_batch_post_with_json_and_headers_through_the_gateway(recsys: Any, load: Any) -> None:
    with load.run(
        "/recommend/batch",
        method="POST",
        headers={"X-Team": "search"},
        json={"user_ids": [1, 2, 3], "k": 5},
        rate=50,
        duration=1,
    ) as run:
        pass
    assert len(run.log) == 50
    assert run.log.ok.all(), set(run.log.error)
    assert set(run.log.region) <= {"region-a", "region-b"}


def test_a_request_builder_sends_each_request_its_own_body(recsys: Any, load: Any) -> None:
    from chaosrec.load import HttpRequest

    def build(i: int) -> HttpRequest:
        if i % 2:
            return HttpRequest.build("/recommend", params={"user_id": i, "k": 3})
        return HttpRequest.build(
            "/recommend/batch", method="POST", json={"user_ids": [i, i + 1], "k": 3}
        )

    with load.run(request=build, rate=40, duration=1, url=recsys.gateway_url) as run:
        pass
    assert len(run.log) == 40
    assert run.log.ok.all(), set(run.log.error)


def test_the_gateway_records_traffic_without_credentials_and_it_replays(
    recsys: Any, load: Any, tmp_path: Path
) -> None:
    import httpx

    base = recsys.gateway_url
    with (
        Recording(base, admin_token=recsys.admin_token) as rec,
        httpx.Client(trust_env=False) as client,
    ):
        for i in range(5):
            client.get(
                f"{base}/recommend",
                params={"user_id": i, "k": 4},
                headers={"Authorization": "Bearer secret-1", "Cookie": "sid=secret-2"},
            )
        client.post(
            f"{base}/recommend/batch",
            json={"user_ids": [7, 8], "k": 2},
            headers={"X-Api-Key": "secret-3", "X-Team": "search"},
        )
        client.get(f"{base}/recommend", params={"user_id": "oops"})  # refused: 400
        client.get(f"{base}/healthz")  # not service traffic: not recorded
    path = rec.save(tmp_path / "shoppers.jsonl")
    text = path.read_text()
    for secret in ("secret-1", "secret-2", "secret-3", recsys.admin_token):
        assert secret not in text
    entries = read_traffic(path)
    assert [e.method for e in entries] == ["GET"] * 5 + ["POST", "GET"]
    assert entries[0].path == "/recommend?user_id=0&k=4"
    assert entries[5].body is not None and b'"user_ids"' in entries[5].body
    assert entries[5].headers.get("X-Team") == "search"
    assert all(b.t >= a.t for a, b in itertools.pairwise(entries))

    with load.replay(path, speed=4.0) as run:
        pass
    statuses = run.log.status.tolist()
    assert statuses == [200] * 6 + [400]
    assert measure(run.log.select(run.log.status != 400)).availability == 1.0


def test_recording_admin_calls_need_the_token_and_good_arguments(recsys: Any) -> None:
    import httpx

    from chaosrec.errors import ConfigError

    with pytest.raises(ConfigError, match="refused to record"):
        Recording(recsys.gateway_url, admin_token="x" * 40).start()
    admin = {"Authorization": f"Bearer {recsys.admin_token}"}
    with httpx.Client(base_url=recsys.gateway_url, headers=admin, trust_env=False) as client:
        bad = client.post("/admin/recording/start", json={"max_requests": 0})
        assert bad.status_code == 400 and "max_requests=0 must be in" in bad.json()["error"]
        bad = client.post("/admin/recording/start", json={"max": 5})
        assert bad.status_code == 400
        none = client.post("/admin/recording/stop")
        assert none.status_code == 409 and "no recording is running" in none.json()["error"]


def test_the_shoppers_default_load_from_two_worker_processes(
    recsys: Any, load: Any, slo: Any
) -> None:
    with load.run(rate=100, duration=2, workers=2) as run:
        run.wait(1)
        assert len(run.snapshot()) > 0  # merged while it runs
    assert len(run.log) == 200 and run.log.ok.all(), set(run.log.error)
    np.testing.assert_array_equal(run.log.scheduled_s, np.arange(200) / 100)
    slo.assert_met(run, availability=1.0, p99_ms=1000)
    by_region = {r: len(run.where(region=r).log) for r in ("region-a", "region-b")}
    assert sum(by_region.values()) == 200 and by_region["region-a"] > 0
