"""Gateway configuration: upstream replicas, the resilience policy, the HTTP limits and
the admin token, loaded from JSON.

The JSON file holds the admin token, so :meth:`GatewayConfig.write` creates it readable
by its owner only (mode 0600). The token never appears in a ``repr`` or a message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import secrets
import string
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosrec.errors import ConfigError
from chaosrec.stack.gateway.validation import show

__all__ = ["POLICY_RULES", "GatewayConfig", "PolicyConfig", "Rule", "UpstreamConfig"]

_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-._~+/=")


@dataclass(frozen=True)
class Rule:
    """What one setting may be: a JSON boolean, or a finite number within bounds.

    ``kind`` is ``bool``, ``int`` (an integer in ``[low, high]``) or ``float`` (any
    finite number in ``[low, high]``, or ``(low, high]`` with ``low_open``).
    """

    kind: type
    low: float = 0
    high: float = 0
    low_open: bool = False

    @property
    def allowed(self) -> str:
        if self.kind is bool:
            return "a JSON boolean (true or false)"
        if self.kind is int:
            return f"an integer >= {self.low:g} and <= {self.high:g}"
        return f"a number {'>' if self.low_open else '>='} {self.low:g} and <= {self.high:g}"

    def accepts(self, value: object) -> bool:
        if self.kind is bool:
            return isinstance(value, bool)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above_low = value > self.low if self.low_open else value >= self.low
        return above_low and value <= self.high

    def check(self, name: str, value: object) -> None:
        """Raise :class:`ConfigError` naming ``name``, the value and what is allowed."""
        if not self.accepts(value):
            raise ConfigError(f"{name}={show(value)} must be {self.allowed}")


#: every policy key and what it may be (times in seconds). The upper bounds keep a
#: policy change from stalling the gateway (a 1-hour timeout, a million attempts).
POLICY_RULES: dict[str, Rule] = {
    "attempt_timeout_s": Rule(float, 0, 60, low_open=True),
    "request_timeout_s": Rule(float, 0, 60, low_open=True),
    "max_attempts": Rule(int, 1, 16),
    "retry": Rule(bool),
    "failover": Rule(bool),
    "fallback": Rule(bool),
    # health checks run every interval against every replica: 10 ms at the fastest
    "health_interval_s": Rule(float, 0.01, 60),
    "health_timeout_s": Rule(float, 0.01, 60),
    "healthy_after": Rule(int, 1, 100),
    "breaker_failures": Rule(int, 1, 1000),
    "breaker_cooldown_s": Rule(float, 0, 600),
    "max_inflight": Rule(int, 1, 100_000),
    "shed_lag_s": Rule(float, 0, 10),
    "shed_min_inflight": Rule(int, 1, 100_000),
    "connections_per_replica": Rule(int, 1, 1024),
    "connection_reuse": Rule(bool),
    "hedge_after_s": Rule(float, 0, 60),
    "hedge_budget_ratio": Rule(float, 0, 1),
    "hedge_budget_max": Rule(int, 1, 100_000),
    "slow_after_s": Rule(float, 0, 60),
}

#: the HTTP limits of :class:`GatewayConfig` and what they may be
LIMIT_RULES: dict[str, Rule] = {
    "header_timeout_s": Rule(float, 0, 300, low_open=True),
    "body_timeout_s": Rule(float, 0, 300, low_open=True),
    "max_body_bytes": Rule(int, 1024, 16 * 1024 * 1024),
    "max_k": Rule(int, 1, 10_000),
    "port": Rule(int, 0, 65535),
}


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

    Every value is checked on construction against :data:`POLICY_RULES` (real booleans;
    finite numbers within bounds); a bad one raises :class:`ConfigError`.
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
        for name, rule in POLICY_RULES.items():  # a test checks every field has a rule
            rule.check(f"policy.{name}", getattr(self, name))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(
                f"unknown gateway policy key(s) {show(sorted(unknown))}; allowed: {sorted(names)}"
            )
        return cls(**data)

    def replace(self, **changes: Any) -> PolicyConfig:
        """A new policy with ``changes``; every value is checked before any applies."""
        return PolicyConfig.from_dict({**dataclasses.asdict(self), **changes})


def _new_admin_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway process needs; written by the stack, read at start-up.

    HTTP limits (see :data:`LIMIT_RULES` for their bounds):

    * ``header_timeout_s``: a connection must deliver a request's complete headers
      within this long of opening (or of its previous answer), else it is closed;
      it is also how long an idle keep-alive connection is kept;
    * ``body_timeout_s``: a request body must arrive whole within this long, else 408
      and the connection is closed;
    * ``max_body_bytes``: larger bodies get 413 (read no further than that).

    ``admin_token`` guards ``/admin/*`` (``Authorization: Bearer <token>``); a random
    one is generated when none is given. Hand it to clients from this object (or the
    file :meth:`write` makes); it is left out of ``repr`` and of every message.
    """

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
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    max_body_bytes: int = 64 * 1024
    admin_token: str = field(default_factory=_new_admin_token, repr=False)

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
        for name, rule in LIMIT_RULES.items():
            rule.check(name, getattr(self, name))
        if self.n_users is not None:
            Rule(int, 1, 2**63 - 1).check("n_users", self.n_users)
        token = self.admin_token
        if not isinstance(token, str) or not 32 <= len(token) <= 512 or set(token) - _TOKEN_CHARS:
            size = f"{len(token)} characters" if isinstance(token, str) else type(token).__name__
            raise ConfigError(
                f"admin_token must be 32 to 512 characters of A-Z a-z 0-9 - . _ ~ + / = "
                f"(got {size}; the value is not shown); omit it to have one generated"
            )

    @property
    def regions(self) -> list[str]:
        seen: list[str] = []
        for upstream in self.upstreams:
            if upstream.region not in seen:
                seen.append(upstream.region)
        return seen

    def to_dict(self) -> dict[str, Any]:
        """Every field, the admin token included: keep the result private."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GatewayConfig:
        data = dict(data)
        data["upstreams"] = tuple(UpstreamConfig(**u) for u in data["upstreams"])
        data["popularity"] = tuple(int(i) for i in data["popularity"])
        data["policy"] = PolicyConfig.from_dict(data.get("policy", {}))
        return cls(**data)

    def write(self, path: Path) -> None:
        """Write the config as JSON, readable and writable by its owner only (mode 0600,
        whatever the umask: it holds the admin token). Replaces ``path`` atomically."""
        text = json.dumps(self.to_dict(), indent=2)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @classmethod
    def read(cls, path: Path, *, store_token: bool = False) -> GatewayConfig:
        """Read a config written by :meth:`write` (or by hand).

        With ``store_token`` (the gateway process at start-up), a file without an
        ``admin_token`` gets the generated one written back, so its owner can read it
        there; a file other users may read gets a warning on stderr.
        """
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a gateway config must be a JSON object")
        config = cls.from_dict(data)
        if store_token:
            if "admin_token" not in data:
                config.write(path)
                print(
                    f"gateway: {path} had no admin_token; generated one and wrote it there "
                    "(mode 0600)",
                    file=sys.stderr,
                )
            elif path.stat().st_mode & 0o077:
                print(
                    f"gateway: warning: {path} holds the admin token and other users may "
                    f"read it; run chmod 600 {path}",
                    file=sys.stderr,
                )
        return config
