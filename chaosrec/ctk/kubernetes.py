"""chaosrec's fault vocabulary on Kubernetes, through chaostoolkit-kubernetes (``chaosk8s``).

A remote target file says its recommender runs on Kubernetes::

    gateway_url: http://recsys-gateway.recsys.svc:8080
    topology: default                       # regions and replicas, as for any target
    kubernetes:
      namespace: recsys
      replica_label: chaosrec.io/replica     # each Triton pod: chaosrec.io/replica=region-a.r0
      regions:
        region-a:
          deployment: triton-region-a        # the region's Triton Deployment
          replicas: 2                        # its normal size (restored on rollback)
          pods: app=triton,region=region-a   # label selector of the region's Triton pods
        region-b: {deployment: triton-region-b, replicas: 2, pods: "app=triton,region=region-b"}
      gpu_nodes:                             # optional: the node each replica's GPU is on
        region-a.r0: gpu-node-a0

and the same faults map onto chaosk8s activities:

=================================  ==========================================================
fault                              chaosk8s activities (rollback)
=================================  ==========================================================
region_outage(region, "refuse")    deployment.scale_deployment(name, 0) (scale back to N)
region_outage(region, "kill")      pod.terminate_pods(region selector, all) (Deployment heals)
gpu_loss(replica, "kill"), crash   pod.terminate_pods(replica selector, all, grace_period=0)
gpu_loss(replica, "drain")         node.cordon_node + node.drain_nodes (node.uncordon_node)
=================================  ==========================================================

Before the first call of a fault chaosrec checks, in this order, and injects nothing if
one fails:

* a Kubernetes configuration exists: chaosk8s without one silently talks to
  ``http://localhost`` and fails with a connection-refused traceback;
* the API server that configuration points at (the kubeconfig's context, as chaosk8s
  will read it) is allowed by the run's target guard: loopback, or an allowed host;
* the kubeconfig chaosk8s will *load* is that one: the Kubernetes client reads
  ``$KUBECONFIG`` once, when it is imported, while chaosk8s checks the current
  ``$KUBECONFIG``; in a process where it changed since (a pytest session that set it after
  an import), chaosk8s would check one file and act on the cluster of another. chaosrec
  points the client at the current one before every call.

Every step registers its rollback before it runs, so a fault that fails half-way (a
drain refused after the cordon) still reverts what it did. A drain an eviction refuses
(HTTP 429: a PodDisruptionBudget allows no disruption now; chaosk8s does not retry) is
reported as :class:`~chaosrec.errors.EvictionBlocked`, naming the budget and the pods
already evicted, after the node was uncordoned again.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosrec.core.guard import TargetGuard
from chaosrec.core.validation import check_choice, check_positive_int
from chaosrec.ctk import kubernetes_ledger
from chaosrec.ctk.kubernetes_ledger import FaultMark
from chaosrec.errors import ConfigError, EvictionBlocked, KubernetesError, UnknownTargetError
from chaosrec.faults.base import Fault, undo_each

__all__ = [
    "K8S_GPU_LOSS_MODES",
    "K8S_REGION_OUTAGE_MODES",
    "K8sCall",
    "K8sFault",
    "KubernetesFaults",
    "KubernetesSpec",
    "RegionSpec",
    "check_kube_config",
    "check_kube_target",
    "parse_kubernetes",
]

K8S_REGION_OUTAGE_MODES = ("refuse", "kill")
K8S_GPU_LOSS_MODES = ("kill", "drain")
_SPEC_KEYS = {"namespace", "replica_label", "regions", "gpu_nodes"}
_REGION_KEYS = {"deployment", "replicas", "pods"}


@dataclass(frozen=True)
class RegionSpec:
    deployment: str
    replicas: int
    pods: str  # label selector of the region's Triton pods


@dataclass(frozen=True)
class KubernetesSpec:
    """Where the recommender's Triton pods are: namespace, per-region Deployments and
    selectors, the replica label, and each replica's GPU node."""

    namespace: str
    regions: dict[str, RegionSpec]
    replica_label: str = "chaosrec.io/replica"
    gpu_nodes: dict[str, str] = field(default_factory=dict)

    def region(self, region: str) -> RegionSpec:
        if region not in self.regions:
            raise UnknownTargetError(
                f"region {region!r} has no Kubernetes mapping; known: {sorted(self.regions)}"
            )
        return self.regions[region]

    def pods_selector(self) -> str:
        """A selector of every region's Triton pods, when the regions share their label
        keys (``app=triton,region=...``): ``app=triton,region in (a,b)``; else ''."""
        parsed = [dict(p.split("=", 1) for p in r.pods.split(",")) for r in self.regions.values()]
        keys = set(parsed[0]) if parsed else set()
        if (
            not parsed
            or any(set(p) != keys for p in parsed)
            or not all("=" in r.pods for r in self.regions.values())
        ):
            return ""
        parts = []
        for key in sorted(keys):
            values = sorted({p[key] for p in parsed})
            parts.append(
                f"{key}={values[0]}" if len(values) == 1 else f"{key} in ({','.join(values)})"
            )
        return ",".join(parts)

    def replica_selector(self, replica: str) -> str:
        return f"{self.replica_label}={replica}"

    def gpu_node(self, replica: str) -> str:
        if replica not in self.gpu_nodes:
            raise UnknownTargetError(
                f"replica {replica!r} has no GPU node in kubernetes.gpu_nodes; "
                f"known: {sorted(self.gpu_nodes) or ['<none>']}"
            )
        return self.gpu_nodes[replica]


