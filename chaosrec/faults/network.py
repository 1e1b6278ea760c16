"""Network faults through the real Toxiproxy server: toxics on proxies, and proxies down.

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
        self.toxic_name = f"chaosrec-{kind}-{secrets.token_hex(3)}"
        self._added: list[str] = []
        self._around = around

    def _inject(self) -> None:
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
    ) -> None:
        super().__init__(label, proxies, params={"proxies": list(proxies)}, traffic=traffic)
        self.kind = kind
        self.client = client
        self._disabled: list[str] = []

    def _inject(self) -> None:
        for proxy in self.targets:
            self.client.set_enabled(proxy, False)
            self._disabled.append(proxy)

    def _revert(self) -> None:
        undo_each(self._disabled, lambda proxy: self.client.set_enabled(proxy, True))
