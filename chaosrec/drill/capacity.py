"""Record a cluster's capacity while a drill runs, and build GPU fleets to drill on.

:class:`CapacityRecorder` samples, every ``every_s`` seconds from a background thread,
the Ready pods and usable GPUs per region, the Deployments' desired and available pods
and the unscheduled pods (:meth:`~chaosrec.adapters.kubernetes.api.KubeAPI.capacity`);
:meth:`CapacityRecorder.timeline` gives the
:class:`~chaosrec.slo.capacity.CapacityTimeline` the RTO is measured on.

:class:`GpuFleet` is a simulated fleet at cluster scale: ``regions`` x ``nodes`` GPU
nodes of ``gpus`` GPUs each (labelled with region and zone, ``nvidia.com/gpu`` capacity),
and per region a Triton Deployment of ``pods`` pods of ``gpus_per_pod`` GPUs each that
*prefers* its region (so another region can take its pods when it is lost) and starts in
``startup`` (a Go duration: image pull plus model load, played by kwok).

Example::

    fleet = GpuFleet("f1", regions=3, nodes=20, gpus=8, pods=40, gpus_per_pod=2)
    fleet.create(api); fleet.wait_available(api)
    with CapacityRecorder(api, fleet.namespace) as rec:
        rec.fault_started("lose region-a"); fleet.delete_region_nodes(api, "region-a")
        ...
    rec.timeline().rto_s()
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Self

from chaosrec.adapters.kubernetes.api import GPU, REGION_LABEL, KubeAPI
from chaosrec.adapters.kubernetes.cluster import KUBELETS_LABEL, STARTUP_ANNOTATION, node_manifest
from chaosrec.slo.capacity import CapacitySample, CapacityTimeline, RegionSample

__all__ = ["CapacityRecorder", "GpuFleet"]

ZONE_LABEL = "topology.kubernetes.io/zone"


class CapacityRecorder:
    """Samples the cluster in a thread (see the module docs); a context manager."""

    def __init__(self, api: KubeAPI, namespace: str, selector: str = "", every_s: float = 0.25):
        self.api = api
        self.namespace = namespace
        self.selector = selector
        self.every_s = every_s
        self._t0 = time.monotonic()
        self._samples: list[CapacitySample] = []
        self._fault: tuple[float | None, float | None, str] = (None, None, "")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaosrec-capacity", daemon=True)
        self.errors = 0

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self.sample()  # the state at the end, always

    def now_s(self) -> float:
        return time.monotonic() - self._t0

    def fault_started(self, label: str) -> None:
        self._fault = (self.now_s(), None, label)

    def fault_ended(self) -> None:
        start, _, label = self._fault
        self._fault = (start, self.now_s(), label)

    def sample(self) -> CapacitySample | None:
        t = self.now_s()
        try:
            regions = tuple(
                RegionSample(
                    r.region, r.nodes_ready, r.gpus_allocatable, r.gpus_requested, r.pods_ready
                )
                for r in self.api.capacity(self.namespace, self.selector)
            )
            deployments = self.api.deployments(self.namespace, self.selector)
            pending = len(self.api.pending(self.namespace, self.selector))
        except Exception:  # noqa: BLE001 - a missed sample is a gap, not a failed drill
            self.errors += 1
            return None
        sample = CapacitySample(
            t,
            regions,
            desired=sum(d.desired for d in deployments),
            available=sum(d.available for d in deployments),
            pending=pending,
        )
        self._samples.append(sample)
        return sample

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.sample()
            self._stop.wait(max(0.0, self.every_s - (time.monotonic() - started)))

    def timeline(self) -> CapacityTimeline:
        start, end, label = self._fault
        return CapacityTimeline(list(self._samples), start, end, label)

    def wait_full(self, timeout_s: float) -> float:
        """Block until a sample shows every Deployment at full availability; seconds waited."""
        return self.api.wait(
            lambda: (
                bool(self._samples)
                and self._samples[-1].full
                and self._samples[-1].t_s > (self._fault[0] or 0)
            ),
            timeout_s,
            "every Deployment back at full availability",
        )


@dataclass
class GpuFleet:
    """A simulated GPU fleet; see the module docs. ``kubelets``: put each zone's nodes in
    a kubelet group of its own (``<name>-<zone>``), so a drill can kill one zone's
    kubelets (local cluster only)."""

    name: str
    regions: int = 3
    zones: int = 2
    nodes: int = 20  # per region
    gpus: int = 8  # per node
    pods: int = 40  # per region
    gpus_per_pod: int = 2
    startup: str = "3s"
    not_ready_toleration_s: int = 30
    kubelets: bool = False
    namespace: str = field(init=False)

    def __post_init__(self) -> None:
        self.namespace = f"fleet-{self.name}"

    def region_names(self) -> list[str]:
        return [f"region-{chr(ord('a') + i)}" for i in range(self.regions)]

    def zone_of(self, region: str, index: int) -> str:
        return f"{region}{index % self.zones + 1}"

    def node_names(self, region: str, zone: str | None = None) -> list[str]:
        return [
            f"{self.name}-{region}-{i:02d}"
            for i in range(self.nodes)
            if zone is None or self.zone_of(region, i) == zone
        ]

    def kubelet_group(self, zone: str) -> str:
        return f"{self.name}-{zone}"

    def node_manifests(self, region: str) -> list[dict[str, Any]]:
        out = []
        for i, name in enumerate(self.node_names(region)):
            labels = {
                REGION_LABEL: region,
                ZONE_LABEL: self.zone_of(region, i),
                "nvidia.com/gpu.present": "true",
                "chaosrec.io/fleet": self.name,
            }
            if self.kubelets:
                labels[KUBELETS_LABEL] = self.kubelet_group(self.zone_of(region, i))
            out.append(
                node_manifest(
                    name,
                    labels=labels,
                    capacity={"cpu": "96", "memory": "1Ti", GPU: str(self.gpus)},
                    taints=[{"key": GPU, "value": "present", "effect": "NoSchedule"}],
                )
            )
        return out

    def deployment(self, region: str) -> dict[str, Any]:
        labels = {"app": "triton", "region": region, "chaosrec.io/fleet": self.name}
        toleration = self.not_ready_toleration_s
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": f"triton-{region}", "namespace": self.namespace, "labels": labels},
            "spec": {
                "replicas": self.pods,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {
                        "labels": labels,
                        "annotations": {STARTUP_ANNOTATION: self.startup},
                    },
                    "spec": {
                        "terminationGracePeriodSeconds": 0,
                        "affinity": {
                            "nodeAffinity": {
                                "requiredDuringSchedulingIgnoredDuringExecution": {
                                    "nodeSelectorTerms": [
                                        {
                                            "matchExpressions": [
                                                {
                                                    "key": "chaosrec.io/fleet",
                                                    "operator": "In",
                                                    "values": [self.name],
                                                }
                                            ]
                                        }
                                    ]
                                },
                                "preferredDuringSchedulingIgnoredDuringExecution": [
                                    {
                                        "weight": 100,
                                        "preference": {
                                            "matchExpressions": [
                                                {
                                                    "key": REGION_LABEL,
                                                    "operator": "In",
                                                    "values": [region],
                                                }
                                            ]
                                        },
                                    }
                                ],
                            }
                        },
                        "tolerations": [
                            {"key": GPU, "operator": "Exists", "effect": "NoSchedule"},
                            {
                                "key": "node.kubernetes.io/not-ready",
                                "operator": "Exists",
                                "effect": "NoExecute",
                                "tolerationSeconds": toleration,
                            },
                            {
                                "key": "node.kubernetes.io/unreachable",
                                "operator": "Exists",
                                "effect": "NoExecute",
                                "tolerationSeconds": toleration,
                            },
                        ],
                        "containers": [
                            {
                                "name": "triton",
                                "image": "nvcr.io/nvidia/tritonserver:24.08-py3",
                                "resources": {"limits": {GPU: str(self.gpus_per_pod)}},
                            }
                        ],
                    },
                },
            },
        }

    def create(self, api: KubeAPI) -> None:
        """Nodes, namespace and one Deployment per region."""
        for region in self.region_names():
            api.apply(self.node_manifests(region))
        api.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}])
        api.apply([self.deployment(region) for region in self.region_names()])

    def wait_available(self, api: KubeAPI, timeout_s: float = 120) -> float:
        def ready() -> bool:
            deployments = api.deployments(self.namespace)
            return len(deployments) == self.regions and all(d.full for d in deployments)

        return api.wait(ready, timeout_s, f"fleet {self.name}: every Deployment available")

    def delete_region_nodes(self, api: KubeAPI, region: str) -> int:
        """Delete the region's GPU node pool (the nodes are gone, as when a cloud region's
        node pool is lost); the number deleted."""
        api.core.delete_collection_node(
            label_selector=f"chaosrec.io/fleet={self.name},{REGION_LABEL}={region}"
        )
        return len(self.node_names(region))

    def restore_region_nodes(self, api: KubeAPI, region: str) -> None:
        api.apply(self.node_manifests(region))

    def delete(self, api: KubeAPI) -> None:
        """Remove the fleet: its namespace (and pods) and its nodes."""
        api.core.delete_namespace(self.namespace, grace_period_seconds=0)
        api.core.delete_collection_node(label_selector=f"chaosrec.io/fleet={self.name}")
