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

from typing import TYPE_CHECKING, Any

from chaosrec.faults.injector_core import (
    DIRECTIONS,
    GPU_LOSS_MODES,
    REGION_OUTAGE_MODES,
    ProxyLike,
    Target,
)
from chaosrec.faults.network_faults import NetworkFaults
from chaosrec.faults.service_faults import ServiceFaults

if TYPE_CHECKING:
    from chaosrec.faults.guardrail import Guardrail

__all__ = [
    "DIRECTIONS",
    "GPU_LOSS_MODES",
    "REGION_OUTAGE_MODES",
    "Chaos",
    "ProxyLike",
    "Target",
]


class Chaos(NetworkFaults, ServiceFaults):
    """Injects faults and remembers them so :meth:`rollback_all` can undo every one.

    Network faults come from :class:`~chaosrec.faults.network_faults.NetworkFaults`,
    service-level ones from :class:`~chaosrec.faults.service_faults.ServiceFaults`, both
    on :class:`~chaosrec.faults.injector_core.InjectorCore` (arguments, targets,
    ownership, rollback).
    """

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
