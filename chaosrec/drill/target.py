"""The recommender under test: the embedded stack, or a remote deployment described in a file.

A remote target file (YAML)::

    gateway_url: http://recsys-gateway.internal:8080
    toxiproxy_url: http://toxiproxy.internal:8474   # proxies named after the replicas
    topology: path/to/topology.yaml                  # or "default", or an inline mapping
    golden: path/to/golden.json                      # optional, for recall@10 probes
    admin_token_env: RECSYS_ADMIN_TOKEN              # optional: env var with the gateway's
                                                     # /admin bearer token (policy changes)
    triton_urls:                                     # optional, each replica's Triton
      region-a.r0: http://triton-a0.internal:8000

Remote targets support network faults (through their Toxiproxy) and every probe;
GPU, process and model faults need the embedded stack's control plane.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from chaosrec.adapters.gateway import GatewayClient
from chaosrec.adapters.toxiproxy import ToxiproxyClient
from chaosrec.core.topology import Topology, load_topology, parse_topology
from chaosrec.core.yamlfile import read_yaml
from chaosrec.errors import ConfigError
from chaosrec.faults.control import ServiceControl

if TYPE_CHECKING:
    from chaosrec.stack.stack import EmbeddedStack

__all__ = ["Golden", "RecsysTarget", "load_remote_config"]

_REMOTE_KEYS = {
    "gateway_url",
    "toxiproxy_url",
    "triton_urls",
    "topology",
    "golden",
    "n_users",
    "admin_token_env",  # the environment variable holding the gateway's /admin token
    "kubernetes",  # read by chaosrec.ctk.kubernetes (the Chaos Toolkit front)
}


@dataclass(frozen=True)
class Golden:
    """A golden request set: users and the items each really wanted (held-out)."""

    user_ids: tuple[int, ...]
    relevant: tuple[tuple[int, ...], ...]

    @classmethod
    def from_file(cls, path: Path) -> Golden:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls.from_mapping(data, str(path))

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "golden set") -> Golden:
        try:
            users = tuple(int(u) for u in data["user_ids"])
            relevant = tuple(tuple(int(i) for i in items) for items in data["relevant"])
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(
                f"{source}: a golden set needs 'user_ids' and 'relevant' lists ({err})"
            ) from err
        if len(users) != len(relevant) or not users:
            raise ConfigError(f"{source}: 'user_ids' and 'relevant' must be non-empty, same length")
        return cls(users, relevant)


def load_remote_config(path: Path) -> dict[str, Any]:
    """Read and check a remote target file; errors name the file and the key."""
    data = read_yaml(path, "target config")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a target config must be a mapping with gateway_url")
    unknown = set(data) - _REMOTE_KEYS
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_REMOTE_KEYS)}"
        )
    if not isinstance(data.get("gateway_url"), str) and "kubernetes" not in data:
        raise ConfigError(
            f"{path}: 'gateway_url' is required (e.g. http://host:8080), unless the target "
            "is a Kubernetes deployment acted on through its API (a 'kubernetes' section)"
        )
    return data


class RecsysTarget:
    """What drills need from the recommender: URLs, topology, control plane, probes."""

    def __init__(
        self,
        *,
        gateway_url: str,
        topology: Topology,
        toxiproxy: ToxiproxyClient | None,
        control: ServiceControl | None = None,
        golden: Golden | None = None,
        stack: EmbeddedStack | None = None,
        n_users: int | None = None,
        admin_token: str | None = None,
    ) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self.topology = topology
        self.toxiproxy = toxiproxy
        self.control = control
        self.golden = golden
        self.stack = stack  # the EmbeddedStack, when embedded
        self.n_users = n_users  # valid user ids are 0 .. n_users - 1, when known
        self.admin_token = admin_token  # bearer token of the gateway's /admin API

    @property
    def recommend_url(self) -> str:
        return f"{self.gateway_url}/recommend"

    @property
    def embedded(self) -> bool:
        return self.stack is not None

    @classmethod
    def from_stack(cls, stack: EmbeddedStack) -> RecsysTarget:
        golden = None
        if stack.golden is not None:
            golden = Golden(
                tuple(int(u) for u in stack.golden.user_ids),
                tuple(tuple(int(i) for i in r) for r in stack.golden.relevant),
            )
        return cls(
            gateway_url=stack.gateway_url,
            topology=stack.topology,
            toxiproxy=stack.toxiproxy,
            control=stack,
            golden=golden,
            stack=stack,
            n_users=int(stack.model_meta.get("n_users", 0)) or None,
            admin_token=stack.gateway_admin_token,
        )

    @classmethod
    def from_config(cls, path: Path, toxiproxy: ToxiproxyClient | None) -> RecsysTarget:
        data = load_remote_config(path)
        topo_spec = data.get("topology", "default")
        topology = (
            parse_topology(topo_spec, f"{path}:topology")
            if isinstance(topo_spec, dict)
            else load_topology(
                str(path.parent / topo_spec)
                if str(topo_spec).endswith((".yaml", ".yml"))
                else topo_spec
            )
        )
        golden = None
        if data.get("golden"):
            golden = Golden.from_file(path.parent / str(data["golden"]))
        n_users = data.get("n_users")
        token_env = data.get("admin_token_env")
        admin_token = None
        if token_env is not None:
            if not isinstance(token_env, str) or not token_env:
                raise ConfigError(f"{path}: admin_token_env must name an environment variable")
            admin_token = os.environ.get(token_env)
            if not admin_token:
                raise ConfigError(
                    f"{path}: admin_token_env names {token_env}, which is not set; export it "
                    "(the gateway's /admin bearer token) or remove admin_token_env"
                )
        return cls(
            gateway_url=str(data.get("gateway_url") or ""),  # "": cluster probes only
            topology=topology,
            toxiproxy=toxiproxy,
            golden=golden,
            n_users=int(n_users) if n_users else None,
            admin_token=admin_token,
        )

    # -- probes ---------------------------------------------------------------------

    @property
    def gateway(self) -> GatewayClient:
        """Health, metrics and policy of the gateway."""
        return GatewayClient(self.gateway_url, admin_token=self.admin_token)

    def check_reachable(self, timeout_s: float = 5.0) -> None:
        """Raise a clear error if the gateway does not answer (before any fault)."""
        self.gateway.check_reachable(timeout_s)

    def health(self) -> dict[str, Any]:
        return self.gateway.health()

    def wait_healthy(self, timeout_s: float = 30.0) -> float:
        """Block until the gateway reports every replica healthy; seconds waited."""
        return self.gateway.wait_healthy(timeout_s)

    def traffic(self, targets: tuple[str, ...]) -> int | None:
        """User traffic the gateway sent to these replicas (its per-replica attempt counts).

        Toxiproxy's byte counters are only the fallback for gateways without those
        metrics: through the proxies they also count the gateway's health checks,
        which flow whether or not any user request went there."""
        attempts = self.gateway.upstream_attempts(targets)
        if attempts is not None:
            return attempts
        if self.toxiproxy is not None:
            counts = self.toxiproxy.traffic_bytes()
            known = [counts[name] for name in targets if name in counts]
            return sum(known) if known else None
        return None

    def set_connection_reuse(self, reuse: bool) -> None:
        self.set_policy(connection_reuse=reuse)

    def policy(self) -> dict[str, Any]:
        return self.gateway.policy()

    def set_policy(self, **changes: Any) -> dict[str, Any]:
        """Change the gateway's resilience policy at run time (the embedded gateway)."""
        return self.gateway.set_policy(**changes)

    @contextlib.contextmanager
    def policy_changed(self, **changes: Any) -> Iterator[dict[str, Any]]:
        """Temporarily change the gateway policy (e.g. ``failover=False``); always restored."""
        before = self.policy()
        try:
            yield self.set_policy(**changes)
        finally:
            self.set_policy(**{k: before[k] for k in changes})

    def recall_at_10(self, timeout_s: float = 10.0) -> float:
        """Recall@10 of the live service on the golden request set (batch endpoint)."""
        if self.golden is None:
            raise ConfigError(
                "no golden request set for this target; add 'golden: file.json' to the "
                "target config"
            )
        hits = 0.0
        counted = 0
        users = list(self.golden.user_ids)
        with httpx.Client(base_url=self.gateway_url, timeout=timeout_s, trust_env=False) as client:
            for start in range(0, len(users), 64):
                chunk = users[start : start + 64]
                resp = client.post("/recommend/batch", json={"user_ids": chunk, "k": 10})
                resp.raise_for_status()
                for offset, result in enumerate(resp.json()["results"]):
                    relevant = set(self.golden.relevant[start + offset])
                    if not relevant:
                        continue
                    hits += len(relevant & set(result["items"][:10])) / len(relevant)
                    counted += 1
        return hits / counted if counted else 0.0
