"""The reference manifests of ``deploy/kubernetes`` on a test cluster (shared by the
``test_kubernetes_*`` modules; not a test module itself)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from chaosrec.drill.cluster import KubeCluster

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
NS = "recsys"
SPEC: dict[str, Any] = yaml.safe_load((DEPLOY / "local" / "target.yaml").read_text())["kubernetes"]


def docs(*names: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in names:
        out += [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]
    return out


def deploy_reference(cluster: KubeCluster) -> None:
    """GPU nodes, namespace, RBAC and Triton per region with its budget; waits until every
    Deployment is fully available."""
    api = cluster.api
    api.apply(docs("local/gpu-nodes.yaml", "namespace.yaml", "rbac.yaml"))
    api.apply(docs("triton-region-a.yaml", "triton-region-b.yaml"))
    all_available(cluster)


def all_available(cluster: KubeCluster, timeout_s: float = 60) -> None:
    wait(
        cluster,
        lambda: all(d.full and d.desired > 0 for d in cluster.api.deployments(NS)),
        timeout_s,
        "every Triton Deployment fully available",
    )


def pods(cluster: KubeCluster, selector: str) -> dict[str, Any]:
    """Live (not terminating) pods of ``selector`` by uid."""
    items = cluster.api.core.list_namespaced_pod(NS, label_selector=selector).items
    return {p.metadata.uid: p for p in items if not p.metadata.deletion_timestamp}


def wait(cluster: KubeCluster, predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    """``cluster.api.wait``, whose timeout says what the namespace looked like then."""
    try:
        return cluster.api.wait(predicate, timeout_s, what)
    except TimeoutError as err:
        raise TimeoutError(f"{err}\n{namespace_state(cluster)}") from None


def namespace_state(cluster: KubeCluster) -> str:
    """The namespace's Deployments and pods, one line each (for a failure message)."""
    api = cluster.api
    lines = [
        f"deployment {d.name}: desired {d.desired} available {d.available} ready {d.ready}"
        for d in api.deployments(NS)
    ]
    for p in api.core.list_namespaced_pod(NS).items:
        ready = [c.status for c in p.status.conditions or [] if c.type == "Ready"]
        lines.append(
            f"pod {p.metadata.name} uid {p.metadata.uid[:8]} phase {p.status.phase} "
            f"node {p.spec.node_name} ready {ready} deleting {p.metadata.deletion_timestamp}"
        )
    return "\n".join(lines)