def parse_kubernetes(data: object, source: str = "kubernetes") -> KubernetesSpec:
    """Check a target file's ``kubernetes`` section; errors name the key and the allowed ones."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: must be a mapping with namespace and regions")
    unknown = set(data) - _SPEC_KEYS
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_SPEC_KEYS)}"
        )
    namespace = data.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        raise ConfigError(f"{source}: 'namespace' is required (e.g. namespace: recsys)")
    raw_regions = data.get("regions")
    if not isinstance(raw_regions, dict) or not raw_regions:
        raise ConfigError(
            f"{source}: 'regions' is required: region -> {{deployment, replicas, pods}}"
        )
    regions: dict[str, RegionSpec] = {}
    for name, spec in raw_regions.items():
        where = f"{source}.regions.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: must be a mapping with {sorted(_REGION_KEYS)}")
        bad = set(spec) - _REGION_KEYS
        missing = _REGION_KEYS - set(spec)
        if bad or missing:
            raise ConfigError(
                f"{where}: keys must be {sorted(_REGION_KEYS)}"
                + (f"; unknown {sorted(bad)}" if bad else "")
                + (f"; missing {sorted(missing)}" if missing else "")
            )
        if not isinstance(spec["deployment"], str) or not isinstance(spec["pods"], str):
            raise ConfigError(f"{where}: 'deployment' and 'pods' must be strings")
        regions[str(name)] = RegionSpec(
            spec["deployment"],
            check_positive_int(f"{where}.replicas", spec["replicas"]),
            spec["pods"],
        )
    label = data.get("replica_label", "chaosrec.io/replica")
    nodes = data.get("gpu_nodes") or {}
    if not isinstance(label, str) or not isinstance(nodes, dict):
        raise ConfigError(f"{source}: 'replica_label' must be a string, 'gpu_nodes' a mapping")
    return KubernetesSpec(namespace, regions, label, {str(k): str(v) for k, v in nodes.items()})


def check_kube_config(secrets: dict[str, Any] | None = None) -> str:
    """Where chaosk8s will find the cluster; :class:`ConfigError` when nowhere.

    Mirrors chaosk8s's own order (kubeconfig file, in-pod service account,
    ``KUBERNETES_HOST`` in the secrets or the environment), because with none of them it
    falls back to ``http://localhost`` and fails far from the cause."""
    kubeconfig = os.path.expanduser(os.environ.get("KUBECONFIG", "~/.kube/config"))
    if os.path.exists(kubeconfig):
        return f"kubeconfig {kubeconfig}"
    if os.environ.get("CHAOSTOOLKIT_IN_POD") == "true":
        return "the pod's service account (CHAOSTOOLKIT_IN_POD=true)"
    if (secrets or {}).get("KUBERNETES_HOST") or os.environ.get("KUBERNETES_HOST"):
        return "KUBERNETES_HOST"
    shown = os.environ.get("KUBECONFIG", "unset")
    raise ConfigError(
        f"no Kubernetes configuration: no kubeconfig at {kubeconfig} (KUBECONFIG={shown}), "
        "CHAOSTOOLKIT_IN_POD is not 'true' and KUBERNETES_HOST is not set; point KUBECONFIG "
        "at your cluster's kubeconfig (chaostoolkit-kubernetes would silently use "
        "http://localhost)"
    )


