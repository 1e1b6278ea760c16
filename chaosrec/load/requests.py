"""What an HTTP load run sends: one request shape, or a builder ``i -> request``.

The names are the ones users know from requests and httpx::

    LoadRun(url, rate_rps=100, duration_s=10, method="POST",
            headers={"Authorization": "Bearer x"}, json={"user_ids": [1, 2], "k": 10})
    LoadRun(url, rate_rps=100, duration_s=10, content=b"raw bytes", headers={...})
    LoadRun(url, rate_rps=100, duration_s=10, params=lambda i: {"user_id": i % 5000})
    LoadRun(url, rate_rps=100, duration_s=10,
            request=lambda i: HttpRequest.build("/recommend/batch", method="POST",
                                                json={"user_ids": [i, i + 1], "k": 5}))

A builder may return a path (``"/recommend/batch"``): it is joined to the run's URL.
Everything is checked when the run is created, with the builder called for the first
requests, so a typo fails with one line before anything is sent.
"""

from __future__ import annotations

import json as jsonlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import urlencode, urljoin, urlsplit

from chaosrec.core.guard import TargetGuard
from chaosrec.errors import ConfigError, TargetNotAllowedError

__all__ = [
    "METHODS",
    "HttpRequest",
    "ParamsFn",
    "RequestBuilder",
    "RequestSource",
    "request_source",
]

#: methods a load run may send
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: headers chaosrec writes itself (from the URL and the body); a request may not set them
_OWN_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")

