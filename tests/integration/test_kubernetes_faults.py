"""Every Kubernetes fault through chaostoolkit-kubernetes against a REAL API server, its effect
and its rollback checked through the API.

Real: kube-apiserver, controller-manager (ReplicaSets, the disruption controller), the
scheduler, evictions, PodDisruptionBudgets, RBAC. Simulated: the kubelets (kwok; no
container runs), so a pod is "Ready" when kwok says so (after its start-up delay).
The reference manifests of ``deploy/kubernetes`` are applied to the session's cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_reference import NS, SPEC, all_available, deploy_reference, docs, pods, wait

from chaosrec.ctk.kubernetes import KubernetesFaults, parse_kubernetes
from chaosrec.drill.cluster import KubeCluster
from chaosrec.errors import EvictionBlocked, KubernetesError, TargetNotAllowedError
from chaosrec.faults.injector import Chaos

pytestmark = pytest.mark.kubernetes


@pytest.fixture(scope="module")
def recsys_on_k8s(kube_cluster: KubeCluster) -> Iterator[KubeCluster]:
    """The reference manifests on the session's cluster: GPU nodes, Triton per region with
    its budget, RBAC; plus one single-replica Deployment labelled as replica region-a.r9
    (a layout with one Deployment per GPU replica), for replica faults."""
    api = kube_cluster.api
    deploy_reference(kube_cluster)
    replica = docs("triton-region-a.yaml")[0]
    replica["metadata"]["name"] = "triton-region-a-r9"
    labels = {"app": "triton-replica", "chaosrec.io/replica": "region-a.r9"}
    replica["metadata"]["labels"] = labels
    replica["spec"]["replicas"] = 1
    replica["spec"]["selector"]["matchLabels"] = labels
    replica["spec"]["template"]["metadata"]["labels"] = labels
    api.apply([replica])
    all_available(kube_cluster)
    yield kube_cluster


@pytest.fixture
def k8s(recsys_on_k8s: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The fault vocabulary on the cluster (chaosk8s reads $KUBECONFIG); every fault is
    rolled back at teardown and the cluster is back at steady state before the next test."""
    for key, value in recsys_on_k8s.env().items():
        monkeypatch.setenv(key, value)
    chaos = Chaos(None)
    spec = dict(SPEC)
    spec["gpu_nodes"] = {**SPEC["gpu_nodes"], "region-a.r9": "gpu-a0"}
    yield KubernetesFaults(parse_kubernetes(spec), chaos)
    chaos.rollback_all()
    all_available(recsys_on_k8s)


def test_region_outage_refuse_scales_to_zero_and_back(recsys_on_k8s: KubeCluster, k8s: Any) -> None:
    api = recsys_on_k8s.api
    fault = k8s.inject("region_outage", "region-a", "refuse")
    assert api.deployment(NS, "triton-region-a").desired == 0
    wait(
        recsys_on_k8s,
        lambda: not pods(recsys_on_k8s, "app=triton,region=region-a"),
        30,
        "pods gone",
    )
    assert api.deployment(NS, "triton-region-b").available == 2  # the other region untouched
    fault.revert()
    assert api.deployment(NS, "triton-region-a").desired == 2
    wait(
        recsys_on_k8s, lambda: api.deployment(NS, "triton-region-a").available == 2, 30, "back at 2"
    )


def test_region_outage_kill_terminates_pods_and_the_replicaset_recreates_them(
    recsys_on_k8s: KubeCluster, k8s: Any
) -> None:
    api = recsys_on_k8s.api
    before = set(pods(recsys_on_k8s, "app=triton,region=region-a"))
    k8s.inject("region_outage", "region-a", "kill").revert()

    def replaced() -> bool:
        now = pods(recsys_on_k8s, "app=triton,region=region-a")
        return len(now) == 2 and not (set(now) & before)

    wait(recsys_on_k8s, replaced, 30, "two new pods in place of the terminated ones")
    wait(
        recsys_on_k8s, lambda: api.deployment(NS, "triton-region-a").available == 2, 30, "available"
    )


@pytest.mark.parametrize(("fault", "mode"), [("crash", None), ("gpu_loss", "kill")])
def test_a_replica_fault_terminates_that_replicas_pod_only(
    recsys_on_k8s: KubeCluster, k8s: Any, fault: str, mode: str | None
) -> None:
    replica = set(pods(recsys_on_k8s, "chaosrec.io/replica=region-a.r9"))
    region = set(pods(recsys_on_k8s, "app=triton,region=region-a"))
    k8s.inject(fault, "region-a.r9", mode)
    wait(
        recsys_on_k8s,
        lambda: set(pods(recsys_on_k8s, "chaosrec.io/replica=region-a.r9")) - replica != set(),
        30,
        "a new pod for the replica",
    )
    assert not set(pods(recsys_on_k8s, "chaosrec.io/replica=region-a.r9")) & replica
    assert set(pods(recsys_on_k8s, "app=triton,region=region-a")) == region