def check_kube_target(guard: TargetGuard, secrets: dict[str, Any] | None = None) -> str:
    """The API server URL chaosk8s will act on, checked by ``guard`` (and the Kubernetes
    client pointed at the kubeconfig that names it; see the module docs).

    Raises:
        ConfigError: no Kubernetes configuration (see :func:`check_kube_config`).
        TargetNotAllowedError: the API server is not loopback and not an allowed host.
    """
    where = check_kube_config(secrets)
    if where.startswith("kubeconfig "):
        from chaosrec.adapters.kubernetes.api import kubeconfig_server

        path = where.removeprefix("kubeconfig ")
        context = (secrets or {}).get("KUBERNETES_CONTEXT") or os.environ.get("KUBERNETES_CONTEXT")
        server = kubeconfig_server(Path(path), context)
        _pin_kubeconfig(path)
    elif where == "KUBERNETES_HOST":
        server = str((secrets or {}).get("KUBERNETES_HOST") or os.environ["KUBERNETES_HOST"])
    else:  # in a pod: the service's environment names the API server
        host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
        server = f"https://{host}:{os.environ.get('KUBERNETES_SERVICE_PORT', '443')}"
    return guard.check_url(server, f"the Kubernetes API server ({where})")


def _ledger_api(secrets: dict[str, Any] | None) -> Any:
    """A client on the kubeconfig chaosk8s uses, for the fault ledger (None when the
    configuration is not a kubeconfig: in a pod, or KUBERNETES_HOST)."""
    where = check_kube_config(secrets)
    if not where.startswith("kubeconfig "):
        return None
    from chaosrec.adapters.kubernetes.api import KubeAPI

    context = (secrets or {}).get("KUBERNETES_CONTEXT") or os.environ.get("KUBERNETES_CONTEXT")
    return KubeAPI.from_kubeconfig(Path(where.removeprefix("kubeconfig ")), context)


def _pin_kubeconfig(path: str) -> None:
    """Make the Kubernetes client load ``path`` (its default location is frozen at import)."""
    try:
        from kubernetes.config import kube_config
    except ImportError:  # chaosk8s is missing: its own call reports the extra to install
        return
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = path


@dataclass(frozen=True)
class K8sCall:
    """One chaosk8s function call: ``module.func(**arguments)``."""

    module: str
    func: str
    arguments: dict[str, Any]

    def activity(self, name: str) -> dict[str, Any]:
        """The Chaos Toolkit action running this call (for an experiment's method or rollbacks)."""
        return {
            "type": "action",
            "name": name,
            "provider": {
                "type": "python",
                "module": self.module,
                "func": self.func,
                "arguments": dict(self.arguments),
            },
        }

    def resolve(self) -> Callable[..., Any]:
        from chaosrec.core.extras import require

        module = require(self.module, extra="k8s", feature="Kubernetes faults")
        func: Callable[..., Any] = getattr(module, self.func)
        return func

    def __call__(self, secrets: dict[str, Any] | None = None) -> Any:
        return self.resolve()(**self.arguments, secrets=secrets)

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.arguments.items())
        return f"{self.module.removeprefix('chaosk8s.')}.{self.func}({args})"


