"""A typed client for Shopify Toxiproxy's HTTP API (v2).

Toxiproxy is a TCP proxy whose behaviour is changed at run time: each *proxy*
listens on an address and forwards to an *upstream*; *toxics* attached to a proxy
degrade the bytes flowing through it (latency, bandwidth cap, resets, ...).

Behaviour of the real server worth knowing (measured against v2.12.0):

* ``toxicity`` is drawn once per connection, not per byte or request: with
  ``toxicity=0.5`` about half the connections get the toxic on every request
  and the others never do.
* A toxic added or removed applies to connections that are already open.
* Disabling a proxy closes its open connections (the peer reads EOF) and
  refuses new ones; a pooled keep-alive HTTP connection therefore fails on its
  next request with "connection refused". Re-enabling listens on the same port.
* Removing a ``timeout`` toxic closes the connections it was holding; the bytes
  it swallowed are lost.
* The server accepts, and silently ignores, misspelt attribute names and takes
  negative values or ``toxicity > 1``; this client rejects all of those first.

Example::

    client = ToxiproxyClient("http://127.0.0.1:8474")
    proxy = client.create_proxy("redis", upstream="127.0.0.1:6379")
    client.add_toxic("redis", "latency", {"latency": 200})
    ...  # connect to 127.0.0.1:{proxy.listen_port}
    client.reset()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from chaosrec.adapters.toxiproxy.schema import (
    LEDGER_PREFIX,
    STREAMS,
    TOXIC_TYPES,
    Proxy,
    Toxic,
    _check_address,
    _check_api_url,
    _check_attributes,
    _check_name,
    _check_positive,
    _check_stream,
    _check_toxicity,
    _check_type,
)
from chaosrec.core.redact import redact_text, redact_url
from chaosrec.errors import ConfigError, ToxiproxyError, UnknownTargetError

__all__ = ["LEDGER_PREFIX", "STREAMS", "TOXIC_TYPES", "Proxy", "Toxic", "ToxiproxyClient"]

# ------------------------------------------------------------------------- client


class ToxiproxyClient:
    """Synchronous client for one Toxiproxy server's HTTP API.

    Every argument is checked before a request is sent; a bad one raises
    :class:`~chaosrec.errors.ConfigError` naming the argument, its value and what
    is allowed. The client never reverts anything by itself: call :meth:`reset`
    (or remove what you added) in a ``finally``.

    Args:
        api_url: base URL of the API, e.g. ``"http://127.0.0.1:8474"``.
        timeout_s: seconds to wait for each API call.

    Raises (from every call):
        ToxiproxyError: the API is unreachable, or answered with an error.
        UnknownTargetError: the named proxy or toxic does not exist; the
            message lists the ones that do.

    Example::

        client = ToxiproxyClient("http://127.0.0.1:8474")
        client.add_toxic("db", "latency", {"latency": 100, "jitter": 10}, toxicity=0.5)
    """

    def __init__(self, api_url: str, timeout_s: float = 5.0) -> None:
        self._api_url = _check_api_url(api_url)
        self._shown = redact_url(self._api_url)  # for messages: never the credentials
        self._timeout_s = _check_positive("timeout_s", timeout_s)
        # trust_env=False: a control-plane call to a local server must not be routed
        # through an HTTP(S)_PROXY meant for the internet.
        self._http = httpx.Client(base_url=self._api_url, timeout=timeout_s, trust_env=False)
        #: proxies created through this client ("all" means these when no topology is known)
        self.created: set[str] = set()

    @property
    def api_url(self) -> str:
        """Base URL of the API, without a trailing slash."""
        return self._api_url

    def close(self) -> None:
        """Close the pooled HTTP connections; the server is not touched."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ToxiproxyClient({self._shown!r})"

    # -- transport

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        proxy: str | None = None,
        toxic: str | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON body (``None`` if empty)."""
        url = f"{self._shown}{path}"
        try:
            response = self._http.request(method, path, json=body if body is not None else None)
        except (httpx.ConnectError, httpx.ConnectTimeout) as err:
            port = urlsplit(self._api_url).port or 8474
            raise ToxiproxyError(
                f"Toxiproxy API at {self._shown} is unreachable: {redact_text(str(err))}; "
                f"start it with `toxiproxy-server -host 127.0.0.1 -port {port}` (or chaosrec's "
                "ToxiproxyServer) or check the URL"
            ) from err
        except httpx.TimeoutException as err:
            raise ToxiproxyError(
                f"Toxiproxy API did not answer {method} {url} within {self._timeout_s:g} s; "
                "check the server's load and log, or raise timeout_s"
            ) from err
        except httpx.HTTPError as err:
            raise ToxiproxyError(
                f"Toxiproxy API request {method} {url} failed: {redact_text(str(err))}; check the "
                "URL and the server"
            ) from err

        if response.status_code == 404 and proxy is not None:
            self._raise_not_found(response, proxy, toxic)
        if response.is_error:
            message = _server_message(response)
            hint = {
                409: "; delete it first or pick another name",
            }.get(response.status_code, "")
            raise ToxiproxyError(
                f"Toxiproxy refused {method} {url} with HTTP {response.status_code}: "
                f"{message}{hint}"
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def _raise_not_found(self, response: httpx.Response, proxy: str, toxic: str | None) -> None:
        message = _server_message(response)
        if toxic is not None and "toxic" in message:
            try:
                names = sorted(t.name for t in self.toxics(proxy))
            except ToxiproxyError:
                names = []
            raise UnknownTargetError(
                f"proxy {proxy!r} has no toxic named {toxic!r}; its toxics: "
                f"{', '.join(names) or '(none)'}"
            )
        try:
            existing = sorted(self.proxies())
        except ToxiproxyError:
            existing = []
        raise UnknownTargetError(
            f"Toxiproxy at {self._shown} has no proxy named {proxy!r}; existing proxies: "
            f"{', '.join(existing) or '(none)'}; create it with create_proxy()"
        )

    # -- server

    def version(self) -> str:
        """Return the server's version string (``"git"`` for binaries built by go install)."""
        answer = self._request("GET", "/version")
        if isinstance(answer, Mapping):
            return str(answer.get("version", ""))
        return str(answer).strip()

    def reset(self) -> None:
        """Re-enable every proxy and remove every toxic (proxies themselves stay).

        This is Toxiproxy's global ``/reset``: it removes *every* session's faults on
        the server, not only yours; chaosrec's ledger proxies are disabled again.
        """
        self._request("POST", "/reset")
        for name in self.proxies(include_ledger=True):
            if name.startswith(LEDGER_PREFIX):
                self.set_enabled(name, False)

    def is_clean(self) -> bool:
        """Return whether no proxy has a toxic and every proxy is enabled (chaosrec's
        ledger proxies aside)."""
        return all(p.enabled and not p.toxics for p in self.proxies().values())

    # -- proxies

    def proxies(self, *, include_ledger: bool = False) -> dict[str, Proxy]:
        """Return every proxy, by name (chaosrec's ledger proxies only when asked)."""
        answer = self._request("GET", "/proxies") or {}
        return {
            name: Proxy.from_api(data)
            for name, data in answer.items()
            if include_ledger or not name.startswith(LEDGER_PREFIX)
        }

    def proxy(self, name: str) -> Proxy:
        """Return the proxy called ``name``."""
        _check_name("name", name)
        return Proxy.from_api(self._request("GET", f"/proxies/{name}", proxy=name))

    def create_proxy(
        self, name: str, upstream: str, listen: str = "127.0.0.1:0", *, enabled: bool = True
    ) -> Proxy:
        """Create a proxy forwarding ``listen`` to ``upstream``; return it as created.

        With port 0 in ``listen`` the server picks a free port: read it from
        :attr:`Proxy.listen_port` of the result.

        Raises:
            ToxiproxyError: a proxy with that name exists, or ``listen`` cannot be bound.
        """
        body = {
            "name": _check_name("name", name),
            "upstream": _check_address("upstream", upstream, allow_port_zero=False),
            "listen": _check_address("listen", listen, allow_port_zero=True),
            "enabled": bool(enabled),
        }
        created = Proxy.from_api(self._request("POST", "/proxies", body=body))
        self.created.add(created.name)
        return created

    def get_or_create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> Proxy:
        """Return the proxy ``name``, creating it if it does not exist.

        Raises:
            ConfigError: it exists but forwards to another upstream.
        """
        _check_name("name", name)
        _check_address("upstream", upstream, allow_port_zero=False)
        _check_address("listen", listen, allow_port_zero=True)
        try:
            existing = self.proxy(name)
        except UnknownTargetError:
            try:
                return self.create_proxy(name, upstream, listen)
            except ToxiproxyError:
                # Lost a race with another creator: fall through to what it made.
                existing = self.proxy(name)
        if existing.upstream != upstream:
            raise ConfigError(
                f"proxy {name!r} already exists with upstream={existing.upstream!r}, not "
                f"{upstream!r}; delete_proxy({name!r}) first or pick another name"
            )
        return existing

    def delete_proxy(self, name: str) -> None:
        """Delete the proxy ``name``, closing its connections."""
        _check_name("name", name)
        self._request("DELETE", f"/proxies/{name}", proxy=name)
        self.created.discard(name)

    def set_enabled(self, name: str, enabled: bool) -> Proxy:
        """Enable or disable the proxy ``name``; return its new state.

        Disabling closes the proxy's open connections and refuses new ones
        (connection refused); enabling listens again on the same port.
        """
        _check_name("name", name)
        if not isinstance(enabled, bool):
            raise ConfigError(f"enabled={enabled!r} is not a bool; pass True or False")
        answer = self._request("POST", f"/proxies/{name}", body={"enabled": enabled}, proxy=name)
        return Proxy.from_api(answer)

    # -- toxics

    def add_toxic(
        self,
        proxy: str,
        type: str,
        attributes: Mapping[str, float] | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> Toxic:
        """Attach a toxic to ``proxy``; return it as the server stored it.

        Args:
            proxy: name of the proxy.
            type: one of :data:`TOXIC_TYPES`.
            attributes: whole, non-negative numbers in the units of
                :data:`TOXIC_TYPES`; omitted ones are 0 on the server.
            stream: ``"downstream"`` (upstream→client) or ``"upstream"``.
            toxicity: probability in [0, 1] that a connection gets the toxic,
                drawn once per connection.
            name: the toxic's name; the server defaults to ``"<type>_<stream>"``.

        Raises:
            ConfigError: an argument is invalid (nothing was sent).
            ToxiproxyError: a toxic with that name already exists on the proxy.
        """
        _check_name("proxy", proxy)
        body: dict[str, Any] = {
            "type": _check_type(type),
            "stream": _check_stream(stream),
            "toxicity": _check_toxicity(toxicity),
            "attributes": _check_attributes(type, attributes),
        }
        if name is not None:
            body["name"] = _check_name("name", name)
        answer = self._request("POST", f"/proxies/{proxy}/toxics", body=body, proxy=proxy)
        return Toxic.from_api(answer)

    def update_toxic(
        self,
        proxy: str,
        toxic_name: str,
        attributes: Mapping[str, float] | None = None,
        toxicity: float | None = None,
    ) -> Toxic:
        """Change some attributes and/or the toxicity of an existing toxic; return it.

        Attributes not given keep their values (the server merges them).
        """
        _check_name("proxy", proxy)
        _check_name("toxic_name", toxic_name)
        if attributes is None and toxicity is None:
            raise ConfigError("update_toxic() got neither attributes nor toxicity; pass one")
        body: dict[str, Any] = {}
        if toxicity is not None:
            body["toxicity"] = _check_toxicity(toxicity)
        if attributes is not None:
            current = self.toxic(proxy, toxic_name)
            body["attributes"] = _check_attributes(current.type, attributes)
        path = f"/proxies/{proxy}/toxics/{toxic_name}"
        answer = self._request("POST", path, body=body, proxy=proxy, toxic=toxic_name)
        return Toxic.from_api(answer)

    def toxic(self, proxy: str, toxic_name: str) -> Toxic:
        """Return the toxic ``toxic_name`` of ``proxy``."""
        _check_name("proxy", proxy)
        _check_name("toxic_name", toxic_name)
        path = f"/proxies/{proxy}/toxics/{toxic_name}"
        return Toxic.from_api(self._request("GET", path, proxy=proxy, toxic=toxic_name))

    def toxics(self, proxy: str) -> list[Toxic]:
        """Return the toxics of ``proxy``."""
        _check_name("proxy", proxy)
        answer = self._request("GET", f"/proxies/{proxy}/toxics", proxy=proxy) or []
        return [Toxic.from_api(t) for t in answer]

    def traffic_bytes(self) -> dict[str, int]:
        """Bytes each proxy has received from its clients so far (``{}`` if the server
        was started without ``-proxy-metrics``). Deltas tell whether traffic went
        through a proxy while a fault was on it."""
        try:
            response = self._http.get("/metrics")
        except httpx.HTTPError:
            return {}
        if response.status_code != 200:
            return {}
        counts: dict[str, int] = {}
        for line in response.text.splitlines():
            if not line.startswith("toxiproxy_proxy_received_bytes_total{"):
                continue
            labels, _, value = line.rpartition(" ")
            if 'direction="upstream"' not in labels:
                continue
            name = labels.split('proxy="', 1)[1].split('"', 1)[0]
            counts[name] = counts.get(name, 0) + int(float(value))
        # a proxy that never carried a byte has no counter yet: it is at 0
        for name in self.proxies():
            counts.setdefault(name, 0)
        return counts

    def remove_toxic(self, proxy: str, toxic_name: str) -> None:
        """Remove the toxic ``toxic_name`` from ``proxy``; it stops affecting open connections."""
        _check_name("proxy", proxy)
        _check_name("toxic_name", toxic_name)
        path = f"/proxies/{proxy}/toxics/{toxic_name}"
        self._request("DELETE", path, proxy=proxy, toxic=toxic_name)


def _server_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(data, Mapping) and "error" in data:
        return str(data["error"])
    return str(data)[:200]
