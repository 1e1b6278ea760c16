"""Typed, read-mostly views of a cluster through the official Kubernetes client (the ``k8s``
extra): what drills, probes and tests check faults against.

Each :class:`KubeAPI` has its own client built from one kubeconfig (and context), never
the process-wide default configuration that chaosk8s uses, so checks cannot silently
look at another cluster than the one they were given.

Example::

    api = KubeAPI.from_kubeconfig(path)
    api.apply(yaml.safe_load_all(open("deploy/kubernetes/triton.yaml")))
    api.wait(lambda: api.deployment("recsys", "triton-region-a").available == 2, 30, "up")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaosrec.core.extras import require
from chaosrec.errors import ConfigError

__all__ = [
    "NODE_GONE",
    "DeploymentState",
    "KubeAPI",
    "PendingPod",
    "RegionCapacity",
    "kubeconfig_server",
]

GPU = "nvidia.com/gpu"
#: the "region" of pods bound to a node that was deleted (see KubeAPI.capacity)
NODE_GONE = "(node gone)"
REGION_LABEL = "topology.kubernetes.io/region"


def kubeconfig_server(path: Path, context: str | None = None) -> str:
    """The API server URL a kubeconfig's ``context`` (default: its current context) points
    at, read as the Kubernetes client will read it.

    Raises:
        ConfigError: the file cannot be read or has no such context or cluster.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"kubeconfig {path}: cannot read it ({err})") from err
    wanted = context or data.get("current-context")
    contexts = {c.get("name"): c.get("context", {}) for c in data.get("contexts") or []}
    if wanted not in contexts:
        raise ConfigError(
            f"kubeconfig {path}: no context {wanted!r}; known: {sorted(map(str, contexts))}"
        )
    cluster = contexts[wanted].get("cluster")
    for entry in data.get("clusters") or []:
        if entry.get("name") == cluster:
            return str(entry.get("cluster", {}).get("server", ""))
    raise ConfigError(f"kubeconfig {path}: context {wanted!r} names unknown cluster {cluster!r}")


@dataclass(frozen=True)
class DeploymentState:
    name: str
    desired: int
    available: int
    ready: int
    updated: int

    @property
    def full(self) -> bool:
        return self.available >= self.desired


@dataclass(frozen=True)
class PendingPod:
    name: str
    #: the scheduler's message: "0/60 nodes are available: ... Insufficient nvidia.com/gpu"
    reason: str


@dataclass(frozen=True)
class RegionCapacity:
    """One region at one moment: Ready schedulable nodes, their allocatable GPUs, GPUs
    requested by pods bound there, and Ready pods there."""

    region: str
    nodes_ready: int
    gpus_allocatable: int
    gpus_requested: int
    pods_ready: int


def _gpus(pod: Any) -> int:
    total = 0
    for container in pod.spec.containers or []:
        limits = (container.resources.limits or {}) if container.resources else {}
        total += int(limits.get(GPU, 0) or 0)
    return total


def _condition(obj: Any, kind: str) -> Any:
    for condition in (obj.status.conditions or []) if obj.status else []:
        if condition.type == kind:
            return condition
    return None


