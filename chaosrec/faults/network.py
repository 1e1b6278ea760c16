"""Network faults through the real Toxiproxy server: toxics on proxies, and proxies down.

Each fault is recorded in its session's :class:`~chaosrec.faults.ownership.FaultLedger`
on the server (when given one): the proxies are claimed before anything is applied
(a proxy held by another live session is refused), toxics carry the owner in their
name, a disabled proxy has a record saying who disabled it, and everything is
released after the revert. A session killed at any point leaves enough for the
next one to sweep.

Toxicity is drawn by Toxiproxy once per *connection*, not per request: through a
keep-alive pool, ``toxicity=0.3`` hits every request on 30 % of the connections
and none on the rest, which with a small pool means all-or-nothing. When the
target is the embedded recommender, chaosrec makes the share real by switching
the gateway to a fresh connection per attempt while a partial fault is active
(the injector's partial-fault hooks). For your own services, partial toxicity
means "this share of connections".
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from chaosrec.adapters.toxiproxy import ToxiproxyClient
from chaosrec.faults.base import Fault, TrafficCounter, undo_each
from chaosrec.faults.ownership import FaultLedger

__all__ = ["ProxyDown", "Toxic"]


class Toxic(Fault):
    """One Toxiproxy toxic of ``toxic_type`` on each of ``proxies``; reverted by removing them."""

    def __init__(
        self,
        client: ToxiproxyClient,
        proxies: tuple[str, ...],
        *,
        kind: str,
        toxic_type: str,
        attributes: dict[str, int],
        stream: str,
        toxicity: float,
        label: str,
        traffic: TrafficCounter | None = None,
        around: tuple[Callable[[], None], Callable[[], None]] | None = None,
        ledger: FaultLedger | None = None,
    ) -> None:
        params: dict[str, Any] = {
            **attributes,
            "toxicity": toxicity,
            "direction": stream,
            "proxies": list(proxies),
        }
        super().__init__(label, proxies, params=params, traffic=traffic)
        self.kind = kind
        self.client = client
        self.toxic_type = toxic_type
        self.attributes = attributes
        self.stream = stream
        self.toxicity = toxicity
        self.ledger = ledger
        self.toxic_name = (
            ledger.toxic_name(kind) if ledger else f"chaosrec-{kind}-{secrets.token_hex(3)}"
        )
        self._added: list[str] = []
        self._around = around
        self._claimed = False

    def _inject(self) -> None:
        if self.ledger is not None:
            self.ledger.claim(self.targets, self.label)
            self._claimed = True
        if self._around is not None:
            self._around[0]()
        for proxy in self.targets:
            self.client.add_toxic(
                proxy,
                self.toxic_type,
                self.attributes,
                stream=self.stream,
                toxicity=self.toxicity,
                name=self.toxic_name,
            )
            self._added.append(proxy)

    def _revert(self) -> None:
        try:
            undo_each(self._added, lambda proxy: self.client.remove_toxic(proxy, self.toxic_name))
        finally:
            if self._around is not None:
                self._around[1]()  # restore connection reuse even if a removal failed
        if self._claimed and self.ledger is not None:
            self._claimed = False
            self.ledger.release(self.targets)


class ProxyDown(Fault):
    """Each of ``proxies`` disabled: its connections are closed and new ones refused."""

    kind = "down"

    def __init__(
        self,
        client: ToxiproxyClient,
        proxies: tuple[str, ...],
        *,
        label: str,
        traffic: TrafficCounter | None = None,
        kind: str = "down",
        ledger: FaultLedger | None = None,
    ) -> None:
        super().__init__(label, proxies, params={"proxies": list(proxies)}, traffic=traffic)
        self.kind = kind
        self.client = client
        self.ledger = ledger
        self._disabled: list[str] = []
        self._claimed = False

    def _inject(self) -> None:
        if self.ledger is not None:
            self.ledger.claim(self.targets, self.label)
            self._claimed = True
        state = self.client.proxies()
        for proxy in self.targets:
            if proxy in state and not state[proxy].enabled:
                continue  # already down: not ours to bring back
            if self.ledger is not None:
                self.ledger.mark_down(proxy)  # before: a crash must leave the record
            self.client.set_enabled(proxy, False)
            self._disabled.append(proxy)

    def _enable(self, proxy: str) -> None:
        self.client.set_enabled(proxy, True)
        if self.ledger is not None:
            self.ledger.unmark_down(proxy)  # after: a crash must leave the record

    def _revert(self) -> None:
        try:
            undo_each(self._disabled, self._enable)
        finally:
            if self._claimed and self.ledger is not None:
                self._claimed = False
                self.ledger.release(self.targets)
