"""GPU DR drills at cluster scale, SIMULATED: the seeds' region DR for a real fleet.

A fleet of 3 regions x 20 GPU nodes x 8 GPUs (480 GPUs), with per region a Triton
Deployment that prefers its region and starts in 3 s (kwok plays the kubelets: no
container runs). Real: the API server, the node controller, the pod garbage collector,
the ReplicaSets, the scheduler (GPU bin-packing, pending reasons), taint-based eviction.
Each drill records the capacity timeline (Ready pods and usable GPUs per region), asserts
on what Kubernetes did, and leaves the figures in the drill's notes and user properties.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from chaosrec.drill import Drill
from chaosrec.drill.capacity import CapacityRecorder, GpuFleet
from chaosrec.drill.cluster import KubeCluster
from chaosrec.slo.capacity import CapacityTimeline
from chaosrec.steady_state.cluster import cluster_hypothesis

pytestmark = [pytest.mark.drill, pytest.mark.kubernetes]

# deleted nodes' pods are removed by the pod garbage collector after its 40 s quarantine
# (20 s checks), then rescheduled; Kubernetes' own timings, so the limit is generous
RECOVERY_TIMEOUT_S = 180


def _report(request: pytest.FixtureRequest, drill: Drill, timeline: CapacityTimeline) -> None:
    """The drill's figures in its notes and user properties, and the capacity timeline
    chart as an Allure attachment when the run writes Allure results."""
    figures = timeline.to_dict()
    drill.notes.append("capacity: " + json.dumps(figures))
    request.node.user_properties.append(("chaosrec_capacity", figures))
    if request.config.pluginmanager.hasplugin("allure_pytest") and request.config.getoption(
        "allure_report_dir", None
    ):
        import allure

        from chaosrec.reporting.charts import capacity_png

        allure.attach(
            capacity_png(timeline, title=f"{request.node.name}: {timeline.label}"),
            name="capacity timeline",
            attachment_type=allure.attachment_type.PNG,
        )


@pytest.fixture
def fleet(kube_cluster: KubeCluster, request: pytest.FixtureRequest) -> Iterator[GpuFleet]:
    params = getattr(request, "param", {})
    fleet = GpuFleet(f"f{abs(hash(request.node.nodeid)) % 10_000}", **params)
    groups = []
    if fleet.kubelets:
        if kube_cluster.local is None:
            pytest.skip("killing a zone's kubelets needs chaosrec's local cluster")
        groups = [fleet.kubelet_group(fleet.zone_of(r, i)) for r in fleet.region_names()
                  for i in range(fleet.zones)]  # fmt: skip
        for group in groups:
            kube_cluster.local.add_kubelets(group)
    fleet.create(kube_cluster.api)
    try:
        fleet.wait_available(kube_cluster.api)
        yield fleet
    finally:
        fleet.delete(kube_cluster.api)
        for group in groups:
            assert kube_cluster.local is not None
            kube_cluster.local.remove_kubelets(group)


@pytest.mark.parametrize("fleet", [{"pods": 40, "gpus_per_pod": 2}], indirect=True)
def test_losing_a_regions_gpu_pool_is_absorbed_by_the_other_regions(
    kube_cluster: KubeCluster, fleet: GpuFleet, drill: Drill, request: pytest.FixtureRequest
) -> None:
    """120 pods x 2 GPUs use half the fleet: when region-a's 20 nodes are gone, its 40 pods
    fit in the other regions' 160 free GPUs. Every pod runs again, none stays Pending."""
    api = kube_cluster.api
    steady = cluster_hypothesis(
        api, fleet.namespace, available_share=1.0, pending=0, nodes_ready=60,
        nodes_selector=f"chaosrec.io/fleet={fleet.name}",
    )  # fmt: skip
    steady.verify("before")
    with CapacityRecorder(api, fleet.namespace) as recorder:
        recorder.sample()
        drill.enter("inject")
        recorder.fault_started("region-a GPU node pool deleted (20 nodes)")
        fleet.delete_region_nodes(api, "region-a")
        drill.enter("observe")
        api.wait(lambda: not recorder.timeline().samples[-1].full, 120, "the loss is noticed")
        recorder.wait_full(RECOVERY_TIMEOUT_S)
        drill.enter("recover")
    timeline = recorder.timeline()
    _report(request, drill, timeline)
    after = cluster_hypothesis(
        api, fleet.namespace, "every pod back, on 20 fewer nodes", available_share=1.0,
        pending=0, nodes_ready=40, nodes_selector=f"chaosrec.io/fleet={fleet.name}",
    )  # fmt: skip
    after.verify("after")
    end = timeline.samples[-1]
    assert end.available == end.desired == 120
    assert end.pending == 0
    by_region = {r.region: r for r in end.regions}
    assert "region-a" not in by_region or by_region["region-a"].pods_ready == 0
    assert by_region["region-b"].pods_ready + by_region["region-c"].pods_ready == 120
    rto = timeline.rto_s()
    assert rto is not None and rto > 0