class K8sFault(Fault):
    """A fault made of chaosk8s calls; reverted by its rollback calls (newest first)."""

    # a drain waits for evictions (grace periods of 30 s and more): Ctrl-C must reach it at
    # once; every step is armed for rollback and its objects marked before it runs
    holds_signals = False

    def __init__(
        self,
        label: str,
        targets: tuple[str, ...],
        *,
        kind: str,
        steps: list[K8sCall],
        rollbacks: list[K8sCall],
        secrets: dict[str, Any] | None = None,
        guard: TargetGuard | None = None,
        undo_from: int = 0,
        marks: list[FaultMark] | None = None,
    ) -> None:
        super().__init__(label, targets, params={"steps": [s.describe() for s in steps]})
        self.kind = kind
        self.steps = steps
        self.rollbacks = rollbacks
        self.secrets = secrets
        self.guard = guard or TargetGuard.from_env()
        # rollbacks[i] undoes what steps up to undo_from + i did: it is armed just before
        # that step runs, so a step that fails half-way is still undone
        self._undo_from = undo_from
        self._done: list[str] = []
        # the objects this fault changes, annotated with its owner before it changes them
        # (kubernetes_ledger): a session killed mid-fault is swept by the next one
        self.marks = list(marks or [])
        self._marked: list[FaultMark] = []

    def _inject(self) -> None:
        check_kube_target(self.guard, self.secrets)
        if self.marks:
            api = _ledger_api(self.secrets)
            if api is not None:
                for item in self.marks:
                    try:
                        kubernetes_ledger.mark(api, item, self.label)
                    except Exception as err:
                        raise _refused(f"marking {item.describe()} with its owner", err) from err
                    self._marked.append(item)
        for index, step in enumerate(self.steps):
            armed = index - self._undo_from
            if 0 <= armed < len(self.rollbacks) and str(armed) not in self._done:
                self._done.append(str(armed))
            try:
                step(self.secrets)
            except Exception as err:
                explained = _explain(step, err)
                forbidden = isinstance(explained, KubernetesError) and explained.forbidden
                if forbidden and str(armed) in self._done:
                    # RBAC refused the call: the API changed nothing, nothing to undo
                    self._done.remove(str(armed))
                raise explained from err
        for rest in range(len(self.rollbacks)):
            if str(rest) not in self._done:
                self._done.append(str(rest))

    def _revert(self) -> None:
        if self._done:
            check_kube_target(self.guard, self.secrets)
        undo_each(self._done, lambda i: self.rollbacks[int(i)](self.secrets))
        if self._marked:
            api = _ledger_api(self.secrets)
            if api is not None:
                for item in self._marked:
                    kubernetes_ledger.clear(api, item)
            self._marked.clear()

    def experiment_activities(self) -> dict[str, list[dict[str, Any]]]:
        """The same fault as a chaosk8s-only experiment's ``method`` and ``rollbacks``."""
        slug = self.label.split("(")[0].replace("_", "-")
        return {
            "method": [s.activity(f"{slug}-{i}-{s.func}") for i, s in enumerate(self.steps)],
            "rollbacks": [
                r.activity(f"{slug}-rollback-{i}-{r.func}") for i, r in enumerate(self.rollbacks)
            ],
        }


_EVICTION = re.compile(r"Failed to evict pod (?P<pod>\S+?):")


def _refused(what: str, err: Exception) -> Exception:
    """A Kubernetes client error as chaosrec reports it (403: :class:`KubernetesError`
    with ``forbidden``); others unchanged."""
    if getattr(err, "status", None) == 403:
        denied = KubernetesError(
            f"{what} was refused by RBAC: {_api_message(str(err))}; grant the role of "
            "deploy/kubernetes/rbac.yaml to this identity (nothing was changed)"
        )
        denied.forbidden = True
        return denied
    return err


