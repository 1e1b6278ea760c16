"""Gateway configuration: upstream replicas and the resilience policy, loaded from JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosrec.errors import ConfigError

__all__ = ["GatewayConfig", "PolicyConfig", "UpstreamConfig"]


@dataclass(frozen=True)
class UpstreamConfig:
    """One replica as the gateway sees it: through its Toxiproxy proxy at ``address``."""

    id: str
    region: str
    address: str  # "127.0.0.1:PORT" of the replica's proxy (or of Triton directly)


@dataclass(frozen=True)
class PolicyConfig:
    """The gateway's resilience policy. Times in seconds.

    ``failover=False`` keeps traffic in the home region even when it is down, and
    ``fallback=False`` answers 503 instead of a degraded list: both exist so drills
    can prove that a weakened policy is caught.
    """

    attempt_timeout_s: float = 0.3
    request_timeout_s: float = 1.0
    max_attempts: int = 3
    retry: bool = True
    failover: bool = True
    fallback: bool = True
    health_interval_s: float = 0.2
    health_timeout_s: float = 0.25
    healthy_after: int = 2
    breaker_failures: int = 3
    breaker_cooldown_s: float = 1.0
    max_inflight: int = 256
    #: overload control: when the gateway's event loop runs this late (EWMA of a 20 ms
    #: ticker) *and* at least ``shed_min_inflight`` requests are in flight, new requests
    #: are shed with 503 + Retry-After, with a probability rising from 0 at this lag to 1
    #: at twice it (0 disables). Shedding early keeps admitted requests fast instead of
    #: letting every request time out together. The in-flight floor tells overload apart
    #: from a CPU briefly taken by another process (e.g. a replica restarting).
    shed_lag_s: float = 0.05
    shed_min_inflight: int = 64
    connections_per_replica: int = 32
    #: keep-alive pools to replicas; False opens a connection per attempt, which makes
    #: Toxiproxy's per-connection toxicity a per-request share (used by partial faults)
    connection_reuse: bool = True
    #: launch a parallel attempt on another replica when one has not answered after this
    #: long (0 disables hedging); hedges go to another region first
    hedge_after_s: float = 0.05
    #: hedging budget, as in gRPC retry throttling: each answered request earns this many
    #: tokens, a hedge costs one, at most ``hedge_budget_max`` are banked. It bounds the
    #: extra load hedges add under overload (0.1: at most 10 % more attempts, sustained).
    hedge_budget_ratio: float = 0.1
    hedge_budget_max: int = 100
    #: a replica whose recent latency (EWMA of health checks and attempts) is above this
    #: is tried after every fast replica, in any region (0 disables)
    slow_after_s: float = 0.1

    def __post_init__(self) -> None:
        positive = (
            "attempt_timeout_s",
            "request_timeout_s",
            "health_interval_s",
            "health_timeout_s",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"policy.{name}={value!r} must be a number > 0")
        for name in ("breaker_cooldown_s", "hedge_after_s", "slow_after_s", "shed_lag_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"policy.{name}={value!r} must be a number >= 0")
        ratio = self.hedge_budget_ratio
        if not isinstance(ratio, int | float) or isinstance(ratio, bool) or not 0 <= ratio <= 1:
            raise ConfigError(f"policy.hedge_budget_ratio={ratio!r} must be in [0, 1]")
        for name in (
            "max_attempts",
            "healthy_after",
            "breaker_failures",
            "max_inflight",
            "connections_per_replica",
            "hedge_budget_max",
            "shed_min_inflight",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"policy.{name}={value!r} must be an integer >= 1")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(
                f"unknown gateway policy key(s) {sorted(unknown)}; allowed: {sorted(names)}"
            )
        return cls(**data)

    def replace(self, **changes: Any) -> PolicyConfig:
        return PolicyConfig.from_dict({**dataclasses.asdict(self), **changes})


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway process needs; written by the stack, read at start-up."""

    port: int
    home_region: str
    upstreams: tuple[UpstreamConfig, ...]
    popularity: tuple[int, ...]
    host: str = "127.0.0.1"
    model_name: str = "recsys"
    protocol: str = "http"
    n_users: int | None = None
    max_k: int = 50
    policy: PolicyConfig = field(default_factory=PolicyConfig)

    def __post_init__(self) -> None:
        if self.protocol not in ("http", "grpc"):
            raise ConfigError(f"protocol={self.protocol!r} must be 'http' or 'grpc'")
        if not self.upstreams:
            raise ConfigError("a gateway needs at least one upstream replica")
        regions = {u.region for u in self.upstreams}
        if self.home_region not in regions:
            raise ConfigError(
                f"home_region={self.home_region!r} has no upstream; regions: {sorted(regions)}"
            )

    @property
    def regions(self) -> list[str]:
        seen: list[str] = []
        for upstream in self.upstreams:
            if upstream.region not in seen:
                seen.append(upstream.region)
        return seen

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GatewayConfig:
        data = dict(data)
        data["upstreams"] = tuple(UpstreamConfig(**u) for u in data["upstreams"])
        data["popularity"] = tuple(int(i) for i in data["popularity"])
        data["policy"] = PolicyConfig.from_dict(data.get("policy", {}))
        return cls(**data)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> GatewayConfig:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
