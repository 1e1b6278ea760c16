"""What Toxiproxy's API talks about, and every check chaosrec makes before it calls it:
toxic types and their attribute units, proxies and toxics as the server reports them,
and the argument checks (the server itself silently accepts misspelt attributes,
negative values and ``toxicity > 1``)."""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from chaosrec.errors import ConfigError

__all__ = ["LEDGER_PREFIX", "STREAMS", "TOXIC_TYPES", "Proxy", "Toxic"]

#: Toxic types and, for each, its attributes and their units. Slicer's delay is in µs.
TOXIC_TYPES: Final[Mapping[str, Mapping[str, str]]] = types.MappingProxyType(
    {
        "bandwidth": {"rate": "KB/s"},
        "latency": {"latency": "ms", "jitter": "ms"},
        "limit_data": {"bytes": "bytes"},
        "reset_peer": {"timeout": "ms"},
        "slicer": {"average_size": "bytes", "size_variation": "bytes", "delay": "µs"},
        "slow_close": {"delay": "ms"},
        "timeout": {"timeout": "ms"},
    }
)
#: Directions a toxic can act on: client→upstream or upstream→client.
STREAMS: Final = ("upstream", "downstream")

_INT64_MAX: Final = 2**63 - 1  # Toxiproxy decodes attributes into Go int64

LEDGER_PREFIX: Final = "chaosrec~"
"""Proxies whose name starts with this are chaosrec's fault-ownership ledger on the
server (see :mod:`chaosrec.faults.ownership`): disabled, bound to nothing, and hidden
from :meth:`ToxiproxyClient.proxies` unless asked for."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Toxic:
    """One toxic as the server reports it.

    ``attributes`` holds integers in the units of :data:`TOXIC_TYPES`;
    ``toxicity`` is the probability (0..1) that a new connection gets the toxic.
    """

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: Mapping[str, int] = field(hash=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Toxic:
        """Build from one element of ``GET /proxies/{name}/toxics``."""
        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            stream=str(data.get("stream", "downstream")),
            toxicity=float(data.get("toxicity", 1.0)),
            attributes=types.MappingProxyType(dict(data.get("attributes") or {})),
        )


@dataclass(frozen=True)
class Proxy:
    """One proxy as the server reports it; ``listen`` is the bound ``host:port``."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = ()

    @property
    def listen_host(self) -> str:
        """Host part of ``listen``, without IPv6 brackets."""
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        """TCP port the proxy listens on (the real one, also when created with port 0)."""
        return int(self.listen.rpartition(":")[2])

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Proxy:
        """Build from one value of ``GET /proxies``."""
        return cls(
            name=str(data["name"]),
            listen=str(data["listen"]),
            upstream=str(data["upstream"]),
            enabled=bool(data.get("enabled", True)),
            toxics=tuple(Toxic.from_api(t) for t in data.get("toxics") or ()),
        )


# --------------------------------------------------------------------- validation


def _check_name(argument: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or "/" in value:
        raise ConfigError(
            f"{argument}={value!r} is not a valid name; pass a non-empty string without '/'"
        )
    return value


def _check_address(argument: str, value: object, *, allow_port_zero: bool) -> str:
    lowest = 0 if allow_port_zero else 1
    host, colon, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
    if (
        not isinstance(value, str)
        or not colon
        or not host
        or not port.isdigit()
        or not lowest <= int(port) <= 65535
    ):
        raise ConfigError(
            f"{argument}={value!r} is not a host:port address with port in "
            f"[{lowest}, 65535]; pass e.g. '127.0.0.1:{8080 if lowest else 0}'"
        )
    return value


def _check_toxicity(toxicity: object) -> float:
    if isinstance(toxicity, bool) or not isinstance(toxicity, int | float):
        raise ConfigError(f"toxicity={toxicity!r} is not a number; pass a probability in [0, 1]")
    if math.isnan(toxicity) or not 0.0 <= toxicity <= 1.0:
        raise ConfigError(f"toxicity={toxicity!r} is outside [0, 1]")
    return float(toxicity)


def _check_stream(stream: object) -> str:
    if stream not in STREAMS:
        raise ConfigError(f"stream={stream!r} is not one of {', '.join(map(repr, STREAMS))}")
    assert isinstance(stream, str)
    return stream


def _check_type(toxic_type: object) -> str:
    if toxic_type not in TOXIC_TYPES:
        raise ConfigError(
            f"type={toxic_type!r} is not a Toxiproxy toxic type; "
            f"use one of {', '.join(TOXIC_TYPES)}"
        )
    assert isinstance(toxic_type, str)
    return toxic_type


def _check_attributes(toxic_type: str, attributes: object) -> dict[str, int]:
    if attributes is None:
        return {}
    if not isinstance(attributes, Mapping):
        raise ConfigError(
            f"attributes={attributes!r} is not a mapping; pass e.g. {{'latency': 100}}"
        )
    units = TOXIC_TYPES[toxic_type]
    checked: dict[str, int] = {}
    for key, value in attributes.items():
        if key not in units:
            raise ConfigError(
                f"attribute {key!r} is not known to a {toxic_type} toxic (the server would "
                f"silently ignore it); use {', '.join(units)}"
            )
        unit = units[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}={value!r} is not a number; pass a whole number of {unit}")
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(
                f"{key}={value!r} is not a whole number; pass a whole number of {unit}"
            )
        if value < 0:
            raise ConfigError(f"{key}={value!r} is negative; pass a whole number of {unit} >= 0")
        if value > _INT64_MAX:
            raise ConfigError(f"{key}={value!r} is too large; pass at most {_INT64_MAX} {unit}")
        checked[key] = int(value)
    return checked


def _check_api_url(api_url: object) -> str:
    parts = urlsplit(api_url) if isinstance(api_url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"api_url={api_url!r} is not an http(s) URL; pass e.g. 'http://127.0.0.1:8474'"
        )
    assert isinstance(api_url, str)
    return api_url.rstrip("/")


def _check_positive(argument: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"{argument}={value!r} is not a positive number of seconds")
    return float(value)
