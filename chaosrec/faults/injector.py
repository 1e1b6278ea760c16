"""The fault injector behind the ``chaos`` fixture, the Chaos Toolkit actions and the CLI.

Every method checks its arguments and resolves its target *before* touching
anything, injects at once, and returns the :class:`~chaosrec.faults.base.Fault`,
which is also a context manager::

    with chaos.latency("region-b", ms=200, jitter_ms=20):
        ...                       # reverted on leaving the block
    fault = chaos.down("payments-db")
    fault.revert()                # or left to rollback_all() at teardown

Targets: ``"all"``, a region (``"region-a"``), a replica (``"region-a.r0"``) when
a recommender topology is known; otherwise (or also) any Toxiproxy proxy, by
name or as any object with a ``name`` (chaosrec's :class:`~chaosrec.adapters.toxiproxy.Proxy`,
toxiproxy-python's ``Proxy``) whose proxy lives on the injector's Toxiproxy server.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from chaosrec.adapters.toxiproxy import ToxiproxyClient
from chaosrec.core.guard import TargetGuard
from chaosrec.core.topology import Topology
from chaosrec.core.validation import (
    check_choice,
    check_fraction,
    check_non_negative,
    check_positive,
)
from chaosrec.errors import RollbackError, UnknownTargetError, UnsupportedFaultError
from chaosrec.faults.artifact import ARTIFACT_MODES, ModelArtifactLost
from chaosrec.faults.base import Fault, FaultListener, TrafficCounter
from chaosrec.faults.control import ArtifactControl, ServiceControl
from chaosrec.faults.gpu import GpuFault, ModelUnloaded
from chaosrec.faults.model_version import ModelVersionSwap
from chaosrec.faults.network import ProxyDown, Toxic
from chaosrec.faults.ownership import FaultLedger, ledger_for
from chaosrec.faults.process import ReplicaKilled

__all__ = [
    "DIRECTIONS",
    "GPU_LOSS_MODES",
    "REGION_OUTAGE_MODES",
    "Chaos",
    "ProxyLike",
    "Target",
]

if TYPE_CHECKING:
    from chaosrec.faults.guardrail import Guardrail

DIRECTIONS = ("downstream", "upstream")
REGION_OUTAGE_MODES = ("refuse", "blackhole", "kill")
GPU_LOSS_MODES = ("error", "unload", "kill")
_MAX_MS = 3_600_000


@runtime_checkable
class ProxyLike(Protocol):
    """Anything naming a Toxiproxy proxy: chaosrec's ``Proxy``, toxiproxy-python's
    ``Proxy``, or your own object with a ``name``."""

    @property
    def name(self) -> str: ...


Target = str | ProxyLike
"""A fault's target: ``"all"``, a region, a replica, a proxy name, or a :class:`ProxyLike`."""


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"{old}= is deprecated; use {new}= (same meaning, the unit is in the name)",
        DeprecationWarning,
        stacklevel=3,
    )


