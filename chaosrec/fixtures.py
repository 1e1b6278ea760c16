"""The drill fixtures: thin wrappers handing off to library objects.

Public contract (names and calls are stable):

* ``recsys`` (session): the recommender under test (:class:`~chaosrec.drill.target.RecsysTarget`),
  the embedded stack by default; started only when a test asks for it.
* ``toxiproxy`` (session): the Toxiproxy server (started when embedded) and its client;
  ``toxiproxy.proxy(name, upstream="host:port")`` puts any dependency behind a proxy.
* ``chaos``: the fault injector (:class:`~chaosrec.faults.injector.Chaos`); every fault is
  rolled back at teardown, whatever happened to the test.
* ``load``: open-loop load (``load.run(url=None, rate=, duration=)``).
* ``slo``: SLO verdicts (``slo.assert_met(run, availability=, p99_ms=, rto_s=, ...)``).
* ``steady_state``: steady-state hypotheses checked before and after faults.
* ``drill``: the phase recorder the reports render.
* ``kube_cluster`` (session): a Kubernetes cluster (:class:`~chaosrec.drill.cluster.KubeCluster`):
  chaosrec's local control plane with kwok nodes, started only when a test asks for it,
  or the cluster of ``--chaosrec-kubeconfig`` (its API server must be an allowed host).

Heavy imports (torch, tritonclient) happen only inside the fixtures that need them.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from chaosrec.core.guard import TargetGuard
from chaosrec.core.redact import redact_text
from chaosrec.drill import Drill
from chaosrec.errors import ConfigError
from chaosrec.plugin_state import ANNOUNCED_KEY, DRILL_KEY, SETTINGS_KEY, Settings

if TYPE_CHECKING:
    from chaosrec.adapters.toxiproxy import Proxy, ToxiproxyClient, ToxiproxyServer
    from chaosrec.drill.cluster import KubeCluster
    from chaosrec.drill.target import RecsysTarget
    from chaosrec.faults.injector import Chaos
    from chaosrec.load.run import MeasuredRun, RunBase
    from chaosrec.load.schedule import Schedule
    from chaosrec.slo.objectives import Verdict
    from chaosrec.steady_state.hypotheses import SteadyStateHypothesis

__all__ = [
    "LoadFixture",
    "SLOFixture",
    "SteadyStateFixture",
    "ToxiproxyHandle",
    "chaos",
    "drill",
    "kube_cluster",
    "load",
    "recsys",
    "slo",
    "steady_state",
    "toxiproxy",
]


class ToxiproxyHandle:
    """The ``toxiproxy`` fixture's value: the server's API URL and a client."""

    def __init__(self, client: ToxiproxyClient, server: ToxiproxyServer | None = None) -> None:
        self.client = client
        self.server = server

    @property
    def api_url(self) -> str:
        return str(self.client.api_url)

    def proxy(self, name: str, upstream: str) -> Proxy:
        """Create (or return) proxy ``name`` to ``upstream`` ("host:port"); ``.listen`` is
        where to connect instead of the upstream."""
        return self.client.get_or_create_proxy(name, upstream)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.client, attr)


def _settings(config: pytest.Config) -> Settings:
    return config.stash[SETTINGS_KEY]


def _guard(config: pytest.Config) -> TargetGuard:
    return TargetGuard(_settings(config).allow_hosts)


def _say(config: pytest.Config, line: str) -> None:
    """A line on the terminal (and in the log when there is no terminal), redacted: it may
    name a target's URL, and a URL may carry credentials."""
    line = redact_text(line)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
    else:  # pragma: no cover - pytest without its terminal (e.g. -p no:terminal)
        import logging

        logging.getLogger("chaosrec").warning(line)


