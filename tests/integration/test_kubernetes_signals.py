"""Real signals to real child processes draining a real node: SIGINT in the middle of the
drain leaves the node uncordoned; a session killed with SIGKILL while it holds a cordon
leaves the node cordoned, and the next session's sweep uncordons it.

The child is a Python process injecting ``gpu_loss(mode="drain")`` through chaosk8s on the
session's cluster. For the SIGINT case the node runs one pod of a Deployment of its own,
without a budget, whose 30 s grace period kwok honours; chaosk8s waits for it (polling
every 10 s), so the parent can signal the child mid-drain: once the node is cordoned and
the evicted pod is terminating. Nothing else of the session's cluster is on that node.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes_reference import SPEC, all_available, deploy_reference, pods

from chaosrec.ctk.kubernetes import KubernetesFaults, parse_kubernetes
from chaosrec.ctk.kubernetes_ledger import ANNOTATION
from chaosrec.drill.cluster import KubeCluster
from chaosrec.faults.injector import Chaos

pytestmark = pytest.mark.kubernetes

CHILD = """
import json, os, sys, time
from chaosrec.ctk.kubernetes import KubernetesFaults, parse_kubernetes
from chaosrec.faults.injector import Chaos

chaos = Chaos(None)
faults = KubernetesFaults(parse_kubernetes(json.loads(os.environ["SPEC"])), chaos)
try:
    print("draining", flush=True)
    faults.inject("gpu_loss", "region-a.r0", "drain")
    print("drained", flush=True)
    time.sleep(600)  # holds the fault until killed
finally:
    chaos.rollback_all()
"""


@pytest.fixture(scope="module")
def reference(kube_cluster: KubeCluster) -> KubeCluster:
    deploy_reference(kube_cluster)
    return kube_cluster


@pytest.fixture
def child(
    reference: KubeCluster, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The child draining a node; (process, node). The node: the one a region-a Triton pod
    runs on, or the one a test names with ``parametrize("child", [name], indirect=True)``."""
    all_available(reference)
    node = (
        getattr(request, "param", None)
        or next(iter(pods(reference, "app=triton,region=region-a").values())).spec.node_name
    )
    script = tmp_path / "drain.py"
    script.write_text(CHILD)
    env = {
        **os.environ,
        **reference.env(),
        "SPEC": json.dumps({**SPEC, "gpu_nodes": {"region-a.r0": node}}),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    process = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        yield process, node
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()
        reference.api.core.patch_node(node, {"spec": {"unschedulable": False}})
        all_available(reference)


def _cordoned(cluster: KubeCluster, node: str) -> bool:
    return bool(cluster.api.core.read_node(node).spec.unschedulable)


def _mark(cluster: KubeCluster, node: str) -> str | None:
    return (cluster.api.core.read_node(node).metadata.annotations or {}).get(ANNOTATION)


@pytest.fixture
def slow_pod(reference: KubeCluster) -> Iterator[str]:
    """One pod with a 30 s grace period on node kwok-node-1 (a Deployment, so a drain may
    evict it); the node's name."""
    api = reference.api
    node = "kwok-node-1"
    labels = {"app": "slow-to-stop"}
    api.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "drain-test"}}])
    api.apply(
        [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "slow-to-stop", "namespace": "drain-test"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "nodeSelector": {"kubernetes.io/hostname": node},
                            "terminationGracePeriodSeconds": 30,
                            "containers": [{"name": "c", "image": "busybox"}],
                        },
                    },
                },
            }
        ]
    )
    api.wait(lambda: api.deployment("drain-test", "slow-to-stop").available == 1, 60, "up")
    yield node
    api.apps.delete_namespaced_deployment("slow-to-stop", "drain-test")


@pytest.mark.parametrize("child", ["kwok-node-1"], indirect=True)
def test_sigint_in_the_middle_of_a_drain_leaves_the_node_uncordoned(
    reference: KubeCluster, slow_pod: str, child: tuple[subprocess.Popen[str], str]
) -> None:
    process, node = child
    api = reference.api

    def mid_drain() -> bool:
        terminating = [
            p
            for p in api.core.list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={node}"
            ).items
            if p.metadata.deletion_timestamp
        ]
        return _cordoned(reference, node) and bool(terminating)

    api.wait(mid_drain, 60, "the node cordoned and an evicted pod terminating")
    assert process.poll() is None, "the drain ended before the signal; it must be mid-drain"
    process.send_signal(signal.SIGINT)
    assert process.wait(30) != 0
    output = process.stdout.read() if process.stdout else ""
    assert "drained" not in output  # it was interrupted mid-drain
    assert "KeyboardInterrupt" in output
    assert not _cordoned(reference, node)
    assert _mark(reference, node) is None


# a node without Triton pods: the drain is done at once and the child then holds the cordon
@pytest.mark.parametrize("child", ["kwok-node-0"], indirect=True)
def test_a_killed_sessions_cordon_is_swept_by_the_next_session(
    reference: KubeCluster,
    child: tuple[subprocess.Popen[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process, node = child
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip() == "drained":
            break
    else:
        pytest.fail(f"the child ended before holding the drain (exit {process.wait()})")
    assert _cordoned(reference, node)
    owner = json.loads(_mark(reference, node) or "{}")["owner"]
    assert owner.split("_")[1] == str(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    assert _cordoned(reference, node), "SIGKILL leaves no chance to roll back"
    for key, value in reference.env().items():
        monkeypatch.setenv(key, value)
    swept = KubernetesFaults(parse_kubernetes(SPEC), Chaos(None)).sweep()
    assert [s.owner for s in swept] == [owner]
    assert "gpu_loss(region-a.r0, mode=drain)" in swept[0].describe()
    assert not _cordoned(reference, node)
    assert _mark(reference, node) is None