#: ``i -> query parameters`` of the i-th request
ParamsFn: TypeAlias = Callable[[int], Mapping[str, str | int]]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request: ``method``, absolute ``url`` (or a path, joined to the run's
    URL), ``headers`` as (name, value) pairs, ``body`` bytes or None."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    @classmethod
    def build(
        cls,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> HttpRequest:
        """A checked request. ``json=`` is serialised (and sets ``Content-Type:
        application/json`` unless given); ``content=`` is sent as it is (a str as UTF-8);
        ``params=`` is added to the URL's query string.

        Raises:
            ConfigError: an unknown method, both ``json`` and ``content``, a header name
                that is not an HTTP token, a value with a line break, a header chaosrec
                sets itself (Content-Length, Transfer-Encoding, Connection), or a body that
                cannot be serialised.
        """
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise ConfigError(f"method={method!r} must be one of {', '.join(sorted(METHODS))}")
        method = method.upper()
        if not isinstance(url, str) or not url:
            raise ConfigError(f"url={url!r} must be a URL or a path starting with /")
        pairs = _header_pairs(headers)
        body: bytes | None = None
        if json is not None and content is not None:
            raise ConfigError("give json= or content=, not both")
        if json is not None:
            try:
                body = jsonlib.dumps(json, separators=(",", ":"), allow_nan=False).encode()
            except (TypeError, ValueError) as err:
                raise ConfigError(f"json= cannot be serialised as JSON: {err}") from None
            if not any(name.lower() == "content-type" for name, _ in pairs):
                pairs = (*pairs, ("Content-Type", "application/json"))
        elif content is not None:
            if isinstance(content, str):
                body = content.encode()
            elif isinstance(content, bytes | bytearray | memoryview):
                body = bytes(content)
            else:
                raise ConfigError(f"content= must be bytes or str, not {type(content).__name__}")
        if params:
            url = _with_query(url, params)
        return cls(method, url, pairs, body)


def _header_pairs(
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
) -> tuple[tuple[str, str], ...]:
    if headers is None:
        return ()
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ConfigError(f"headers: {item!r} must be a (name, value) pair")
        name, value = item
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ConfigError(f"header name {name!r} is not a valid HTTP header name")
        if name.lower() in _OWN_HEADERS:
            raise ConfigError(
                f"header {name!r} is set by chaosrec from the body and URL; leave it out"
            )
        if not isinstance(value, str | int):
            raise ConfigError(f"header {name}={value!r} must be a str")
        text = str(value)
        if "\r" in text or "\n" in text or "\0" in text:
            raise ConfigError(f"header {name} has a line break or NUL in its value")
        pairs.append((name, text))
    return tuple(pairs)


def _with_query(url: str, params: Mapping[str, str | int]) -> str:
    query = urlencode(list(params.items()))
    return f"{url}{'&' if '?' in url else '?'}{query}" if query else url


#: ``i -> request`` (an :class:`HttpRequest`, or a path/URL string sent with GET)
RequestBuilder: TypeAlias = Callable[[int], "HttpRequest | str"]
#: what the load generator calls: ``i -> HttpRequest`` with an absolute URL
RequestSource: TypeAlias = Callable[[int], HttpRequest]


def _absolute(base: str, req: HttpRequest) -> HttpRequest:
    if req.url.startswith(("http://", "https://")):
        return req
    if not req.url.startswith("/"):
        raise ConfigError(
            f"a request's url {req.url!r} must be absolute (http://...) or a path starting with /"
        )
    return HttpRequest(req.method, urljoin(base, req.url), req.headers, req.body)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_url(url: object, what: str = "url") -> str:
    """An absolute http(s) URL with a host, else :class:`ConfigError`."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"{what}={url!r} must start with http:// or https://")
    if not urlsplit(url).hostname:
        raise ConfigError(f"{what}={url!r} has no host")
    return url


def request_source(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    json: Any = None,
    content: bytes | str | None = None,
    params: ParamsFn | Mapping[str, str | int] | None = None,
    request: RequestBuilder | None = None,
    check_first: int = 3,
    guard: TargetGuard | None = None,
) -> RequestSource:
    """The ``i -> HttpRequest`` a run sends, from the requests-style arguments or a
    ``request`` builder (not both). The first ``check_first`` requests are built here,
    so a bad argument or a broken builder fails now, before anything is sent.

    With a ``guard``, every host a builder sends to besides ``url``'s is checked the
    first time it appears (:class:`~chaosrec.errors.TargetNotAllowedError` stops the
    run), so a builder cannot carry load past the target guard."""
    check_url(url)
    allowed_origins = {_origin_of(url)}
    if request is not None:
        shaped = [
            name
            for name, value in (
                ("method", method if method != "GET" else None),
                ("headers", headers),
                ("json", json),
                ("content", content),
                ("params", params),
            )
            if value is not None
        ]
        if shaped:
            raise ConfigError(
                f"give request= (a builder i -> request) or {', '.join(shaped)}=, not both"
            )
        if not callable(request):
            raise ConfigError(f"request={request!r} must be a callable i -> HttpRequest")
        builder = request

        def built(i: int) -> HttpRequest:
            made = builder(i)
            if isinstance(made, str):
                made = HttpRequest("GET", made)
            elif not isinstance(made, HttpRequest):
                raise ConfigError(
                    f"request({i}) returned {type(made).__name__}; return an HttpRequest "
                    "(HttpRequest.build(url, method=..., json=...)) or a URL string"
                )
            made = _absolute(url, made)
            if guard is not None:
                origin = _origin_of(made.url)
                if origin not in allowed_origins:
                    guard.check_url(made.url, f"request {i}'s URL")
                    allowed_origins.add(origin)
            return made

        source: RequestSource = built
    else:
        base = HttpRequest.build(url, method=method, headers=headers, json=json, content=content)
        if params is None:
            source = lambda i: base  # noqa: E731 - the cheapest possible source
        elif isinstance(params, Mapping):
            fixed = HttpRequest(base.method, _with_query(base.url, params), base.headers, base.body)
            source = lambda i: fixed  # noqa: E731
        elif callable(params):
            params_fn = params

            def with_params(i: int) -> HttpRequest:
                return HttpRequest(
                    base.method, _with_query(base.url, params_fn(i)), base.headers, base.body
                )

            source = with_params
        else:
            raise ConfigError(f"params={params!r} must be a mapping or a callable i -> mapping")
    for i in range(check_first):
        try:
            source(i)
        except (ConfigError, TargetNotAllowedError):
            raise
        except Exception as err:
            raise ConfigError(
                f"building request {i} failed before anything was sent: {type(err).__name__}: {err}"
            ) from err
    return source
