"""Network faults of the injector: Toxiproxy toxics and proxies down, on any target."""

from __future__ import annotations

from chaosrec.core.validation import (
    check_choice,
    check_fraction,
    check_non_negative,
    check_positive,
)
from chaosrec.faults.base import Fault
from chaosrec.faults.injector_core import (
    _MAX_MS,
    DIRECTIONS,
    InjectorCore,
    Target,
    deprecated_alias,
    target_name,
)
from chaosrec.faults.network import ProxyDown, Toxic

__all__ = ["NetworkFaults"]


class NetworkFaults(InjectorCore):
    """Toxics (latency, bandwidth, black hole, resets, slow close, slicer, data limit)
    and proxies down, each taking ``toxicity=`` (share of connections, or of requests
    for the recommender) and ``direction=``."""

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
        name = target_name(target)
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
            deprecated_alias("jitter", "jitter_ms")
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
        return self._after_timeout("blackhole", "timeout", target, timeout_ms, toxicity, direction)

    def reset_peer(
        self,
        target: Target,
        timeout_ms: float = 0,
        *,
        toxicity: float = 1.0,
        direction: str = "downstream",
    ) -> Fault:
        """Reset connections (TCP RST) after ``timeout_ms``."""
        return self._after_timeout(
            "reset_peer", "reset_peer", target, timeout_ms, toxicity, direction
        )

    def _after_timeout(
        self,
        kind: str,
        toxic_type: str,
        target: Target,
        timeout_ms: float,
        toxicity: float,
        direction: str,
    ) -> Fault:
        """The toxics whose one attribute is a timeout (black hole, reset)."""
        timeout = check_non_negative("timeout_ms", timeout_ms, maximum=_MAX_MS)
        shown = f", timeout_ms={timeout:g}" if timeout else ""
        attributes = {"timeout": round(timeout)}
        return self._toxic(kind, target, toxic_type, attributes, toxicity, direction, shown)

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
        name = target_name(target)
        return self._start(
            ProxyDown(
                self.toxiproxy,
                proxies,
                label=f"down({name})",
                traffic=self._refusal_evidence(),
                ledger=self.ledger,
            )
        )
