"""Every check of what a client sends the gateway, in one place, as pure functions.

A request the gateway refuses raises :class:`RequestError`: an HTTP status (4xx)
and a one-line reason naming the parameter, its value (shortened by :func:`show`)
and what is allowed, e.g. ``"k=inf must be a JSON integer in [1, 50]"``. The app's
middleware turns it into ``{"error": reason}``; nothing here touches aiohttp.

Limits on what a body may be, checked before ``json.loads`` sees it:

* at most ``max_body_bytes`` (the gateway's config, 64 KiB by default): else 413;
* ``Content-Type`` absent or ``application/json`` (charset utf-8 only) and no
  ``Content-Encoding``: else 415;
* UTF-8, valid JSON, nested at most :data:`MAX_JSON_DEPTH` levels: else 400. The depth
  is measured on the bytes, so a ``[[[[...`` body is refused before the recursive
  decoder could hit Python's recursion limit.

JSON's ``NaN``, ``Infinity`` and overflowing literals such as ``1e400`` decode to
non-finite floats; every field check refuses them by name.
"""

from __future__ import annotations

import hmac
import json
import re
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BATCH_SHAPE",
    "MAX_BATCH",
    "MAX_JSON_DEPTH",
    "MAX_USER_ID",
    "POLICY_SHAPE",
    "BatchRequest",
    "RecommendRequest",
    "RequestError",
    "check_bearer",
    "check_body_headers",
    "check_query",
    "json_depth",
    "parse_batch",
    "parse_json",
    "parse_policy_changes",
    "parse_recommend",
    "show",
]

#: most user ids in one ``POST /recommend/batch``
MAX_BATCH = 64
#: deepest JSON nesting accepted; the gateway's own bodies need 2 (``{"user_ids": [..]}``)
MAX_JSON_DEPTH = 8
#: user ids are sent to the model as int64
MAX_USER_ID = 2**63 - 1

_DECIMAL = re.compile(r"-?[0-9]+")  # ASCII digits only: int() would also take "٣", " 7", "1_0"
_JSON_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_JSON_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


class RequestError(Exception):
    """The gateway refuses a request: ``status`` (4xx) and a one-line ``reason``.

    Raised by the checks in this module and by the app's handlers; it never leaves the
    gateway process (the app's middleware answers it as ``{"error": reason}``).
    """

    def __init__(
        self, reason: str, status: int = 400, headers: Mapping[str, str] | None = None
    ) -> None:
        if not 400 <= status <= 499:
            raise ValueError(f"status={status} must be a client error (4xx)")
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.headers = dict(headers or {})


class _Shown(reprlib.Repr):
    """``repr`` bounded in length and depth, safe for any value a decoder can produce."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 2
        self.maxstring = 40
        self.maxother = 40
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = 4

    def repr_int(self, x: int, level: int) -> str:
        # repr() of an int past 4300 digits raises ValueError (CVE-2020-10735 limit)
        if x.bit_length() > 128:
            return f"<{'-' if x < 0 else ''}integer of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_SHOWN = _Shown()


def show(value: object, limit: int = 120) -> str:
    """``value`` as a one-line ``repr`` of at most ``limit`` characters, for an error
    message (hostile values may be megabytes long, deeply nested, or hold line breaks)."""
    text = _SHOWN.repr(value)
    if len(text) > limit:
        tail = limit // 4
        text = f"{text[: limit - tail - 3]}...{text[-tail:]}"
    return text


def _one_of(allowed: Iterable[str]) -> str:
    return ", ".join(sorted(allowed)) or "none"


# -- query strings ----------------------------------------------------------------------


def check_query(
    pairs: Sequence[tuple[str, str]], route: str, allowed: Iterable[str] = ()
) -> dict[str, str]:
    """The query parameters as a dict: only ``allowed`` names, each at most once."""
    names = set(allowed)
    found: dict[str, str] = {}
    for name, value in pairs:
        if name not in names:
            raise RequestError(
                f"query parameter {show(name)} is not accepted by {route}; "
                f"allowed: {_one_of(names)}"
            )
        if name in found:
            raise RequestError(f"query parameter {name} is given more than once; give it once")
        found[name] = value
    return found


def _query_int(
    name: str, raw: str, low: int, high: int, allowed: str, in_range: str | None = None
) -> int:
    """A decimal integer in ``[low, high]`` from a query string (ASCII digits only).
    ``allowed`` says what the value must be, ``in_range`` what an integer must be."""
    if not _DECIMAL.fullmatch(raw):
        raise RequestError(f"{name}={show(raw)} must be {allowed}")
    if len(raw.lstrip("-")) > 19:  # past int64: no need to convert 4000 digits to say so
        raise RequestError(f"{name}={show(raw)} is out of range; must be {allowed}")
    value = int(raw)
    if not low <= value <= high:
        raise RequestError(f"{name}={value} must be {in_range or allowed}")
    return value


def _json_int(
    name: str, value: object, low: int, high: int, allowed: str, in_range: str | None = None
) -> int:
    """A JSON integer in ``[low, high]`` (not a bool, a float or a numeric string)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{name}={show(value)} must be {allowed}")
    if not low <= value <= high:
        raise RequestError(f"{name}={show(value)} must be {in_range or allowed}")
    return value