@pytest.fixture(scope="session")
def toxiproxy(pytestconfig: pytest.Config) -> Iterator[ToxiproxyHandle]:
    """The real Toxiproxy server: started for the session, or the one at ``toxiproxy_url``
    (allowed hosts only). Faults dead sessions left on it are swept and reported first."""
    from chaosrec.adapters.process.scratch import scratch_dir, sweep_scratch
    from chaosrec.adapters.toxiproxy import ToxiproxyClient, ToxiproxyServer
    from chaosrec.faults.ownership import close_all, ledger_for

    settings = _settings(pytestconfig)
    for folder in sweep_scratch():
        _say(pytestconfig, f"chaosrec: removed {folder}, left by a session that was killed")
    url = settings.toxiproxy_url
    if url is None and settings.target != "embedded":
        from chaosrec.drill.target import load_remote_config

        url = load_remote_config(Path(settings.target)).get("toxiproxy_url")
    server: ToxiproxyServer | None = None
    log_dir: Path | None = None
    if url:
        _guard(pytestconfig).check_url(url, "--chaosrec-toxiproxy-url")
        client = ToxiproxyClient(url)
        client.version()  # unreachable -> a clear ToxiproxyError now, before any fault
    else:
        from chaosrec.adapters.tools import ensure_toxiproxy

        log_dir = scratch_dir("toxiproxy")
        server = ToxiproxyServer(ensure_toxiproxy(), log_path=log_dir / "toxiproxy.log")
        server.start()
        client = server.client
    try:
        for swept in ledger_for(client).swept:
            _say(pytestconfig, f"chaosrec: swept {swept.describe()} on {client.api_url}")
        yield ToxiproxyHandle(client, server)
    finally:
        close_all()  # this session's ledger entries; its faults were reverted by then
        if server is not None:
            server.stop()
        else:
            client.close()
        if log_dir is not None:
            shutil.rmtree(log_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def recsys(pytestconfig: pytest.Config, toxiproxy: ToxiproxyHandle) -> Iterator[RecsysTarget]:
    """The recommender under test: the embedded stack (started once) or a remote target."""
    from chaosrec.drill.target import RecsysTarget

    settings = _settings(pytestconfig)
    if settings.target != "embedded":
        target = RecsysTarget.from_config(Path(settings.target), toxiproxy.client)
        _guard(pytestconfig).check_url(target.gateway_url, "the target's gateway_url")
        target.check_reachable()
        yield target
        return
    from chaosrec.adapters.process.scratch import scratch_dir
    from chaosrec.stack.stack import EmbeddedStack

    run_dir = scratch_dir("stack")
    stack = EmbeddedStack(settings.topology, run_dir=run_dir, toxiproxy=toxiproxy.server)
    try:
        stack.start()
        yield RecsysTarget.from_stack(stack)
    finally:
        stack.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def drill(request: pytest.FixtureRequest) -> Iterator[Drill]:
    """The drill recorder of this test (phases, faults, runs, verdicts)."""
    recorder = Drill(request.node.nodeid)
    request.node.stash[DRILL_KEY] = recorder
    yield recorder
    recorder.close()


def _recsys_if_requested(request: pytest.FixtureRequest) -> RecsysTarget | None:
    if "recsys" in request.fixturenames:
        target: RecsysTarget = request.getfixturevalue("recsys")
        return target
    return None


@pytest.fixture
def chaos(
    request: pytest.FixtureRequest, toxiproxy: ToxiproxyHandle, drill: Drill
) -> Iterator[Chaos]:
    """The fault injector. Every fault is reverted at teardown, even after a failure."""
    from chaosrec.faults.injector import Chaos

    target = _recsys_if_requested(request)
    guard = _guard(request.config)
    injector = Chaos(
        toxiproxy.client,
        topology=target.topology if target is not None else None,
        control=target.control if target is not None else None,
        traffic=target.traffic if target is not None else _proxy_bytes(toxiproxy),
        connection_reuse=(
            target.set_connection_reuse if target is not None and target.embedded else None
        ),
        guard=guard,
    )
    if not request.config.stash.get(ANNOUNCED_KEY, False):
        request.config.stash[ANNOUNCED_KEY] = True
        gateway = f", recommender gateway {target.gateway_url}" if target is not None else ""
        _say(
            request.config,
            f"chaosrec: faults act on Toxiproxy {toxiproxy.api_url}{gateway} "
            f"(allowed hosts: {guard.describe()})",
        )
    injector.listeners.append(drill.on_fault)
    try:
        yield injector
    finally:
        try:
            injector.rollback_all()
        finally:
            if target is not None and target.embedded and injector.faults:
                # the next test starts from steady state, not from our recovery
                target.wait_healthy(timeout_s=60)


def _proxy_bytes(handle: ToxiproxyHandle) -> Callable[[tuple[str, ...]], int | None]:
    def count(targets: tuple[str, ...]) -> int | None:
        counts = handle.client.traffic_bytes()
        known = [counts[t] for t in targets if t in counts]
        return sum(known) if known else None

    return count


class LoadFixture:
    """The ``load`` fixture's value: starts open-loop runs tied to this drill.

    ``run`` sends HTTP requests of any shape, on any schedule, from this process,
    ``workers`` local processes or Locust workers; ``replay`` plays recorded traffic;
    ``grpc`` calls Triton's KServe v2 ``ModelInfer`` directly. Every run records into one
    :class:`~chaosrec.slo.log.RequestLog`, so ``slo.assert_met(run, ...)`` takes any.
    """

    def __init__(self, request: pytest.FixtureRequest, drill: Drill) -> None:
        self._request = request
        self._drill = drill
        self.runs: list[RunBase] = []

    def _recsys(self) -> RecsysTarget:
        target: RecsysTarget = self._request.getfixturevalue("recsys")
        return target

    def run(
        self,
        url: str | None = None,
        *,
        rate: float | None = None,
        duration: float | None = None,
        schedule: Schedule | None = None,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        params: Callable[[int], Mapping[str, str | int]] | Mapping[str, str | int] | None = None,
        request: Callable[[int], Any] | None = None,
        timeout_s: float = 5.0,
        max_inflight: int = 1000,
        workers: int = 1,
        locust: Any = None,
    ) -> RunBase:
        """An open-loop run against ``url`` at ``rate`` requests/s for ``duration`` s (or
        on ``schedule``: ``chaosrec.load.schedule.ramp``, ``steps``, ``spike``,
        ``diurnal``, sums of them). ``url`` defaults to the recommender gateway's
        /recommend with its shoppers' query parameters; a path (``"/recommend/batch"``)
        is joined to the gateway. Requests as in requests/httpx: ``method=``,
        ``headers=``, ``json=``, ``content=``, ``params=``; or ``request=``, a builder
        ``i -> HttpRequest``. ``workers=N`` sends from N local processes; ``locust=True``
        (or a ``chaosrec.load.locust.LocustWorkers``) from Locust workers. Another host
        only if the run allows it. Use it as a context manager."""
        from chaosrec.core.validation import check_positive
        from chaosrec.load.factory import open_run

        # checked here too so messages name this call's arguments (rate=, duration=)
        if schedule is None:
            if rate is None or duration is None:
                raise ConfigError("give rate= and duration= (or schedule=)")
            processes = max(1, workers, int(getattr(locust, "n", 1)))
            check_positive("rate", rate, maximum=20_000 * processes)
            check_positive("duration", duration, maximum=3600)
        shaped = method != "GET" or json is not None or content is not None or request is not None
        if url is None or url.startswith("/"):
            target = self._recsys()
            if url is None and not shaped and params is None:
                from chaosrec.load.generator import default_params

                params = default_params(target.n_users or 1000)
            url = target.recommend_url if url is None else target.gateway_url + url
        _guard(self._request.config).check_url(url, "the load target")
        run = open_run(
            url,
            rate_rps=rate,
            duration_s=duration,
            schedule=schedule,
            method=method,
            headers=headers,
            json=json,
            content=content,
            params=params,
            request=request,
            timeout_s=timeout_s,
            max_inflight=max_inflight,
            workers=workers,
            locust=locust,
            on_start=self._drill.on_run_start,
            guard=_guard(self._request.config),
        )
        self.runs.append(run)
        return run

    def replay(
        self,
        path: str | Path,
        *,
        speed: float = 1.0,
        url: str | None = None,
        deny_headers: Iterable[str] | None = None,
        timeout_s: float = 5.0,
        max_inflight: int = 1000,
        workers: int = 1,
        locust: Any = None,
    ) -> RunBase:
        """Replay a ``chaosrec-traffic`` recording (see :mod:`chaosrec.load.traffic`) at
        ``speed`` times its pace, keeping its inter-arrival times, against ``url``
        (default: the recommender gateway). Headers in ``deny_headers`` (default:
        credentials and cookies) are removed."""
        from chaosrec.load.traffic import DENY_HEADERS, Replay

        replay = Replay.load(
            path, speed=speed, deny_headers=DENY_HEADERS if deny_headers is None else deny_headers
        )
        base = url if url is not None else self._recsys().gateway_url
        return self.run(
            base,
            schedule=replay,
            request=replay.request,
            timeout_s=timeout_s,
            max_inflight=max_inflight,
            workers=workers,
            locust=locust,
        )

    def grpc(
        self,
        targets: Any = None,
        *,
        rate: float | None = None,
        duration: float | None = None,
        schedule: Schedule | None = None,
        model: str = "recsys",
        inputs: Callable[[int], Mapping[str, Any]] | None = None,
        timeout_s: float = 5.0,
        max_inflight: int = 1000,
    ) -> RunBase:
        """KServe v2 ``ModelInfer`` over gRPC, straight to Triton: ``targets`` are
        ``"host:port"`` strings or ``chaosrec.load.grpc.GrpcTarget`` (default: every
        replica of the embedded stack, labelled with its region and replica). ``inputs``
        is ``i -> {name: numpy array}`` (default: the reference model's ``USER_ID``).
        See :mod:`chaosrec.load.grpc` for how gRPC codes are recorded."""
        from chaosrec.load.generator import LoadRun
        from chaosrec.load.grpc import GrpcTarget, KServeFront, recsys_inputs

        if targets is None or inputs is None:
            target = self._recsys()
            if targets is None:
                if target.stack is None:
                    raise ConfigError(
                        "load.grpc() needs targets= ('host:port' of your Triton) outside the "
                        "embedded stack"
                    )
                targets = [
                    GrpcTarget(f"127.0.0.1:{h.triton.ports.grpc}", h.replica.region, h.replica.id)
                    for h in target.stack.replicas.values()
                ]
            if inputs is None:
                inputs = recsys_inputs(target.n_users or 1000)
        front = KServeFront(targets, model=model, inputs=inputs, guard=_guard(self._request.config))
        run = LoadRun(
            front,
            rate_rps=rate,
            duration_s=duration,
            schedule=schedule,
            timeout_s=timeout_s,
            max_inflight=max_inflight,
            on_start=self._drill.on_run_start,
        )
        self.runs.append(run)
        return run


@pytest.fixture
def load(request: pytest.FixtureRequest, drill: Drill) -> Iterator[LoadFixture]:
    """Open-loop load generator; runs still going at teardown are stopped."""
    fixture = LoadFixture(request, drill)
    yield fixture
    for run in fixture.runs:
        run.stop()
        if run.running:  # started outside a with block: end its worker processes too
            with contextlib.suppress(Exception):
                run.join()


class SLOFixture:
    """The ``slo`` fixture's value: evaluate and assert objectives over a run."""

    def __init__(self, request: pytest.FixtureRequest, drill: Drill, settings: Settings) -> None:
        self._request = request
        self._drill = drill
        self._settings = settings

    def evaluate(self, run: MeasuredRun, **objectives: Any) -> Verdict:
        """The :class:`~chaosrec.slo.objectives.Verdict` for ``run`` (no assertion)."""
        from chaosrec.slo.objectives import Objectives, evaluate

        options = {
            k: objectives.pop(k) for k in ("min_samples", "window_s", "rto_from") if k in objectives
        }
        profile = (
            Objectives(**self._settings.slo_profile)
            if self._settings.slo_profile
            else (Objectives())
        )
        wanted = profile.merged(**objectives)
        if wanted.is_empty():
            raise ConfigError(
                "no objectives given: pass e.g. availability=0.999, p99_ms=250 or set an "
                "SLO profile (--chaosrec-slo-profile)"
            )
        if not run.done:  # still running, or never joined: wait for its final log
            run.join()
        self._drill.enter("verify")
        recall = None
        if wanted.recall_at_10 is not None:
            recall = self._request.getfixturevalue("recsys").recall_at_10()
        verdict = evaluate(
            run.log,
            wanted,
            self._drill.fault_windows(run.t0_epoch),
            recall_at_10=recall,
            run_end_s=run.duration_s,
            **options,
        )
        self._drill.verdicts.append(verdict)
        return verdict

    def assert_met(self, run: MeasuredRun, **objectives: Any) -> Verdict:
        """Raise :class:`SLOViolation` (an AssertionError) if any objective failed, or
        :class:`DrillInconclusive` if the numbers cannot be trusted; else the verdict."""
        from chaosrec.errors import DrillInconclusive, SLOViolation

        verdict = self.evaluate(run, **objectives)
        if verdict.status == "fail":
            failed = ", ".join(
                f"{r.name} measured {r.measured} vs target {r.target} over {r.window}"
                for r in verdict.failed
            )
            raise SLOViolation(f"SLO breached: {failed}\n{verdict.table()}", verdict)
        if verdict.status == "inconclusive":
            raise DrillInconclusive(f"drill inconclusive:\n{verdict.table()}", verdict)
        return verdict


@pytest.fixture
def slo(request: pytest.FixtureRequest, drill: Drill, pytestconfig: pytest.Config) -> SLOFixture:
    """SLO assertions over load runs: availability, latency percentiles, RTO, MTTD, ..."""
    return SLOFixture(request, drill, _settings(pytestconfig))


class SteadyStateFixture:
    """The ``steady_state`` fixture's value: build hypotheses from ready-made probes."""

    def __init__(self, request: pytest.FixtureRequest, drill: Drill) -> None:
        self._request = request
        self._drill = drill

    def hypothesis(
        self,
        title: str = "the recommender is healthy",
        *,
        url: str | None = None,
        availability: object = None,
        error_rate: object = None,
        p99_ms: object = None,
        degraded_share: object = None,
        recall_at_10: object = None,
        rate: float = 100.0,
        duration: float = 2.0,
    ) -> SteadyStateHypothesis:
        """A hypothesis over a short open-loop sample (``rate`` x ``duration`` requests)
        and, for ``recall_at_10``, the golden request set. Tolerances: ``at_least(x)``,
        ``at_most(x)``, ``between(a, b)``, or a number (a floor for availability and
        recall, a ceiling for error_rate, p99_ms and degraded_share). The traffic probes
        are :func:`chaosrec.steady_state.probes.traffic_hypothesis`'s: the first of each
        verification takes a fresh sample, the others measure it too."""
        import math

        from chaosrec.steady_state.probes import (
            TrafficSample,
            tolerance_for,
            traffic_hypothesis,
        )

        if url is None:
            url = self._request.getfixturevalue("recsys").recommend_url
        sample = TrafficSample.open_loop(url, rate_rps=rate, duration_s=duration, reuse_s=math.inf)
        hyp = traffic_hypothesis(
            title,
            sample,
            availability=availability,
            error_rate=error_rate,
            p99_ms=p99_ms,
            degraded_share=degraded_share,
        )
        if recall_at_10 is not None:
            target = self._request.getfixturevalue("recsys")
            hyp.add(
                "recall_at_10", target.recall_at_10, tolerance_for("recall_at_10", recall_at_10)
            )
        return hyp

    @contextlib.contextmanager
    def around(self, hypothesis: SteadyStateHypothesis) -> Iterator[SteadyStateHypothesis]:
        """Context manager: verify before the block (else no fault is injected) and after."""
        hypothesis.verify("before")
        yield hypothesis
        hypothesis.verify("after")


@pytest.fixture
def steady_state(request: pytest.FixtureRequest, drill: Drill) -> SteadyStateFixture:
    """Steady-state hypotheses (Chaos Toolkit style): probes with tolerances."""
    return SteadyStateFixture(request, drill)


@pytest.fixture(scope="session")
def kube_cluster(pytestconfig: pytest.Config) -> Iterator[KubeCluster]:
    """A Kubernetes cluster for the session: the one ``--chaosrec-kubeconfig`` names (its
    API server checked against the allowed hosts), else chaosrec's local control plane
    (etcd, kube-apiserver, controllers, scheduler, kwok; 3 nodes), stopped at the end.
    Processes a killed session left are swept first."""
    from chaosrec.drill.cluster import KubeCluster

    settings = _settings(pytestconfig)
    guard = _guard(pytestconfig)
    if settings.kubeconfig:
        cluster = KubeCluster(Path(settings.kubeconfig), guard=guard)
        try:
            yield cluster
        finally:
            cluster.close()
        return
    from chaosrec.adapters.kubernetes.cluster import ETCD_TMPFS, LocalCluster
    from chaosrec.adapters.process.ledger import sweep_once
    from chaosrec.adapters.process.scratch import scratch_dir, sweep_scratch
    from chaosrec.adapters.tools.kubernetes import ensure_kubernetes, find_binaries

    for swept in sweep_once():
        _say(pytestconfig, f"chaosrec: swept {swept.describe()}")
    for folder in [*sweep_scratch(), *sweep_scratch(ETCD_TMPFS)]:
        _say(pytestconfig, f"chaosrec: removed {folder}, left by a session that was killed")
    local = LocalCluster(find_binaries() or ensure_kubernetes(), scratch_dir("cluster"), nodes=3)
    local.start()
    try:
        cluster = KubeCluster(local.kubeconfig, local=local, guard=guard)
        _say(
            pytestconfig,
            f"chaosrec: local Kubernetes cluster {cluster.server_url} ready in "
            f"{local.startup_s:.1f} s ({local.kubelets_kind}; kubeconfig {local.kubeconfig})",
        )
        yield cluster
        cluster.close()
    finally:
        local.stop()
