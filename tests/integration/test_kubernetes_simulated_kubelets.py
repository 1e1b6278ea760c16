"""The SIMULATED kubelets (chaosrec/adapters/kubernetes/kubelets.py), the stand-in the local
cluster runs when kwok cannot be built: on a control plane of their own, nodes go Ready
with leases, a pod is Running then Ready after its start-up delay, and a deleted pod goes
when its grace period ends."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosrec.adapters.kubernetes.api import KubeAPI
from chaosrec.adapters.kubernetes.cluster import STARTUP_ANNOTATION, LocalCluster
from chaosrec.adapters.tools.kubernetes import ensure_kubernetes, find_binaries

pytestmark = pytest.mark.kubernetes


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, KubeAPI]]:
    binaries = dataclasses.replace(find_binaries() or ensure_kubernetes(), kwok=None)
    cluster = LocalCluster(binaries, Path(tmp_path_factory.mktemp("sim")) / "cluster", nodes=2)
    cluster.start()
    api = KubeAPI.from_kubeconfig(cluster.kubeconfig)
    try:
        yield cluster, api
    finally:
        api.close()
        cluster.stop()


def test_nodes_ready_with_leases(simulated: tuple[LocalCluster, KubeAPI]) -> None:
    cluster, api = simulated
    assert cluster.kubelets_kind == "simulated-kubelets"
    assert api.nodes_ready() == (2, 2)
    leases = cluster.request(
        "GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    ).json()
    assert {item["metadata"]["name"] for item in leases["items"]} == {"kwok-node-0", "kwok-node-1"}


def test_a_pod_starts_after_its_delay_and_goes_after_its_grace_period(
    simulated: tuple[LocalCluster, KubeAPI],
) -> None:
    _, api = simulated
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default",
                     "annotations": {STARTUP_ANNOTATION: "1500ms"}},
        "spec": {"containers": [{"name": "c", "image": "x"}],
                 "terminationGracePeriodSeconds": 2},
    }  # fmt: skip
    api.apply([pod])

    def phase_and_ready() -> tuple[str, bool]:
        p = api.core.read_namespaced_pod("p", "default")
        ready = any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        return p.status.phase, ready

    api.wait(lambda: phase_and_ready()[0] == "Running", 30, "Running")
    running_at = time.monotonic()
    api.wait(lambda: phase_and_ready()[1], 30, "Ready")
    assert time.monotonic() - running_at >= 1.0  # the start-up delay was played
    api.core.delete_namespaced_pod("p", "default")
    deleted_at = time.monotonic()
    api.wait(lambda: not api.core.list_namespaced_pod("default").items, 30, "pod gone")
    assert time.monotonic() - deleted_at >= 1.0  # the grace period was played