def test_drain_evicts_the_gpu_nodes_pods_and_the_rollback_uncordons(
    recsys_on_k8s: KubeCluster, k8s: Any
) -> None:
    api = recsys_on_k8s.api
    fault = k8s.inject("gpu_loss", "region-a.r0", "drain")  # node gpu-a0
    assert api.core.read_node("gpu-a0").spec.unschedulable is True
    on_node = [
        p.metadata.name
        for p in api.core.list_namespaced_pod(NS, field_selector="spec.nodeName=gpu-a0").items
        if not p.metadata.deletion_timestamp
    ]
    assert on_node == []
    wait(
        recsys_on_k8s,
        lambda: api.deployment(NS, "triton-region-a").available == 2,
        30,
        "rescheduled",
    )
    fault.revert()
    assert not api.core.read_node("gpu-a0").spec.unschedulable


def test_a_budget_that_allows_no_disruption_blocks_the_drain(
    recsys_on_k8s: KubeCluster, k8s: Any
) -> None:
    """A PodDisruptionBudget at its limit refuses the eviction with 429: chaosrec reports
    EvictionBlocked naming the pod, evicts nothing, and the node ends uncordoned."""
    api = recsys_on_k8s.api
    name = "triton-region-a"
    api.policy.patch_namespaced_pod_disruption_budget(name, NS, {"spec": {"minAvailable": 2}})
    try:
        # an eviction is judged on the budget's status: wait until it reflects the change
        def budget_at_limit() -> bool:
            pdb = api.policy.read_namespaced_pod_disruption_budget(name, NS)
            return (
                pdb.status.observed_generation == pdb.metadata.generation
                and pdb.status.disruptions_allowed == 0
            )

        wait(recsys_on_k8s, budget_at_limit, 30, "the budget allows no disruption")
        # drain the GPU node a region-a pod runs on now (earlier drains moved them)
        node = next(iter(pods(recsys_on_k8s, "app=triton,region=region-a").values())).spec.node_name
        before = {
            p.metadata.uid
            for p in api.core.list_namespaced_pod(NS, field_selector=f"spec.nodeName={node}").items
        }
        here = KubernetesFaults(
            parse_kubernetes({**SPEC, "gpu_nodes": {"region-a.r0": node}}), Chaos(None)
        )
        with pytest.raises(EvictionBlocked, match="allows no disruption") as excinfo:
            here.inject("gpu_loss", "region-a.r0", "drain")
        assert excinfo.value.node == node
        assert not api.core.read_node(node).spec.unschedulable  # uncordoned by the rollback
        after = {
            p.metadata.uid
            for p in api.core.list_namespaced_pod(NS, field_selector=f"spec.nodeName={node}").items
        }
        region_a = {
            p.metadata.uid
            for p in api.core.list_namespaced_pod(NS, label_selector="region=region-a").items
        }
        assert before & region_a <= after  # no region-a pod was evicted
    finally:
        api.policy.patch_namespaced_pod_disruption_budget(name, NS, {"spec": {"minAvailable": 1}})


def test_rbac_the_reference_role_may_scale_and_a_stranger_is_refused(
    recsys_on_k8s: KubeCluster, k8s: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real RBAC: the chaosrec-drill user of deploy/kubernetes/rbac.yaml can inject and roll
    back a region outage; a user without a binding gets 403 and nothing changes."""
    local = recsys_on_k8s.local
    if local is None:
        pytest.skip("issuing users needs chaosrec's local cluster")
    api = recsys_on_k8s.api
    monkeypatch.setenv("KUBECONFIG", str(local.user_kubeconfig("chaosrec-drill")))
    with k8s.inject("region_outage", "region-b", "refuse"):
        assert api.deployment(NS, "triton-region-b").desired == 0
    assert api.deployment(NS, "triton-region-b").desired == 2
    monkeypatch.setenv("KUBECONFIG", str(local.user_kubeconfig("stranger")))
    with pytest.raises(KubernetesError, match=r"refused by RBAC.*stranger") as excinfo:
        k8s.inject("region_outage", "region-b", "refuse")
    assert excinfo.value.forbidden
    assert api.deployment(NS, "triton-region-b").desired == 2


def test_the_kubeconfigs_api_server_must_pass_the_guard(
    recsys_on_k8s: KubeCluster, k8s: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = yaml.safe_load(recsys_on_k8s.kubeconfig.read_text())
    data["clusters"][0]["cluster"]["server"] = "https://k8s.internal.example:6443"
    path = tmp_path / "elsewhere"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("CHAOSREC_ALLOW_HOSTS", raising=False)
    with pytest.raises(TargetNotAllowedError, match=r"k8s\.internal\.example"):
        k8s.inject("region_outage", "region-a", "refuse")
    assert recsys_on_k8s.api.deployment(NS, "triton-region-a").desired == 2