@pytest.mark.parametrize("fleet", [{"pods": 30, "gpus_per_pod": 3}], indirect=True)
def test_when_capacity_is_short_the_rest_stays_pending_for_lack_of_gpus(
    kube_cluster: KubeCluster, fleet: GpuFleet, drill: Drill, request: pytest.FixtureRequest
) -> None:
    """3-GPU pods fit 2 to an 8-GPU node: each region has 40 slots for its 30 pods, so the
    two surviving regions have 20 free slots for region-a's 30 pods. Exactly 10 stay
    Pending, and the scheduler says why: Insufficient nvidia.com/gpu."""
    api = kube_cluster.api
    with CapacityRecorder(api, fleet.namespace) as recorder:
        recorder.sample()
        drill.enter("inject")
        recorder.fault_started("region-a GPU node pool deleted (20 nodes)")
        fleet.delete_region_nodes(api, "region-a")
        drill.enter("observe")

        def settled() -> bool:
            pending = api.pending(fleet.namespace)
            ready = sum(r.pods_ready for r in api.capacity(fleet.namespace))
            return len(pending) == 10 and ready == 80

        api.wait(settled, RECOVERY_TIMEOUT_S, "20 pods rescheduled, 10 left pending")
    timeline = recorder.timeline()
    _report(request, drill, timeline)
    pending = api.pending(fleet.namespace)
    assert len(pending) == 10
    assert all("Insufficient nvidia.com/gpu" in p.reason for p in pending), pending[0].reason
    assert timeline.rto_s() is None  # never back at full capacity: the honest answer
    # the survivors still have 40 free GPUs each, but 2 per node: fragments no 3-GPU pod fits
    free = {r.region: r.gpus_free for r in timeline.samples[-1].regions}
    assert free == {"region-b": 40, "region-c": 40}
    drill.notes.append(
        "10 pods Pending (Insufficient nvidia.com/gpu) while 80 GPUs sit free in 2-GPU fragments"
    )


@pytest.mark.parametrize(
    "fleet",
    [{"regions": 1, "zones": 2, "nodes": 6, "pods": 6, "gpus_per_pod": 8, "kubelets": True,
      "not_ready_toleration_s": 10}],
    indirect=True,
)  # fmt: skip
def test_a_zones_nodes_not_ready_are_tainted_and_their_pods_evicted(
    kube_cluster: KubeCluster, fleet: GpuFleet, drill: Drill, request: pytest.FixtureRequest
) -> None:
    """The kubelets of zone region-a1 die (their kwok process is SIGKILLed): its 3 nodes stop
    renewing leases, the node controller marks them NotReady after the 40 s grace period
    and taints them NoExecute, the pods leave after their 10 s toleration and land on the
    other zone... where there is no room (one 8-GPU pod per node, 6 pods, 3 nodes left):
    3 pods Pending. The drill records when each step happened."""
    local = kube_cluster.local
    assert local is not None  # the fleet fixture skips otherwise
    api = kube_cluster.api
    zone_nodes = fleet.node_names("region-a", "region-a1")
    events: dict[str, float] = {}
    with CapacityRecorder(api, fleet.namespace) as recorder:
        drill.enter("inject")
        recorder.fault_started("zone region-a1: kubelets killed")
        local.kill_kubelets(fleet.kubelet_group("region-a1"))
        drill.enter("observe")

        def not_ready() -> bool:
            ready, _ = api.nodes_ready(f"{'topology.kubernetes.io/zone'}=region-a1")
            return ready == 0

        api.wait(not_ready, 120, "the zone's nodes NotReady")
        events["not_ready_s"] = recorder.now_s() - (recorder.timeline().fault_start_s or 0)

        def tainted() -> bool:
            nodes = [api.core.read_node(n) for n in zone_nodes]
            return all(any(t.effect == "NoExecute" for t in (n.spec.taints or [])) for n in nodes)

        api.wait(tainted, 120, "every node of the zone tainted NoExecute")
        events["all_tainted_s"] = recorder.now_s() - (recorder.timeline().fault_start_s or 0)

        def evicted() -> bool:
            return len(api.pending(fleet.namespace)) == 3

        api.wait(evicted, 120, "the zone's pods evicted, 3 left pending")
        events["evicted_s"] = recorder.now_s() - (recorder.timeline().fault_start_s or 0)
        drill.enter("rollback")
        local.add_kubelets(fleet.kubelet_group("region-a1"))
        recorder.fault_ended()
        api.wait(lambda: api.nodes_ready("topology.kubernetes.io/zone=region-a1")[0] == 3, 120,
                 "the zone Ready again")  # fmt: skip
        recorder.wait_full(RECOVERY_TIMEOUT_S)
        drill.enter("recover")
    timeline = recorder.timeline()
    _report(request, drill, timeline)
    drill.notes.append("zone events: " + json.dumps({k: round(v, 1) for k, v in events.items()}))
    request.node.user_properties.append(("chaosrec_zone_events", events))
    # the node controller's grace period (40 s) comes first, then taints, then tolerations
    assert events["not_ready_s"] >= 30
    assert events["evicted_s"] >= events["all_tainted_s"]
    assert timeline.pending_max() == 3
    assert timeline.samples[-1].full
