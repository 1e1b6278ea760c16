"""The Kubernetes cluster a drill acts on: chaosrec's local control plane, or a real cluster
named by a kubeconfig (``--chaosrec-kubeconfig``); what the ``kube_cluster`` fixture hands out.

Example::

    def test_drain(kube_cluster):
        api = kube_cluster.api
        kube_cluster.env()["KUBECONFIG"]          # for chaosk8s and kubectl
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaosrec.core.guard import TargetGuard

if TYPE_CHECKING:
    from chaosrec.adapters.kubernetes.api import KubeAPI
    from chaosrec.adapters.kubernetes.cluster import LocalCluster

__all__ = ["KubeCluster"]


@dataclass
class KubeCluster:
    """A cluster: its kubeconfig, API server URL (checked by the run's guard before any
    fault), a :class:`~chaosrec.adapters.kubernetes.api.KubeAPI` on it, and the
    :class:`~chaosrec.adapters.kubernetes.cluster.LocalCluster` when chaosrec runs it."""

    kubeconfig: Path
    context: str | None = None
    local: LocalCluster | None = None
    guard: TargetGuard = field(default_factory=TargetGuard)
    _api: KubeAPI | None = None

    def __post_init__(self) -> None:
        from chaosrec.adapters.kubernetes.api import kubeconfig_server

        self.server_url = kubeconfig_server(self.kubeconfig, self.context)
        self.guard.check_url(self.server_url, f"the Kubernetes API server ({self.kubeconfig})")

    @property
    def api(self) -> KubeAPI:
        if self._api is None:
            from chaosrec.adapters.kubernetes.api import KubeAPI

            self._api = KubeAPI.from_kubeconfig(self.kubeconfig, self.context)
        return self._api

    def env(self) -> dict[str, str]:
        """Environment variables pointing chaosk8s and kubectl at this cluster."""
        env = {"KUBECONFIG": str(self.kubeconfig)}
        if self.context:
            env["KUBERNETES_CONTEXT"] = self.context
        return env

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {"server": self.server_url, "kubeconfig": str(self.kubeconfig)}
        if self.local is not None:
            data.update(local=True, kubelets=self.local.kubelets_kind, **self.local.describe())
        return data

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None
