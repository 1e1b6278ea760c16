"""The gateway's request path: routing, retries, cross-region failover, breakers, fallback.

Request path for ``GET /recommend?user_id=U&k=K``:

1. shed at once (503 + Retry-After) when ``max_inflight`` requests are in flight,
   or, with a probability growing with the overload, when the event loop is running
   more than ``shed_lag_s`` late with ``shed_min_inflight`` requests in flight (the
   gateway is out of CPU because of the traffic itself);
2. order candidates: healthy replicas of the preferred region (round-robin), then,
   with ``failover``, healthy replicas of the other regions; replicas whose recent
   latency is above ``slow_after_s`` go after every fast one; a replica whose
   breaker is open is skipped, a half-open one gets a single trial;
3. try up to ``max_attempts`` candidates (1 without ``retry``), each bounded by
   ``attempt_timeout_s``, all within ``request_timeout_s``: a failed attempt is
   retried on the next candidate at once, and an attempt still unanswered after
   ``hedge_after_s`` is *hedged*: a parallel attempt goes to a replica in another
   region (if any), the first answer wins and the others are cancelled. Hedges
   spend a token budget earned by answered requests, so they cannot double the
   load during an overload;
4. if none answered: with ``fallback``, a degraded answer (the user's last good
   list, else popularity); without it, 503.

Every answer says which region and replica served it and whether it is degraded,
in the JSON body and in ``X-Chaosrec-*`` headers (cheap for load generators).

Before any of that, every query parameter and body is checked in
:mod:`~chaosrec.stack.gateway.validation`, bodies are read within the limits of
:mod:`~chaosrec.stack.gateway.edge`, and ``/admin/*`` needs the admin token: a refused
request gets a 4xx with ``{"error": "one-line reason"}``, never a 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import numpy.typing as npt
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from chaosrec.errors import ConfigError
from chaosrec.stack.gateway.config import POLICY_RULES, GatewayConfig, PolicyConfig
from chaosrec.stack.gateway.edge import admin_auth, client_errors, read_body
from chaosrec.stack.gateway.fallback import FallbackCache
from chaosrec.stack.gateway.recording import TrafficRecorder
from chaosrec.stack.gateway.upstream import InferenceResult, Upstream
from chaosrec.stack.gateway.validation import (
    BATCH_SHAPE,
    POLICY_SHAPE,
    RequestError,
    check_query,
    parse_batch,
    parse_json,
    parse_policy_changes,
    parse_recommend,
)

__all__ = ["GATEWAY_KEY", "Gateway", "make_app"]

_LAG_TICK_S = 0.02


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a finished attempt's exception as seen (losers may fail after we moved on)."""
    if not task.cancelled():
        task.exception()


@dataclasses.dataclass
class _Answer:
    items: list[list[int]]
    scores: list[list[float]] | None
    region: str | None
    replica: str | None
    source: str  # "model" | "last_good" | "popularity"
    attempts: int
    model_version: str | None

    @property
    def degraded(self) -> bool:
        return self.source != "model"


