"""One replica as the gateway calls it, with ``tritonclient`` (HTTP or gRPC asyncio clients)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from chaosrec.stack.gateway.breaker import CircuitBreaker
from chaosrec.stack.gateway.config import PolicyConfig, UpstreamConfig

__all__ = ["InferenceResult", "Upstream"]

_EWMA_WEIGHT = 0.5  # a change shows within two samples


def _ewma(previous: float | None, sample: float) -> float:
    return sample if previous is None else previous + _EWMA_WEIGHT * (sample - previous)


@dataclass(frozen=True)
class InferenceResult:
    items: npt.NDArray[np.int64]  # [batch, top_k]
    scores: npt.NDArray[np.float32]  # [batch, top_k]
    model_version: str


class Upstream:
    """A replica's client plus its health state and circuit breaker."""

    def __init__(self, config: UpstreamConfig, policy: PolicyConfig, protocol: str) -> None:
        self.config = config
        self.protocol = protocol
        self.breaker = CircuitBreaker(policy.breaker_failures, policy.breaker_cooldown_s)
        self.healthy = False  # until the first health check passes
        self._successes = 0
        self._client: Any = None
        self.policy = policy
        #: exponentially weighted recent round trips (s): of health checks (the network
        #: path) and of inference attempts (path plus compute), kept apart because checks
        #: are frequent and tiny and would hide a slow model or a throttled link
        self.rtt_ewma_s: float | None = None
        self.attempt_ewma_s: float | None = None
        self._probe_due_at = 0.0

    def observe_rtt(self, seconds: float) -> None:
        """Fold one health-check round trip into :attr:`rtt_ewma_s`."""
        self.rtt_ewma_s = _ewma(self.rtt_ewma_s, seconds)

    def observe_attempt(self, seconds: float) -> None:
        """Fold one inference attempt's duration into :attr:`attempt_ewma_s`."""
        self.attempt_ewma_s = _ewma(self.attempt_ewma_s, seconds)

    @property
    def latency_ewma_s(self) -> float | None:
        """The worse of the two recent latencies (None before any sample)."""
        known = [v for v in (self.rtt_ewma_s, self.attempt_ewma_s) if v is not None]
        return max(known) if known else None

    @property
    def slow(self) -> bool:
        """Recently slower than ``policy.slow_after_s`` (never when that is 0)."""
        limit = self.policy.slow_after_s
        latency = self.latency_ewma_s
        return bool(limit and latency is not None and latency > limit)

    def take_probe(self, now: float, interval_s: float) -> bool:
        """A slow replica still gets one request per ``interval_s``, so its latency is
        re-measured and it comes back once it is fast again. True if this is that one."""
        if now < self._probe_due_at:
            return False
        self._probe_due_at = now + interval_s
        return True

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def region(self) -> str:
        return self.config.region

    def _new_client(self) -> Any:
        if self.protocol == "grpc":
            import tritonclient.grpc.aio as grpcclient

            return grpcclient.InferenceServerClient(self.config.address)
        import tritonclient.http.aio as httpclient

        return httpclient.InferenceServerClient(
            self.config.address,
            conn_limit=self.policy.connections_per_replica,
            conn_timeout=max(self.policy.request_timeout_s, 5.0),
        )

    def _get_client(self) -> Any:
        if self._client is None:
            self._client = self._new_client()
        return self._client

    async def infer(
        self, model_name: str, user_ids: npt.NDArray[np.int64], timeout_s: float
    ) -> InferenceResult:
        """One inference; raises on error or after ``timeout_s``."""
        fresh = not self.policy.connection_reuse
        client = self._new_client() if fresh else self._get_client()
        if self.protocol == "grpc":
            import tritonclient.grpc as grpc_mod

            inp = grpc_mod.InferInput("USER_ID", [len(user_ids), 1], "INT64")
        else:
            import tritonclient.http as http_mod

            inp = http_mod.InferInput("USER_ID", [len(user_ids), 1], "INT64")
        inp.set_data_from_numpy(user_ids.reshape(-1, 1).astype(np.int64))
        try:
            result = await asyncio.wait_for(client.infer(model_name, [inp]), timeout_s)
        finally:
            if fresh:
                await client.close()
        response = result.get_response()
        version = (
            response.model_version if self.protocol == "grpc" else response.get("model_version", "")
        )
        return InferenceResult(
            items=result.as_numpy("ITEM_IDS"),
            scores=result.as_numpy("SCORES"),
            model_version=str(version),
        )

    async def check_health(self, model_name: str, timeout_s: float, healthy_after: int) -> bool:
        """Active health check: per-model readiness (server readiness lies while unloaded)."""
        started = time.monotonic()
        try:
            ready = bool(
                await asyncio.wait_for(self._get_client().is_model_ready(model_name), timeout_s)
            )
        except Exception:  # noqa: BLE001
            ready = False
        if ready:
            # the check crosses the same network path as inference: its round trip tells
            # a slow link apart even while no request is routed to this replica
            self.observe_rtt(time.monotonic() - started)
            self._successes += 1
            if self._successes >= healthy_after:
                self.healthy = True
        else:
            self._successes = 0
            if self.healthy:
                self.breaker.trip()
            self.healthy = False
        return ready

    async def reconnect(self) -> None:
        """Drop pooled connections (used after a fault so new ones see the current network)."""
        await self.close()

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                await client.close()
