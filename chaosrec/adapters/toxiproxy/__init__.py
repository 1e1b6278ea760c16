"""Shopify Toxiproxy: a typed client for its HTTP API (v2), and a managed toxiproxy-server.

Why not toxiproxy-python: see the README's Toxiproxy section. Its ``Proxy`` objects
are accepted wherever chaosrec takes a proxy (anything with a ``.name``).
"""

from chaosrec.adapters.toxiproxy.client import ToxiproxyClient
from chaosrec.adapters.toxiproxy.schema import LEDGER_PREFIX, STREAMS, TOXIC_TYPES, Proxy, Toxic
from chaosrec.adapters.toxiproxy.server import ToxiproxyServer

__all__ = [
    "LEDGER_PREFIX",
    "STREAMS",
    "TOXIC_TYPES",
    "Proxy",
    "Toxic",
    "ToxiproxyClient",
    "ToxiproxyServer",
]
