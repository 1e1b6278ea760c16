"""A guardrail source over a Kubernetes cluster: the share of the Deployments' desired pods
that are available, as :class:`~chaosrec.slo.measures.Measures` (``requests`` = desired
pods, ``answered`` = available pods), so the stock conditions apply:
``availability_below=0.6`` trips when fewer than 60 % of the pods are available.

Example::

    Guardrail(parse_conditions({"availability_below": 0.6}),
              ClusterCapacitySource(api, "recsys", "app=triton"), on_trip=[chaos.rollback_all])
"""

from __future__ import annotations

from collections.abc import Mapping

from chaosrec.adapters.kubernetes.api import KubeAPI
from chaosrec.slo.measures import Measures

__all__ = ["ClusterCapacitySource"]


class ClusterCapacitySource:
    """Available vs desired pods of the Deployments matching ``selector`` in ``namespace``,
    read at each poll (the window does not apply: the cluster's state is already a level).
    ``normal``: each Deployment's normal size, which counts instead of its desired
    replicas when larger (a Deployment scaled to 0 by a fault is not "fully available")."""

    def __init__(
        self,
        api: KubeAPI,
        namespace: str,
        selector: str = "",
        normal: Mapping[str, int] | None = None,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.selector = selector
        self.normal = dict(normal or {})

    def describe(self) -> str:
        what = f" ({self.selector})" if self.selector else ""
        return (
            f"available pods of the Deployments in {self.namespace}{what} on {self.api.server_url}"
        )

    def measure(self, window_s: float) -> Measures:
        deployments = self.api.deployments(self.namespace, self.selector)
        wanted = {d.name: max(d.desired, self.normal.get(d.name, 0)) for d in deployments}
        available = sum(min(wanted[d.name], d.available) for d in deployments)
        return Measures(requests=sum(wanted.values()), answered=available)