def _api_message(text: str) -> str:
    """The ``message`` of the API's Status in a kubernetes-client error's text."""
    import json

    body = text.rsplit("HTTP response body:", 1)[-1].strip()
    try:
        return str(json.loads(body.splitlines()[0] if body else "{}").get("message", "forbidden"))
    except (ValueError, AttributeError):
        return "forbidden"


def _explain(step: K8sCall, err: Exception) -> Exception:
    """A chaosk8s failure in chaosrec's words: a drain that an eviction refused becomes
    :class:`EvictionBlocked`; anything else is returned as is."""
    text = str(err)
    if "(403)" in text or '"code":403' in text.replace(" ", ""):
        denied = KubernetesError(
            f"{step.describe()} was refused by RBAC: {_api_message(text)}; grant the role of "
            "deploy/kubernetes/rbac.yaml to this identity (nothing was changed)"
        )
        denied.forbidden = True
        return denied
    if step.func != "drain_nodes" or ("429" not in text and "disruption budget" not in text):
        return err
    match = _EVICTION.search(text)
    pod = match.group("pod") if match else "?"
    budget = re.search(r"disruption budget (?P<pdb>[\w.-]+)", text)
    pdb = budget.group("pdb") if budget else "a PodDisruptionBudget"
    node = step.arguments.get("name")
    blocked = EvictionBlocked(
        f"draining node {node} stopped: the eviction of pod {pod} was refused (HTTP 429 "
        f"Too Many Requests) because {pdb} allows no disruption now; chaosk8s does not "
        "retry, pods evicted before it stay evicted, and the node is uncordoned by the "
        "rollback. Drain when the budget allows it, or relax the budget",
        pod=pod,
        budget=pdb,
        node=str(node),
    )
    blocked.add_note(text[-600:])
    return blocked