class Chaos:
    """Injects faults and remembers them so :meth:`rollback_all` can undo every one.

    :param toxiproxy: client of the Toxiproxy server the targets' proxies live on.
    :param topology: the recommender's topology, when one is under test.
    :param control: control plane for service-level faults (the embedded stack).
    :param traffic: counts traffic through targets, for the "fault met traffic" check.
    :param connection_reuse: ``set(bool)`` for the gateway's keep-alive pools, used
        to make partial toxicity a per-request share.
    :param guard: which hosts faults may reach (default: loopback only); the Toxiproxy
        API is checked here, before anything is injected.
    :param ownership: record every network fault in the session's ledger on the
        Toxiproxy server (:mod:`chaosrec.faults.ownership`): proxies held by another
        live session are refused, and what a killed session left is swept.
    """

    def __init__(
        self,
        toxiproxy: ToxiproxyClient | None,
        *,
        topology: Topology | None = None,
        control: ServiceControl | None = None,
        traffic: TrafficCounter | None = None,
        connection_reuse: Callable[[bool], None] | None = None,
        guard: TargetGuard | None = None,
        ownership: bool = True,
    ) -> None:
        self.guard = guard or TargetGuard()
        if toxiproxy is not None:
            self.guard.check_url(toxiproxy.api_url, "the Toxiproxy API")
        self._toxiproxy = toxiproxy
        self._ownership = ownership
        self.topology = topology
        self.control = control
        self.traffic = traffic
        self._connection_reuse = connection_reuse
        self._partial_faults = 0
        self._lock = threading.Lock()
        self.faults: list[Fault] = []
        self.listeners: list[FaultListener] = []

    # -- targets --------------------------------------------------------------------

    @property
    def toxiproxy(self) -> ToxiproxyClient:
        if self._toxiproxy is None:
            raise UnsupportedFaultError(
                "network faults need a Toxiproxy server; configure one (toxiproxy_url)"
            )
        return self._toxiproxy

    @property
    def ledger(self) -> FaultLedger | None:
        """This session's fault ledger on the Toxiproxy server (None without ownership);
        started (and what dead sessions left swept) on first use."""
        if not self._ownership or self._toxiproxy is None:
            return None
        return ledger_for(self._toxiproxy)

    def resolve_proxies(self, target: Target) -> tuple[str, ...]:
        """Proxy names for a target; :class:`UnknownTargetError` lists what exists."""
        if not isinstance(target, str) and isinstance(target, ProxyLike):
            name = target.name
            if not isinstance(name, str) or name not in self.toxiproxy.proxies():
                raise UnknownTargetError(
                    f"target {target!r} names proxy {name!r}, which is not on the Toxiproxy "
                    f"server at {self.toxiproxy.api_url}; create it there first"
                )
            return (name,)
        if not isinstance(target, str) or not target:
            raise UnknownTargetError(
                f"target={target!r} must be 'all', a region, a replica or a proxy name"
            )
        if self.topology is not None:
            try:
                return tuple(r.id for r in self.topology.resolve(target))
            except UnknownTargetError:
                pass
        names = sorted(self.toxiproxy.proxies())
        if target in names:
            return (target,)
        if target == "all":
            # never every proxy on a server other teams may share: only those this
            # session made (a topology's "all" was resolved above)
            mine = tuple(sorted(set(names) & self.toxiproxy.created))
            if mine:
                return mine
            raise UnknownTargetError(
                "target 'all' means the proxies chaosrec knows about (a recommender "
                "topology, or proxies created in this session) and there are none; name "
                f"the proxies instead (on this server: {names or ['<none>']})"
            )
        known = (
            ["all", *self.topology.regions, *self.topology.replica_ids()] if self.topology else []
        )
        raise UnknownTargetError(
            f"unknown target {target!r}; use one of {known + names or ['<no proxies yet>']}"
        )

    def resolve_replicas(self, target: Target, fault: str) -> tuple[str, ...]:
        """Replica ids for a service-level fault (needs a topology and a control plane)."""
        if self.control is None or self.topology is None:
            raise UnsupportedFaultError(
                f"{fault} needs the embedded recommender stack (it acts inside Triton "
                "replicas); with a remote target only network faults are available"
            )
        if not isinstance(target, str) and isinstance(target, ProxyLike):
            target = target.name
        if not isinstance(target, str):
            raise UnknownTargetError(f"target={target!r} must be 'all', a region or a replica")
        return tuple(r.id for r in self.topology.resolve(target))

    # -- bookkeeping ------------------------------------------------------------------

    def _start(self, fault: Fault) -> Fault:
        for listener in self.listeners:
            fault.add_listener(listener)
        with self._lock:
            self.faults.append(fault)
        return fault.inject()

    def active(self) -> list[Fault]:
        return [f for f in self.faults if f.active]

    def rollback_all(self) -> None:
        """Revert every active fault, newest first; raise one RollbackError listing failures."""
        errors: list[BaseException] = []
        for fault in reversed(self.faults):
            try:
                fault.revert()
            except BaseException as err:  # noqa: BLE001 - revert everything, then report
                errors.append(err)
        if errors:
            message = "; ".join(str(e) for e in errors)
            raise RollbackError(f"{len(errors)} fault(s) failed to roll back: {message}") from (
                errors[0]
            )

    def _refusal_evidence(self) -> TrafficCounter | None:
        """Evidence for faults that refuse connections: Toxiproxy's byte counters stay at 0
        whether or not clients tried, so only a recommender target's per-replica attempt
        counts can tell; otherwise the fault reports "can't tell" (None)."""
        return self.traffic if self.topology is not None else None

    def _partial_hooks(
        self, toxicity: float
    ) -> tuple[Callable[[], None], Callable[[], None]] | None:
        """While a partial fault is on, the gateway opens a connection per attempt."""
        if toxicity >= 1.0 or self._connection_reuse is None:
            return None
        setter = self._connection_reuse

        def on() -> None:
            with self._lock:
                self._partial_faults += 1
                first = self._partial_faults == 1
            if first:
                setter(False)

        def off() -> None:
            with self._lock:
                self._partial_faults -= 1
                last = self._partial_faults == 0
            if last:
                setter(True)

        return on, off

    # -- network faults ---------------------------------------------------------------

    def _toxic(
        self,
        kind: str,
        target: Target,
        toxic_type: str,
        attributes: dict[str, int],
        toxicity: float,
        direction: str,
        shown: str,
    ) -> Fault:
        check_fraction("toxicity", toxicity)
        check_choice("direction", direction, DIRECTIONS)
        proxies = self.resolve_proxies(target)
        name = _name(target)
        extra = "" if toxicity >= 1.0 else f", toxicity={toxicity:g}"
        way = "" if direction == "downstream" else f", direction={direction}"
        label = f"{kind}({name}{shown}{extra}{way})"
        fault = Toxic(
            self.toxiproxy,
            proxies,
            kind=kind,
            toxic_type=toxic_type,
            attributes=attributes,
            stream=direction,
            toxicity=float(toxicity),
            label=label,
            traffic=self.traffic,
            around=self._partial_hooks(float(toxicity)),
            ledger=self.ledger,
        )
        return self._start(fault)

    def latency(
        self,
        target: Target,
        ms: float,
        jitter_ms: float = 0,
        *,
        toxicity: float = 1.0,
        direction: str = "downstream",
        jitter: float | None = None,
    ) -> Fault:
        """Add ``ms`` milliseconds (± ``jitter_ms`` milliseconds) to every response
        through the target. (``jitter=`` is the deprecated name of ``jitter_ms``.)"""
        if jitter is not None:
            _deprecated("jitter", "jitter_ms")
            jitter_ms = jitter
        ms = check_non_negative("ms", ms, maximum=_MAX_MS)
        jitter_ms = check_non_negative("jitter_ms", jitter_ms, maximum=_MAX_MS)
        return self._toxic(
            "latency",
            target,
            "latency",
            {"latency": round(ms), "jitter": round(jitter_ms)},
            toxicity,
            direction,
            f", ms={ms:g}" + (f", jitter_ms={jitter_ms:g}" if jitter_ms else ""),
        )

    def bandwidth(
        self,
        target: Target,
        kb_per_s: float,
        *,
        toxicity: float = 1.0,
        direction: str = "downstream",
    ) -> Fault:
        """Limit throughput to ``kb_per_s`` kilobytes per second."""
        rate = check_positive("kb_per_s", kb_per_s, maximum=10_000_000)
        return self._toxic(
            "bandwidth",
            target,
            "bandwidth",
            {"rate": max(1, round(rate))},
            toxicity,
            direction,
            f", kb_per_s={rate:g}",
        )

    def blackhole(
        self,
        target: Target,
        timeout_ms: float = 0,
        *,
        toxicity: float = 1.0,
        direction: str = "downstream",
    ) -> Fault:
        """Swallow data; close the connection after ``timeout_ms`` (0: hold it forever)."""
        timeout = check_non_negative("timeout_ms", timeout_ms, maximum=_MAX_MS)
        return self._toxic(
            "blackhole",
            target,
            "timeout",
            {"timeout": round(timeout)},
            toxicity,
            direction,
            f", timeout_ms={timeout:g}" if timeout else "",
        )

    def reset_peer(
        self,
        target: Target,
        timeout_ms: float = 0,
        *,
        toxicity: float = 1.0,
        direction: str = "downstream",
    ) -> Fault:
        """Reset connections (TCP RST) after ``timeout_ms``."""
        timeout = check_non_negative("timeout_ms", timeout_ms, maximum=_MAX_MS)
        return self._toxic(
            "reset_peer",
            target,
            "reset_peer",
            {"timeout": round(timeout)},
            toxicity,
            direction,
            f", timeout_ms={timeout:g}" if timeout else "",
        )

    def slow_close(
        self,
        target: Target,
        delay_ms: float,
        *,
        toxicity: float = 1.0,
        direction: str = "downstream",
    ) -> Fault:
        """Delay closing connections by ``delay_ms``."""
        delay = check_non_negative("delay_ms", delay_ms, maximum=_MAX_MS)
        return self._toxic(
            "slow_close",
            target,
            "slow_close",
            {"delay": round(delay)},
            toxicity,
            direction,
            f", delay_ms={delay:g}",
        )

    def slicer(
        self,
        target: Target,
        average_size: int = 64,
        size_variation: int = 32,
        delay_us: int = 100,
        *,
        toxicity: float = 1.0,
        direction: str = "downstream",
    ) -> Fault:
        """Slice data into ~``average_size``-byte packets with ``delay_us`` between them."""
        size = check_positive("average_size", average_size)
        variation = check_non_negative("size_variation", size_variation)
        delay = check_non_negative("delay_us", delay_us)
        return self._toxic(
            "slicer",
            target,
            "slicer",
            {
                "average_size": round(size),
                "size_variation": round(variation),
                "delay": round(delay),
            },
            toxicity,
            direction,
            f", average_size={size:g}",
        )

    def limit_data(
        self,
        target: Target,
        bytes: int,
        *,
        toxicity: float = 1.0,
        direction: str = "downstream",
    ) -> Fault:
        """Close each connection after ``bytes`` bytes."""
        limit = check_positive("bytes", bytes)
        return self._toxic(
            "limit_data",
            target,
            "limit_data",
            {"bytes": round(limit)},
            toxicity,
            direction,
            f", bytes={limit:g}",
        )

    def down(self, target: Target) -> Fault:
        """Disable the target's proxies: open connections close, new ones are refused."""
        proxies = self.resolve_proxies(target)
        name = _name(target)
        return self._start(
            ProxyDown(
                self.toxiproxy,
                proxies,
                label=f"down({name})",
                traffic=self._refusal_evidence(),
                ledger=self.ledger,
            )
        )

    # -- service-level faults -----------------------------------------------------------

    def region_outage(self, region: str, mode: str = "refuse") -> Fault:
        """A whole region fails: ``refuse`` (proxies down), ``blackhole`` (proxies swallow
        everything) or ``kill`` (its Triton processes killed and held down)."""
        check_choice("mode", mode, REGION_OUTAGE_MODES)
        if self.topology is None:
            raise UnsupportedFaultError(
                "region_outage needs a recommender topology (the recsys fixture or a "
                "remote target config with a topology)"
            )
        replicas = tuple(r.id for r in self.topology.region_replicas(region))
        label = f"region_outage({region}, mode={mode})"
        fault: Fault
        if mode == "refuse":
            fault = ProxyDown(
                self.toxiproxy,
                replicas,
                label=label,
                traffic=self._refusal_evidence(),
                kind="region_outage",
                ledger=self.ledger,
            )
        elif mode == "blackhole":
            fault = Toxic(
                self.toxiproxy,
                replicas,
                kind="region_outage",
                toxic_type="timeout",
                attributes={"timeout": 0},
                stream="downstream",
                toxicity=1.0,
                label=label,
                traffic=self.traffic,
                ledger=self.ledger,
            )
        else:
            self.resolve_replicas(region, "region_outage(mode='kill')")
            assert self.control is not None
            fault = ReplicaKilled(
                self.control,
                replicas,
                kind="region_outage",
                hold=True,
                label=label,
                traffic=self.traffic,
            )
        fault.params["mode"] = mode
        return self._start(fault)

    def gpu_loss(self, replica: Target, mode: str = "error") -> Fault:
        """The replica's GPU is lost: ``error`` (every inference fails with the CUDA
        device-lost error, emulated without CUDA), ``unload`` (model unloaded through
        Triton's model control) or ``kill`` (Triton process killed and held down)."""
        check_choice("mode", mode, GPU_LOSS_MODES)
        replicas = self.resolve_replicas(replica, "gpu_loss")
        label = f"gpu_loss({_name(replica)}, mode={mode})"
        assert self.control is not None
        fault: Fault
        if mode == "error":
            fault = GpuFault(
                self.control,
                replicas,
                kind="gpu_loss",
                fault={"device_lost": True},
                label=label,
                traffic=self.traffic,
            )
        elif mode == "unload":
            fault = ModelUnloaded(self.control, replicas, label=label, traffic=self.traffic)
        else:
            fault = ReplicaKilled(
                self.control,
                replicas,
                kind="gpu_loss",
                hold=True,
                label=label,
                traffic=self.traffic,
            )
        fault.params["mode"] = mode
        return self._start(fault)

    def gpu_degrade(self, replica: Target, slowdown: float = 4.0) -> Fault:
        """Each batch on the replica takes ``slowdown`` times its compute time (> 1)."""
        factor = check_positive("slowdown", slowdown, maximum=1000)
        if factor <= 1:
            from chaosrec.errors import ConfigError

            raise ConfigError(f"slowdown={slowdown!r} must be > 1 (1 means no slowdown)")
        replicas = self.resolve_replicas(replica, "gpu_degrade")
        assert self.control is not None
        return self._start(
            GpuFault(
                self.control,
                replicas,
                kind="gpu_degrade",
                fault={"slowdown": factor, "slowdown_floor_ms": 2.0 * factor},
                label=f"gpu_degrade({_name(replica)}, slowdown={factor:g})",
                traffic=self.traffic,
            )
        )

    def gpu_oom(
        self, replica: Target, fraction: float = 0.3, *, rate: float | None = None
    ) -> Fault:
        """That ``fraction`` (0-1) of the replica's inference batches fails with CUDA
        out-of-memory. (``rate=`` is the deprecated name of ``fraction``.)"""
        if rate is not None:
            _deprecated("rate", "fraction")
            fraction = rate
        share = check_fraction("fraction", fraction)
        replicas = self.resolve_replicas(replica, "gpu_oom")
        assert self.control is not None
        return self._start(
            GpuFault(
                self.control,
                replicas,
                kind="gpu_oom",
                fault={"oom_rate": share},
                label=f"gpu_oom({_name(replica)}, fraction={share:g})",
                traffic=self.traffic,
            )
        )

    def crash(self, replica: Target) -> Fault:
        """SIGKILL the replica's Triton; the supervisor restarts it (recovery is recorded)."""
        replicas = self.resolve_replicas(replica, "crash")
        assert self.control is not None
        return self._start(
            ReplicaKilled(
                self.control,
                replicas,
                kind="crash",
                hold=False,
                label=f"crash({_name(replica)})",
                traffic=self.traffic,
            )
        )

    def bad_model(self, target: Target = "all") -> Fault:
        """A worse model version goes live on the target's replicas (quality drops)."""
        replicas = self.resolve_replicas(target, "bad_model")
        assert self.control is not None
        return self._start(
            ModelVersionSwap(
                self.control,
                replicas,
                label=f"bad_model({_name(target)})",
                traffic=self.traffic,
            )
        )

    def artifact_loss(self, replica: Target, mode: str = "delete") -> Fault:
        """The replica's model weights (every version) are deleted or corrupted on disk and
        it crashes; reverted by a checksum-verified restore from the stack's backup."""
        mode = check_choice("mode", mode, ARTIFACT_MODES)
        replicas = self.resolve_replicas(replica, "artifact_loss")
        if not isinstance(self.control, ArtifactControl):
            raise UnsupportedFaultError(
                "artifact_loss needs the embedded stack in this process (it rewrites the "
                "replicas' model folders and restores them from the stack's backup)"
            )
        return self._start(
            ModelArtifactLost(
                self.control,
                replicas,
                mode=mode,
                label=f"artifact_loss({_name(replica)}, mode={mode})",
                traffic=self.traffic,
            )
        )

    # -- guardrails --------------------------------------------------------------------

    def guardrail(
        self,
        source: object,
        *,
        poll_s: float = 0.1,
        window_s: float = 0.5,
        **conditions: float,
    ) -> Guardrail:
        """Stop conditions (``error_rate_above=``, ``availability_below=``,
        ``degraded_share_above=``, ``p99_ms_above=``, each held ``for_s=`` seconds) over
        ``source`` (a running load run or the gateway URL): when one holds, every fault of
        this injector is rolled back at once and the block raises
        :class:`~chaosrec.errors.GuardrailTripped`. See :mod:`chaosrec.faults.guardrail`."""
        from chaosrec.faults.guardrail import guardrail_for

        return guardrail_for(self, source, conditions, poll_s=poll_s, window_s=window_s)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"label": f.label, "kind": f.kind, "targets": list(f.targets), "active": f.active}
            for f in self.faults
        ]


def _name(target: Target) -> str:
    return str(target) if isinstance(target, str) else str(target.name)
