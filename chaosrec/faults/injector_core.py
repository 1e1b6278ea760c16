"""What every fault family of the injector shares: the targets, the ledger, the bookkeeping.

:class:`InjectorCore` resolves targets (regions, replicas, proxies, ``"all"``), keeps
every fault it started so :meth:`InjectorCore.rollback_all` can undo each, and hands
network faults the session's :class:`~chaosrec.faults.ownership.FaultLedger`. The
fault families (:mod:`.network_faults`, :mod:`.service_faults`) build on it and
:class:`~chaosrec.faults.injector.Chaos` combines them.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from chaosrec.adapters.toxiproxy import ToxiproxyClient
from chaosrec.core.guard import TargetGuard
from chaosrec.core.topology import Topology
from chaosrec.errors import RollbackError, UnknownTargetError, UnsupportedFaultError
from chaosrec.faults.base import Fault, FaultListener, TrafficCounter
from chaosrec.faults.control import ServiceControl
from chaosrec.faults.ownership import FaultLedger, ledger_for

__all__ = [
    "DIRECTIONS",
    "GPU_LOSS_MODES",
    "REGION_OUTAGE_MODES",
    "InjectorCore",
    "ProxyLike",
    "Target",
    "deprecated_alias",
    "target_name",
]

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


def deprecated_alias(old: str, new: str) -> None:
    """Warn that argument ``old`` is now ``new`` (the unit moved into the name)."""
    warnings.warn(
        f"{old}= is deprecated; use {new}= (same meaning, the unit is in the name)",
        DeprecationWarning,
        stacklevel=4,
    )


class InjectorCore:
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


def target_name(target: Target) -> str:
    """How labels name a target."""
    return str(target) if isinstance(target, str) else str(target.name)