class KubeAPI:
    """A cluster seen through one kubeconfig; see the module docs."""

    def __init__(self, api_client: Any, server_url: str) -> None:
        kubernetes = require("kubernetes", extra="k8s", feature="Kubernetes drills and probes")
        self.client = api_client
        self.server_url = server_url
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.apps = kubernetes.client.AppsV1Api(api_client)
        self.policy = kubernetes.client.PolicyV1Api(api_client)
        self.rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)

    @classmethod
    def from_kubeconfig(cls, path: Path, context: str | None = None) -> KubeAPI:
        kubernetes = require("kubernetes", extra="k8s", feature="Kubernetes drills and probes")
        api_client = kubernetes.config.new_client_from_config(
            config_file=str(path), context=context
        )
        return cls(api_client, kubeconfig_server(path, context))

    def close(self) -> None:
        self.client.close()

    # -- writes used to set up drills -----------------------------------------------------

    def apply(
        self, documents: Iterable[dict[str, Any] | None], namespace: str | None = None
    ) -> int:
        """Create every object of ``documents`` (YAML documents as dicts); objects that exist
        are left as they are. Returns how many were created."""
        kubernetes = require("kubernetes", extra="k8s", feature="Kubernetes drills and probes")
        created = 0
        for doc in documents:
            if not doc:
                continue
            try:
                kubernetes.utils.create_from_dict(self.client, doc, namespace=namespace)
                created += 1
            except kubernetes.utils.FailToCreateError as err:
                if any(getattr(e, "status", None) != 409 for e in err.api_exceptions):
                    raise
        return created

    # -- views ----------------------------------------------------------------------------

    def deployment(self, namespace: str, name: str) -> DeploymentState:
        d = self.apps.read_namespaced_deployment(name, namespace)
        return _deployment_state(d)

    def deployments(self, namespace: str, selector: str = "") -> list[DeploymentState]:
        items = self.apps.list_namespaced_deployment(namespace, label_selector=selector).items
        return [_deployment_state(d) for d in items]

    def pending(self, namespace: str, selector: str = "") -> list[PendingPod]:
        """Pods not bound to a node, with the scheduler's reason."""
        pods = self.core.list_namespaced_pod(
            namespace, label_selector=selector, field_selector="status.phase=Pending"
        ).items
        out = []
        for pod in pods:
            if pod.metadata.deletion_timestamp or pod.spec.node_name:
                continue
            scheduled = _condition(pod, "PodScheduled")
            reason = (scheduled.message or scheduled.reason or "") if scheduled else "not seen yet"
            out.append(PendingPod(pod.metadata.name, reason))
        return out

    def nodes_ready(self, selector: str = "") -> tuple[int, int]:
        """(Ready nodes, all nodes) among the nodes matching ``selector``."""
        nodes = self.core.list_node(label_selector=selector).items
        ready = sum(1 for n in nodes if _node_ready(n))
        return ready, len(nodes)

    def capacity(
        self, namespace: str, selector: str = "", region_label: str = REGION_LABEL
    ) -> list[RegionCapacity]:
        """Per region: Ready schedulable nodes, GPUs they offer, GPUs requested by the
        ``selector`` pods bound there, Ready pods there (regions of every node; pods on
        deleted nodes under :data:`NODE_GONE`)."""
        nodes = self.core.list_node().items
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        region_of = {
            n.metadata.name: (n.metadata.labels or {}).get(region_label, "") for n in nodes
        }
        rows: dict[str, list[int]] = {r: [0, 0, 0, 0] for r in region_of.values() if r}
        for node in nodes:
            region = region_of[node.metadata.name]
            if not region or not _node_ready(node) or node.spec.unschedulable:
                continue
            rows[region][0] += 1
            rows[region][1] += int((node.status.allocatable or {}).get(GPU, 0) or 0)
        for pod in pods:
            node = pod.spec.node_name or ""
            # a pod bound to a node that no longer exists still counts Ready for the API
            # until the pod garbage collector removes it (~40 s): show it as such
            region = region_of.get(node, NODE_GONE if node else "")
            if not region or pod.metadata.deletion_timestamp:
                continue
            rows.setdefault(region, [0, 0, 0, 0])
            rows[region][2] += _gpus(pod)
            ready = _condition(pod, "Ready")
            rows[region][3] += int(ready is not None and ready.status == "True")
        return [RegionCapacity(r, *v) for r, v in sorted(rows.items())]

    def wait(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
        """Poll ``predicate`` every 100 ms until true; seconds waited.

        Raises:
            TimeoutError: it did not hold within ``timeout_s`` (the message says what).
        """
        started = time.monotonic()
        while not predicate():
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"{what}: not true after {timeout_s:g} s")
            time.sleep(0.1)
        return time.monotonic() - started


def _deployment_state(d: Any) -> DeploymentState:
    status = d.status
    return DeploymentState(
        d.metadata.name,
        int(d.spec.replicas or 0),
        int(status.available_replicas or 0),
        int(status.ready_replicas or 0),
        int(status.updated_replicas or 0),
    )


def _node_ready(node: Any) -> bool:
    ready = _condition(node, "Ready")
    return ready is not None and ready.status == "True"
