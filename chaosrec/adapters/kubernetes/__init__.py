"""Kubernetes: a real control plane on loopback (:mod:`.cluster`, certificates by
:mod:`.pki`), the simulated kubelets used when kwok cannot be had (:mod:`.kubelets`), and
the typed API views drills and probes read (:mod:`.api`)."""

from chaosrec.adapters.kubernetes.cluster import (
    KUBELETS_LABEL,
    STARTUP_ANNOTATION,
    ClusterSettings,
    LocalCluster,
    node_manifest,
)

__all__ = [
    "KUBELETS_LABEL",
    "STARTUP_ANNOTATION",
    "ClusterSettings",
    "LocalCluster",
    "node_manifest",
]