def _users_allowed(n_users: int | None) -> tuple[int, str]:
    high = MAX_USER_ID if n_users is None else n_users - 1
    return high, f"a non-negative integer below {high + 1}"


def _k_allowed(max_k: int, kind: str = "an integer") -> str:
    return f"{kind} in [1, {max_k}]"


def _k_range(max_k: int) -> str:
    return f"in [1, {max_k}]"  # the words clients have matched on since the first gateway


def _region(value: object, regions: Sequence[str], home_region: str) -> str:
    if value is None:
        return home_region
    if not isinstance(value, str) or value not in regions:
        raise RequestError(f"region={show(value)} is not one of {list(regions)}")
    return value


@dataclass(frozen=True)
class RecommendRequest:
    """A checked ``GET /recommend``."""

    user_id: int
    k: int
    region: str


def parse_recommend(
    pairs: Sequence[tuple[str, str]],
    *,
    max_k: int,
    n_users: int | None,
    regions: Sequence[str],
    home_region: str,
) -> RecommendRequest:
    """``GET /recommend?user_id=U[&k=K][&region=R]``: U in [0, n_users), K in [1, max_k]."""
    query = check_query(pairs, "/recommend", ("user_id", "k", "region"))
    high, users = _users_allowed(n_users)
    raw_user = query.get("user_id")
    if raw_user is None:
        raise RequestError(f"user_id=None must be {users} (it is required)")
    user_id = _query_int("user_id", raw_user, 0, high, users)
    k = _query_int("k", query.get("k", "10"), 1, max_k, _k_allowed(max_k), _k_range(max_k))
    return RecommendRequest(user_id, k, _region(query.get("region"), regions, home_region))


# -- bodies -------------------------------------------------------------------------------


def check_body_headers(content_type: str | None, content_encoding: str | None) -> None:
    """A JSON body: ``Content-Type`` absent or ``application/json`` (UTF-8), not encoded."""
    if content_encoding is not None and content_encoding.strip().lower() not in ("", "identity"):
        raise RequestError(
            f"Content-Encoding={show(content_encoding)} is not supported; send the body unencoded",
            status=415,
        )
    if content_type is None:
        return  # clients that send bytes without a type: parsed as JSON, 400 if they are not
    media, _, params = content_type.partition(";")
    if media.strip().lower() != "application/json":
        raise RequestError(
            f"Content-Type={show(content_type)} is not supported; send application/json",
            status=415,
        )
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise RequestError(
                f"Content-Type={show(content_type)} is not supported; JSON bodies are utf-8",
                status=415,
            )


def json_depth(raw: bytes, stop_above: int | None = None) -> int:
    """How deeply the JSON text ``raw`` nests arrays and objects, without decoding it
    (counting stops once it passes ``stop_above``).

    Escapes and strings are dropped first (a ``"[["`` string nests nothing), then the
    brackets are counted. Linear in ``len(raw)``; an unterminated string can make the
    result too high, never too low (the text is not valid JSON anyway).
    """
    structure = _JSON_STRING.sub(b"", _JSON_ESCAPE.sub(b"", raw))
    depth = deepest = 0
    for byte in structure.translate(None, delete=_NOT_BRACKETS):
        if byte in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    break
        else:
            depth -= 1
    return deepest


