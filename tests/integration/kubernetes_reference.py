"""The reference manifests of ``deploy/kubernetes`` on a test cluster (shared by the
``test_kubernetes_*`` modules; not a test module itself)."""

from __future__ import annotations

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
    api = cluster.api
    api.wait(
        lambda: all(d.full and d.desired > 0 for d in api.deployments(NS)),
        timeout_s,
        "every Triton Deployment fully available",
    )


def pods(cluster: KubeCluster, selector: str) -> dict[str, Any]:
    """Live (not terminating) pods of ``selector`` by uid."""
    items = cluster.api.core.list_namespaced_pod(NS, label_selector=selector).items
    return {p.metadata.uid: p for p in items if not p.metadata.deletion_timestamp}
