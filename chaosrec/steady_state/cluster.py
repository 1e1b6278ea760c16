"""Steady-state hypotheses over a Kubernetes cluster, read from its API: the share of the
Triton pods available, pods the scheduler could not place, Ready nodes.

The same numbers the Chaos Toolkit probes report (:mod:`chaosrec.ctk.probes`:
``available_share``, ``pending_pods``, ``nodes_ready``) and the cluster guardrail trips on
(:class:`~chaosrec.faults.cluster_guardrail.ClusterCapacitySource`)::

    hypothesis = cluster_hypothesis(
        kube_cluster.api, "recsys", normal={"triton-region-a": 2, "triton-region-b": 2},
        available_share=0.5, pending=0, nodes_ready=4,
    )
    hypothesis.verify("before")
"""

from __future__ import annotations

from collections.abc import Mapping

from chaosrec.adapters.kubernetes.api import KubeAPI
from chaosrec.faults.cluster_guardrail import ClusterCapacitySource
from chaosrec.steady_state.hypotheses import SteadyStateHypothesis, at_least, at_most

__all__ = ["cluster_hypothesis"]


def cluster_hypothesis(
    api: KubeAPI,
    namespace: str,
    title: str = "the cluster serves at capacity",
    *,
    selector: str = "",
    normal: Mapping[str, int] | None = None,
    available_share: float | None = None,
    pending: int | None = None,
    nodes_ready: int | None = None,
    nodes_selector: str = "",
) -> SteadyStateHypothesis:
    """A hypothesis with a probe per argument given: ``available_share`` (a floor, 0-1: the
    Deployments' available pods over their desired, or ``normal``, size), ``pending`` (a
    ceiling: unplaced pods), ``nodes_ready`` (a floor: Ready nodes matching
    ``nodes_selector``)."""
    hypothesis = SteadyStateHypothesis(title)
    if available_share is not None:
        source = ClusterCapacitySource(api, namespace, selector, normal)
        hypothesis.add(
            "available_share",
            lambda: source.measure(0).value("availability") or 0.0,
            at_least(available_share),
        )
    if pending is not None:
        hypothesis.add(
            "pending_pods", lambda: float(len(api.pending(namespace, selector))), at_most(pending)
        )
    if nodes_ready is not None:
        hypothesis.add(
            "nodes_ready", lambda: float(api.nodes_ready(nodes_selector)[0]), at_least(nodes_ready)
        )
    return hypothesis