class KubernetesFaults:
    """Builds the fault vocabulary's Kubernetes form and registers each fault with ``chaos``
    (so ``rollback_all`` reverts it); :meth:`plan` builds without injecting."""

    def __init__(
        self, spec: KubernetesSpec, chaos: Any = None, guard: TargetGuard | None = None
    ) -> None:
        self.spec = spec
        self.chaos = chaos
        self.guard = guard or (chaos.guard if chaos is not None else TargetGuard.from_env())
        self._swept = False

    # -- plans (nothing is called) --------------------------------------------------------

    def plan(
        self,
        fault: str,
        target: str,
        mode: str | None = None,
        secrets: dict[str, Any] | None = None,
    ) -> K8sFault:
        """The chaosk8s calls for ``fault`` (region_outage, gpu_loss, crash) on ``target``."""
        ns = self.spec.namespace
        check_choice("fault", fault, ("region_outage", "gpu_loss", "crash"))
        if fault == "region_outage":
            mode = check_choice("mode", mode or "refuse", K8S_REGION_OUTAGE_MODES)
            region = self.spec.region(target)
            if mode == "refuse":
                steps = [
                    K8sCall(
                        "chaosk8s.deployment.actions",
                        "scale_deployment",
                        {"name": region.deployment, "replicas": 0, "ns": ns},
                    )
                ]
                rollbacks = [
                    K8sCall(
                        "chaosk8s.deployment.actions",
                        "scale_deployment",
                        {"name": region.deployment, "replicas": region.replicas, "ns": ns},
                    )
                ]
            else:
                steps = [self._terminate(region.pods, grace_period=-1)]
                rollbacks = []
            return K8sFault(
                f"region_outage({target}, mode={mode})",
                (target,),
                kind="region_outage",
                steps=steps,
                rollbacks=rollbacks,
                secrets=secrets,
                guard=self.guard,
                marks=[
                    FaultMark("deployment", region.deployment, ns, {"replicas": region.replicas})
                ]
                if mode == "refuse"
                else [],
            )
        self._known_replica(target)
        if fault == "crash":
            return K8sFault(
                f"crash({target})",
                (target,),
                kind="crash",
                steps=[self._terminate(self.spec.replica_selector(target), grace_period=0)],
                rollbacks=[],
                secrets=secrets,
                guard=self.guard,
            )
        mode = check_choice("mode", mode or "kill", K8S_GPU_LOSS_MODES)
        marks: list[FaultMark] = []
        if mode == "kill":
            steps = [self._terminate(self.spec.replica_selector(target), grace_period=0)]
            rollbacks = []
        else:
            node = self.spec.gpu_node(target)
            steps = [
                K8sCall("chaosk8s.node.actions", "cordon_node", {"name": node}),
                K8sCall(
                    "chaosk8s.node.actions",
                    "drain_nodes",
                    {"name": node, "delete_pods_with_local_storage": True, "timeout": 120},
                ),
            ]
            rollbacks = [K8sCall("chaosk8s.node.actions", "uncordon_node", {"name": node})]
            marks = [FaultMark("node", node, None, {"unschedulable": False})]
        return K8sFault(
            f"gpu_loss({target}, mode={mode})",
            (target,),
            kind="gpu_loss",
            steps=steps,
            rollbacks=rollbacks,
            secrets=secrets,
            guard=self.guard,
            marks=marks,
        )

    def _terminate(self, selector: str, *, grace_period: int) -> K8sCall:
        return K8sCall(
            "chaosk8s.pod.actions",
            "terminate_pods",
            {
                "label_selector": selector,
                "all": True,
                "grace_period": grace_period,
                "ns": self.spec.namespace,
            },
        )

    def _known_replica(self, replica: str) -> None:
        region = replica.split(".", 1)[0]
        if "." not in replica or region not in self.spec.regions:
            raise UnknownTargetError(
                f"replica {replica!r}: use <region>.r<N> with a region of "
                f"{sorted(self.spec.regions)}"
            )

    # -- inject -----------------------------------------------------------------------

    def api(self, secrets: dict[str, Any] | None = None) -> Any:
        """A :class:`~chaosrec.adapters.kubernetes.api.KubeAPI` on the cluster chaosk8s acts
        on (its API server checked by the guard first), for probes and guardrails."""
        check_kube_target(self.guard, secrets)
        api = _ledger_api(secrets)
        if api is None:
            raise ConfigError(
                "cluster probes need a kubeconfig (KUBECONFIG); in a pod or with "
                "KUBERNETES_HOST only chaosk8s's own probes work"
            )
        return api

    def sweep(self, secrets: dict[str, Any] | None = None) -> list[kubernetes_ledger.Swept]:
        """Undo what dead sessions of this host left on the cluster (once per instance;
        see :mod:`chaosrec.ctk.kubernetes_ledger`), logging each."""
        if self._swept:
            return []
        self._swept = True
        api = _ledger_api(secrets)
        if api is None:
            return []
        try:
            swept = kubernetes_ledger.sweep(api, (self.spec.namespace,))
        except Exception as err:  # noqa: BLE001 - reading others' marks is best effort
            logging.getLogger("chaosrec").warning(
                "cannot sweep faults of dead sessions: %s", str(_refused("the sweep", err))
            )
            return []
        for item in swept:
            logging.getLogger("chaosrec").warning("swept %s", item.describe())
        return swept

    def inject(
        self,
        fault: str,
        target: str,
        mode: str | None = None,
        secrets: dict[str, Any] | None = None,
    ) -> K8sFault:
        """Plan, check the Kubernetes configuration, then inject and register the fault."""
        planned = self.plan(fault, target, mode, secrets)
        check_kube_target(self.guard, secrets)  # before anything is called
        self.sweep(secrets)
        if self.chaos is not None:
            for listener in self.chaos.listeners:
                planned.add_listener(listener)
            self.chaos.faults.append(planned)
        return planned.inject()