class Gateway:
    """State shared by the handlers: upstreams, policy, fallback cache and metrics."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.policy = config.policy
        self.upstreams = [Upstream(u, config.policy, config.protocol) for u in config.upstreams]
        self.fallback = FallbackCache(config.popularity)
        self.recorder = TrafficRecorder()  # off until POST /admin/recording/start
        self.inflight = 0
        self._rr: dict[str, int] = {}
        self._hedge_tokens = float(config.policy.hedge_budget_max)
        self.loop_lag_s = 0.0
        self._lag_task: asyncio.Task[None] | None = None
        self._random = random.Random(0)
        self._health_task: asyncio.Task[None] | None = None
        self.registry = CollectorRegistry()
        self.m_requests = Counter(
            "chaosrec_gateway_requests",
            "Answered requests",
            ["outcome", "region"],
            registry=self.registry,
        )
        self.m_latency = Histogram(
            "chaosrec_gateway_request_duration_seconds",
            "Request latency",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.m_attempts = Counter(
            "chaosrec_gateway_upstream_attempts",
            "Upstream inference attempts",
            ["replica", "outcome"],
            registry=self.registry,
        )
        self.m_hedges = Counter(
            "chaosrec_gateway_hedges", "Hedged attempts launched", registry=self.registry
        )
        self.m_healthy = Gauge(
            "chaosrec_gateway_upstream_healthy",
            "1 when the replica passes health checks",
            ["replica", "region"],
            registry=self.registry,
        )
        self.m_breaker = Gauge(
            "chaosrec_gateway_breaker_state",
            "0 closed, 1 half-open, 2 open",
            ["replica"],
            registry=self.registry,
        )
        self.m_loop_lag = Gauge(
            "chaosrec_gateway_loop_lag_seconds",
            "How late the event loop runs (EWMA); load is shed above policy.shed_lag_s",
            registry=self.registry,
        )
        self.m_rejected = Counter(
            "chaosrec_gateway_rejected_requests",
            "Requests refused with a 4xx (malformed, too large, too slow, unauthorized)",
            ["status"],
            registry=self.registry,
        )
        self.m_inflight = Gauge(
            "chaosrec_gateway_inflight", "Requests in flight", registry=self.registry
        )
        self.m_gc_pause = Histogram(
            "chaosrec_gateway_gc_pause_seconds",
            "Garbage-collection pauses of the gateway process (every request waits them out)",
            ["generation"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.registry,
        )
        self._gc_started = 0.0

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        # everything imported and built so far lives as long as the process: keep it out
        # of full collections, whose pauses would otherwise show up as request latency
        gc.freeze()
        gc.callbacks.append(self._on_gc)
        self._health_task = asyncio.create_task(self._health_loop())
        self._lag_task = asyncio.create_task(self._lag_loop())

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            pause = time.perf_counter() - self._gc_started
            self.m_gc_pause.labels(str(info.get("generation", "?"))).observe(pause)

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        for task in (self._health_task, self._lag_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for upstream in self.upstreams:
            await upstream.close()

    async def _health_loop(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.gather(
                *(
                    u.check_health(
                        self.config.model_name,
                        self.policy.health_timeout_s,
                        self.policy.healthy_after,
                    )
                    for u in self.upstreams
                )
            )
            for u in self.upstreams:
                self.m_healthy.labels(u.id, u.region).set(1 if u.healthy else 0)
                self.m_breaker.labels(u.id).set(int(u.breaker.state))
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, self.policy.health_interval_s - elapsed))

    async def _lag_loop(self) -> None:
        """Measure how late the loop runs a 20 ms timer: the gateway's CPU saturation."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(_LAG_TICK_S)
            lag = max(0.0, loop.time() - started - _LAG_TICK_S)
            self.loop_lag_s += 0.3 * (lag - self.loop_lag_s)
            self.m_loop_lag.set(self.loop_lag_s)

    def _overloaded(self) -> bool:
        limit = self.policy.shed_lag_s
        if not limit or self.loop_lag_s <= limit or self.inflight < self.policy.shed_min_inflight:
            return False
        return self._random.random() < (self.loop_lag_s - limit) / limit

    def set_policy(self, policy: PolicyConfig) -> None:
        self.policy = policy
        for upstream in self.upstreams:
            upstream.policy = policy
            upstream.breaker.failure_threshold = policy.breaker_failures
            upstream.breaker.cooldown_s = policy.breaker_cooldown_s

    # -- routing -------------------------------------------------------------------

    def candidates(self, region: str) -> list[Upstream]:
        """Replicas to try, in order: the preferred region first, then (failover) the rest;
        within that order, every fast replica before any slow one."""
        regions = [region] + (
            [r for r in self.config.regions if r != region] if self.policy.failover else []
        )
        fast: list[Upstream] = []
        slow: list[Upstream] = []
        now = time.monotonic()
        for reg in regions:
            members = [u for u in self.upstreams if u.region == reg]
            start = self._rr.get(reg, 0)
            self._rr[reg] = (start + 1) % max(1, len(members))
            for u in members[start:] + members[:start]:
                if u.healthy and u.breaker.allow():
                    probe = u.slow and u.take_probe(now, self.policy.health_interval_s)
                    (slow if u.slow and not probe else fast).append(u)
        ordered = fast + slow
        if not ordered and not self.policy.failover:
            # Without failover the home region is all we have: try it even if unhealthy.
            ordered = [u for u in self.upstreams if u.region == region and u.breaker.allow()]
        return ordered

    async def recommend(self, user_ids: npt.NDArray[np.int64], k: int, region: str) -> _Answer:
        policy = self.policy
        deadline = time.monotonic() + policy.request_timeout_s
        max_attempts = policy.max_attempts if policy.retry else 1
        queue = self.candidates(region)
        pending: dict[asyncio.Task[InferenceResult], tuple[Upstream, float]] = {}
        attempts = 0

        def launch(hedge: bool) -> bool:
            """Start an attempt on the next candidate (a hedge prefers another region)."""
            nonlocal attempts
            busy = {u.region for u, _ in pending.values()}
            while attempts < max_attempts and queue:
                left = deadline - time.monotonic()
                if left <= 0.001:
                    return False
                pick = next((i for i, u in enumerate(queue) if u.region not in busy), 0)
                upstream = queue.pop(pick if hedge else 0)
                if not upstream.breaker.acquire():
                    continue
                attempts += 1
                task = asyncio.create_task(
                    upstream.infer(
                        self.config.model_name, user_ids, min(policy.attempt_timeout_s, left)
                    )
                )
                task.add_done_callback(_retrieve)
                pending[task] = (upstream, time.monotonic())
                return True
            return False

        launch(hedge=False)
        try:
            while pending:
                now = time.monotonic()
                wait_s = deadline - now
                can_hedge = bool(
                    policy.hedge_after_s > 0
                    and attempts < max_attempts
                    and queue
                    and self._hedge_tokens >= 1
                )
                if can_hedge:
                    newest = max(t for _, t in pending.values())
                    wait_s = min(wait_s, newest + policy.hedge_after_s - now)
                done, _ = await asyncio.wait(
                    pending, timeout=max(0.0, wait_s), return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    if time.monotonic() >= deadline:
                        break
                    if can_hedge and launch(hedge=True):
                        self._hedge_tokens -= 1
                        self.m_hedges.inc()
                    continue
                # answers first: a success in the same batch as a failure wins
                for task in sorted(done, key=lambda t: t.exception() is not None):
                    upstream, launched = pending.pop(task)
                    elapsed = time.monotonic() - launched
                    err = task.exception()
                    if err is None:
                        return self._answered(
                            upstream, user_ids, task.result(), elapsed, attempts, k
                        )
                    upstream.breaker.record_failure()
                    timed_out = isinstance(err, asyncio.TimeoutError)
                    if timed_out:
                        upstream.observe_attempt(elapsed)
                    self.m_attempts.labels(upstream.id, "timeout" if timed_out else "error").inc()
                    launch(hedge=False)  # retry at once on the next candidate
        finally:
            for task, (upstream, launched) in pending.items():
                # Losers of a hedge race (or of a client that went away): no verdict for
                # the breaker. One that had the whole hedge delay and still lost counts
                # as a slow sample (its true latency is unknown, but too slow to wait for).
                task.cancel()
                upstream.breaker.abandon()
                waited = time.monotonic() - launched
                if policy.hedge_after_s and waited >= policy.hedge_after_s:
                    upstream.observe_attempt(max(waited, 2 * policy.slow_after_s))
                self.m_attempts.labels(upstream.id, "cancelled").inc()
        if not policy.fallback:
            raise web.HTTPServiceUnavailable(
                text='{"error": "no replica could serve the request"}',
                content_type="application/json",
                headers={"Retry-After": "1"},
            )
        lists, sources = zip(*(self.fallback.answer(int(u), k) for u in user_ids), strict=True)
        source = "last_good" if all(s == "last_good" for s in sources) else "popularity"
        return _Answer(list(lists), None, None, None, source, attempts, None)

    def _answered(
        self,
        upstream: Upstream,
        user_ids: npt.NDArray[np.int64],
        result: InferenceResult,
        elapsed_s: float,
        attempts: int,
        k: int,
    ) -> _Answer:
        upstream.breaker.record_success()
        upstream.observe_attempt(elapsed_s)
        self.m_attempts.labels(upstream.id, "ok").inc()
        policy = self.policy
        self._hedge_tokens = min(
            float(policy.hedge_budget_max), self._hedge_tokens + policy.hedge_budget_ratio
        )
        for uid, full in zip(user_ids.tolist(), result.items.tolist(), strict=True):
            self.fallback.remember(int(uid), full)
        return _Answer(
            items=result.items[:, :k].tolist(),
            scores=result.scores[:, :k].tolist(),
            region=upstream.region,
            replica=upstream.id,
            source="model",
            attempts=attempts,
            model_version=result.model_version,
        )

    # -- handlers ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _admit(self) -> AsyncIterator[None]:
        if self.inflight >= self.policy.max_inflight or self._overloaded():
            self.m_requests.labels("shed", "").inc()
            raise web.HTTPServiceUnavailable(
                text='{"error": "overloaded: retry after the Retry-After delay"}',
                content_type="application/json",
                headers={"Retry-After": "1"},
            )
        self.inflight += 1
        self.m_inflight.set(self.inflight)
        try:
            yield
        finally:
            self.inflight -= 1
            self.m_inflight.set(self.inflight)

    def rejected(self, status: int) -> None:
        """Count a refused request (4xx): the client's fault, not the service's."""
        self.m_requests.labels("bad_request", "").inc()
        self.m_rejected.labels(str(status)).inc()

    async def _json_body(self, request: web.Request, expected: str) -> Any:
        config = self.config
        raw = await read_body(request, config.max_body_bytes, config.body_timeout_s)
        return parse_json(raw, expected)

    async def handle_recommend(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        config = self.config
        query = parse_recommend(
            list(request.query.items()),
            max_k=config.max_k,
            n_users=config.n_users,
            regions=config.regions,
            home_region=config.home_region,
        )
        uid, k = query.user_id, query.k
        async with self._admit():
            answer = await self.recommend(np.array([uid], dtype=np.int64), k, query.region)
        body = {
            "user_id": uid,
            "k": k,
            "items": answer.items[0],
            "scores": answer.scores[0] if answer.scores is not None else None,
            "region": answer.region,
            "replica": answer.replica,
            "degraded": answer.degraded,
            "source": answer.source,
            "attempts": answer.attempts,
            "model_version": answer.model_version,
        }
        return self._respond(body, answer, started)

    async def handle_batch(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        config = self.config
        check_query(list(request.query.items()), "/recommend/batch")
        batch = parse_batch(
            await self._json_body(request, BATCH_SHAPE),
            max_k=config.max_k,
            n_users=config.n_users,
            regions=config.regions,
            home_region=config.home_region,
        )
        ids, k = batch.user_ids, batch.k
        async with self._admit():
            answer = await self.recommend(np.array(ids, dtype=np.int64), k, batch.region)
        body = {
            "k": k,
            "results": [
                {"user_id": uid, "items": items}
                for uid, items in zip(ids, answer.items, strict=True)
            ],
            "region": answer.region,
            "replica": answer.replica,
            "degraded": answer.degraded,
            "source": answer.source,
            "attempts": answer.attempts,
            "model_version": answer.model_version,
        }
        return self._respond(body, answer, started)

    def _respond(self, body: dict[str, Any], answer: _Answer, started: float) -> web.Response:
        outcome = "degraded" if answer.degraded else "ok"
        self.m_requests.labels(outcome, answer.region or "").inc()
        self.m_latency.observe(time.perf_counter() - started)
        headers = {
            "X-Chaosrec-Region": answer.region or "",
            "X-Chaosrec-Replica": answer.replica or "",
            "X-Chaosrec-Degraded": "1" if answer.degraded else "0",
        }
        return web.json_response(body, headers=headers)

    async def handle_healthz(self, request: web.Request) -> web.Response:
        check_query(list(request.query.items()), "/healthz")
        replicas = {
            u.id: {
                "region": u.region,
                "healthy": u.healthy,
                "breaker": u.breaker.state.name.lower(),
                "slow": u.slow,
                "latency_ewma_ms": (
                    None if u.latency_ewma_s is None else round(u.latency_ewma_s * 1000, 2)
                ),
                "address": u.config.address,
            }
            for u in self.upstreams
        }
        any_healthy = any(u.healthy for u in self.upstreams)
        all_healthy = all(u.healthy for u in self.upstreams)
        status = "ok" if all_healthy else ("degraded" if any_healthy else "down")
        return web.json_response(
            {
                "status": status,
                "replicas": replicas,
                "inflight": self.inflight,
                "loop_lag_ms": round(self.loop_lag_s * 1000, 2),
            }
        )

    async def handle_metrics(self, request: web.Request) -> web.Response:
        check_query(list(request.query.items()), "/metrics")
        return web.Response(body=generate_latest(self.registry), content_type="text/plain")

    async def handle_get_policy(self, request: web.Request) -> web.Response:
        check_query(list(request.query.items()), "/admin/policy")
        return web.json_response(dataclasses.asdict(self.policy))

    async def handle_start_recording(self, request: web.Request) -> web.Response:
        """Start recording traffic (admin token required); see :mod:`.recording`."""
        check_query(list(request.query.items()), "/admin/recording/start")
        raw = await read_body(request, self.config.max_body_bytes, self.config.body_timeout_s)
        body = parse_json(raw, '{"max_requests": N}') if raw.strip() else None
        return await self.recorder.handle_start(request, body)

    async def handle_stop_recording(self, request: web.Request) -> web.Response:
        """Stop recording; answers the recording as JSON lines."""
        check_query(list(request.query.items()), "/admin/recording/stop")
        return await self.recorder.handle_stop(request)

    async def handle_set_policy(self, request: web.Request) -> web.Response:
        """Change policy at run time, e.g. to switch failover off in a drill (admin token
        required). The whole change is checked before any of it applies: a bad value
        anywhere answers 400 and leaves the live policy as it was."""
        check_query(list(request.query.items()), "/admin/policy")
        changes = parse_policy_changes(await self._json_body(request, POLICY_SHAPE), POLICY_RULES)
        try:
            policy = self.policy.replace(**changes)
        except ConfigError as err:
            raise RequestError(str(err)) from None
        self.set_policy(policy)
        return web.json_response(dataclasses.asdict(self.policy))


GATEWAY_KEY = web.AppKey("gateway", Gateway)


def make_app(config: GatewayConfig) -> web.Application:
    """The aiohttp application serving the gateway's endpoints (serve it with
    :func:`~chaosrec.stack.gateway.edge.server_options` for the header timeout)."""
    gateway = Gateway(config)
    app = web.Application(
        middlewares=[
            client_errors(gateway.rejected),
            admin_auth(config.admin_token),
            gateway.recorder.middleware(),
        ],
        client_max_size=config.max_body_bytes,
    )
    app[GATEWAY_KEY] = gateway
    app.router.add_get("/recommend", gateway.handle_recommend)
    app.router.add_post("/recommend/batch", gateway.handle_batch)
    app.router.add_get("/healthz", gateway.handle_healthz)
    app.router.add_get("/metrics", gateway.handle_metrics)
    app.router.add_get("/admin/policy", gateway.handle_get_policy)
    app.router.add_post("/admin/policy", gateway.handle_set_policy)
    app.router.add_post("/admin/recording/start", gateway.handle_start_recording)
    app.router.add_post("/admin/recording/stop", gateway.handle_stop_recording)

    async def on_startup(app: web.Application) -> None:
        await gateway.start()

    async def on_cleanup(app: web.Application) -> None:
        await gateway.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
