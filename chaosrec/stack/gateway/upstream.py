"""One replica as the gateway calls it, with ``tritonclient`` (HTTP or gRPC asyncio clients)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from chaosrec.stack.gateway.breaker import CircuitBreaker
from chaosrec.stack.gateway.config import PolicyConfig, UpstreamConfig

__all__ = ["InferenceResult", "Upstream"]


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
        try:
            ready = bool(
                await asyncio.wait_for(self._get_client().is_model_ready(model_name), timeout_s)
            )
        except Exception:  # noqa: BLE001
            ready = False
        if ready:
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
