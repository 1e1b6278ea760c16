"""The target guard: chaosrec acts on loopback only, unless a run names other hosts.

A drill aimed at the wrong system is the worst thing chaosrec could do, so every
URL it is about to act on (a gateway, a Toxiproxy API, a Kubernetes API server, a
load target) passes :meth:`TargetGuard.check_url` first. Loopback (``127.0.0.0/8``,
``::1``, ``localhost``) needs nothing; any other host must match one of the run's
``allow_hosts`` patterns (shell-style, ``fnmatch``: ``staging-*.internal``,
``10.0.3.*``, or ``host:port``). Refusals are :class:`TargetNotAllowedError`, raised
before any fault is injected, with the setting that would allow it.

Where the allowlist comes from (first found): ``--chaosrec-allow-hosts`` / ini
``chaosrec_allow_hosts`` (pytest), ``chaosrec_allow_hosts`` in a Chaos Toolkit
experiment's configuration, the ``CHAOSREC_ALLOW_HOSTS`` environment variable. Each
is a comma- or space-separated list. Host names are compared as written: chaosrec
does not resolve DNS here, so ``localhost.example.com`` is not loopback.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from chaosrec.errors import TargetNotAllowedError

__all__ = ["ALLOW_HOSTS_ENV", "TargetGuard", "is_loopback", "parse_allow_hosts"]

ALLOW_HOSTS_ENV = "CHAOSREC_ALLOW_HOSTS"
_HOW = (
    "allow it explicitly with --chaosrec-allow-hosts (ini chaosrec_allow_hosts), the "
    f"{ALLOW_HOSTS_ENV} environment variable or, for Chaos Toolkit, the "
    "chaosrec_allow_hosts configuration key"
)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or ``localhost`` (names are not resolved)."""
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_allow_hosts(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """Patterns from a comma/space separated string (or an iterable of them)."""
    if text is None:
        return ()
    items = [text] if isinstance(text, str) else list(text)
    out: list[str] = []
    for item in items:
        out += [p for p in str(item).replace(",", " ").split() if p]
    return tuple(out)


@dataclass(frozen=True)
class TargetGuard:
    """Loopback, plus the hosts matching ``allow_hosts`` (see module docs)."""

    allow_hosts: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, *sources: str | Iterable[str] | None) -> TargetGuard:
        """The first non-empty of ``sources``, else ``$CHAOSREC_ALLOW_HOSTS``."""
        for source in (*sources, os.environ.get(ALLOW_HOSTS_ENV)):
            patterns = parse_allow_hosts(source)
            if patterns:
                return cls(patterns)
        return cls()

    def allows(self, host: str, port: int | None = None) -> bool:
        if is_loopback(host):
            return True
        host = host.strip("[]").lower()
        candidates = [host] if port is None else [host, f"{host}:{port}"]
        return any(
            fnmatch.fnmatchcase(candidate, pattern.lower())
            for pattern in self.allow_hosts
            for candidate in candidates
        )

    def check_url(self, url: str, what: str) -> str:
        """Return ``url`` if chaosrec may act on it, else raise.

        Raises:
            TargetNotAllowedError: the host is not loopback and not allowed; or the URL
                has no host.
        """
        parts = urlsplit(url)
        host = parts.hostname
        if not host:
            raise TargetNotAllowedError(f"{what} {url!r} has no host; give a full http:// URL")
        try:
            port = parts.port
        except ValueError:
            port = None
        if not self.allows(host, port):
            allowed = ", ".join(self.allow_hosts) or "none"
            raise TargetNotAllowedError(
                f"{what} {_without_credentials(url)} is on {host}, which is not loopback and "
                f"not in the allowed hosts ({allowed}); chaosrec acts only on loopback unless "
                f"you {_HOW}"
            )
        return url

    def describe(self) -> str:
        extra = ", ".join(self.allow_hosts)
        return "loopback only" if not extra else f"loopback and {extra}"


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