def parse_json(raw: bytes, expected: str) -> Any:
    """Decode a JSON body (UTF-8, at most :data:`MAX_JSON_DEPTH` deep); ``expected``
    describes the right shape for the message."""
    if not raw.strip():
        raise RequestError(f"body is empty; expected {expected}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RequestError(
            f"body is not UTF-8 (byte {err.start}); expected JSON {expected}"
        ) from None
    if json_depth(raw, stop_above=MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise RequestError(
            f"body nests arrays or objects more than {MAX_JSON_DEPTH} levels deep; "
            f"expected {expected}"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise RequestError(
            f"body is not valid JSON ({err.msg} at character {err.pos}); expected {expected}"
        ) from None
    except ValueError:  # an integer literal past 4300 digits
        raise RequestError(f"body holds a number too long to read; expected {expected}") from None


@dataclass(frozen=True)
class BatchRequest:
    """A checked ``POST /recommend/batch``."""

    user_ids: tuple[int, ...]
    k: int
    region: str


BATCH_SHAPE = '{"user_ids": [...], "k": 10}'


def parse_batch(
    data: object,
    *,
    max_k: int,
    n_users: int | None,
    regions: Sequence[str],
    home_region: str,
) -> BatchRequest:
    """``{"user_ids": [U, ...], "k": K, "region": R}`` (k and region optional)."""
    if not isinstance(data, dict):
        raise RequestError(f"body={show(data)} must be a JSON object {BATCH_SHAPE}")
    unknown = set(data) - {"user_ids", "k", "region"}
    if unknown:
        raise RequestError(
            f"body key(s) {show(sorted(unknown))} are not accepted; allowed: k, region, user_ids"
        )
    raw_ids = data.get("user_ids")
    if not isinstance(raw_ids, list):
        raise RequestError(f"user_ids={show(raw_ids)} must be a JSON list of user ids")
    if not 1 <= len(raw_ids) <= MAX_BATCH:
        raise RequestError(f"user_ids has {len(raw_ids)} entries; allowed 1..{MAX_BATCH}")
    high, users = _users_allowed(n_users)
    ids = tuple(
        _json_int(f"user_ids[{i}]", raw, 0, high, f"a JSON integer, {users}")
        for i, raw in enumerate(raw_ids)
    )
    k = _json_int(
        "k", data.get("k", 10), 1, max_k, _k_allowed(max_k, "a JSON integer"), _k_range(max_k)
    )
    return BatchRequest(ids, k, _region(data.get("region"), regions, home_region))


POLICY_SHAPE = '{"failover": false, ...} (known policy keys only)'


def parse_policy_changes(data: object, known: Iterable[str]) -> dict[str, Any]:
    """A policy change: a JSON object of ``known`` keys. The values are checked by
    :class:`~chaosrec.stack.gateway.config.PolicyConfig`, all at once, before any applies."""
    if not isinstance(data, dict):
        raise RequestError(f"body={show(data)} must be a JSON object {POLICY_SHAPE}")
    names = set(known)
    unknown = set(data) - names
    if unknown:
        raise RequestError(
            f"unknown policy key(s) {show(sorted(unknown))}; allowed: {_one_of(names)}"
        )
    return dict(data)


# -- admin ----------------------------------------------------------------------------------

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="chaosrec-gateway-admin"'}


def check_bearer(authorization: str | None, token: str) -> None:
    """``Authorization: Bearer <token>``: 401 without it, 403 with another token.

    The comparison takes the same time wherever the tokens differ; messages never
    repeat what was sent (it may be a near miss of the real token).
    """
    if authorization is None or not authorization.strip():
        raise RequestError(
            "Authorization: Bearer <admin token> is required for /admin/* "
            "(the token is in the gateway's JSON config, admin_token)",
            status=401,
            headers=_CHALLENGE,
        )
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise RequestError(  # what was sent is not repeated: it may be the bare token
            "Authorization must be 'Bearer <admin token>' (another scheme or no token was sent)",
            status=401,
            headers=_CHALLENGE,
        )
    if not hmac.compare_digest(
        given.strip().encode("utf-8", "surrogatepass"), token.encode("utf-8")
    ):
        raise RequestError("the admin token is wrong", status=403)
