"""Recorded traffic: the JSON-lines format, reading and writing it, and replaying it.

**Format** (``chaosrec-traffic`` version 1; UTF-8, one JSON object per line). The first
line is a header, every other line one request, in arrival order::

    {"format": "chaosrec-traffic", "version": 1, "recorded_at": 1796230000.5, "source": "gateway"}
    {"t": 0.0, "method": "GET", "path": "/recommend?user_id=42&k=10", "headers": {"Accept": "*/*"}}
    {"t": 0.0123, "method": "POST", "path": "/recommend/batch",
     "headers": {"Content-Type": "application/json"}, "body": "{\\"user_ids\\": [1, 2]}"}

(the last request is on two lines here for width; in a file each request is one line).

* ``t``: seconds since the recording started (a number >= 0, never decreasing);
* ``method``: an HTTP method; ``path``: the request target, path and query string;
* ``headers``: an object of header name to value (optional; a repeated header's values
  joined with ``", "``);
* ``body``: the body as text (optional), or ``body_b64``: the body in base64 when it
  is not UTF-8.

``recorded_at`` (epoch seconds) and ``source`` are informative; unknown keys are
ignored, so later versions can add some. Headers in :data:`DENY_HEADERS` (credentials
and cookies) are never written by chaosrec's recorder and are removed again on replay,
together with the hop-by-hop headers the client sets itself.

**Replay** plays a file at ``speed`` times the recorded pace, keeping every
inter-arrival time (divided by ``speed``), so bursts stay bursts::

    replay = Replay.load("fixtures/traffic/shoppers.jsonl", speed=2.0)
    LoadRun(base_url, schedule=replay, request=replay.request)   # or load.replay(...)
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosrec.core.validation import check_positive
from chaosrec.errors import ConfigError
from chaosrec.load.requests import METHODS, HttpRequest
from chaosrec.load.schedule import Arrivals

__all__ = [
    "DENY_HEADERS",
    "FORMAT",
    "HOP_BY_HOP_HEADERS",
    "VERSION",
    "Recording",
    "Replay",
    "TrafficEntry",
    "TrafficWriter",
    "read_traffic",
    "scrub_headers",
]

FORMAT = "chaosrec-traffic"
VERSION = 1
#: never recorded, removed on replay: credentials, sessions and tokens
DENY_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-auth-token",
        "x-csrf-token",
        "x-xsrf-token",
        "x-amz-security-token",
        "x-goog-iap-jwt-assertion",
    }
)
#: set by the client for each connection and body; never replayed as recorded
HOP_BY_HOP_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)


def scrub_headers(
    headers: Iterable[tuple[str, str]], deny: Iterable[str] = DENY_HEADERS
) -> dict[str, str]:
    """``headers`` without the denied and hop-by-hop ones (names compared case-blind);
    repeated names are joined with ``", "``."""
    denied = {name.lower() for name in deny} | HOP_BY_HOP_HEADERS
    out: dict[str, str] = {}
    for name, value in headers:
        if name.lower() in denied:
            continue
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


@dataclass(frozen=True)
class TrafficEntry:
    """One recorded request (see the module docs for the fields)."""

    t: float
    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None

    def to_json(self) -> str:
        line: dict[str, Any] = {"t": round(self.t, 6), "method": self.method, "path": self.path}
        if self.headers:
            line["headers"] = dict(self.headers)
        if self.body is not None:
            try:
                line["body"] = self.body.decode("utf-8")
            except UnicodeDecodeError:
                line["body_b64"] = base64.b64encode(self.body).decode("ascii")
        return json.dumps(line, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, data: object, where: str) -> TrafficEntry:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: a request line must be a JSON object")
        t = data.get("t")
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
            raise ConfigError(f"{where}: t={t!r} must be a number of seconds >= 0")
        method = data.get("method")
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise ConfigError(f"{where}: method={method!r} must be one of {sorted(METHODS)}")
        path = data.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(f"{where}: path={path!r} must start with /")
        headers = data.get("headers", {})
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ConfigError(f"{where}: headers must be an object of strings")
        body: bytes | None = None
        if "body_b64" in data:
            try:
                body = base64.b64decode(str(data["body_b64"]), validate=True)
            except ValueError:
                raise ConfigError(f"{where}: body_b64 is not valid base64") from None
        elif data.get("body") is not None:
            if not isinstance(data["body"], str):
                raise ConfigError(f"{where}: body must be a string (or use body_b64)")
            body = data["body"].encode("utf-8")
        return cls(float(t), method.upper(), path, headers, body)


def header_line(recorded_at: float, source: str) -> str:
    return json.dumps(
        {"format": FORMAT, "version": VERSION, "recorded_at": recorded_at, "source": source}
    )


class TrafficWriter:
    """Build a recording in memory, bounded to ``max_requests`` entries (the rest are
    counted in :attr:`skipped`); :meth:`text` is the file's content."""

    def __init__(self, recorded_at: float, *, source: str, max_requests: int) -> None:
        self.recorded_at = recorded_at
        self.source = source
        self.max_requests = max_requests
        self.entries: list[TrafficEntry] = []
        self.skipped = 0

    def add(
        self,
        t: float,
        method: str,
        path: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | None,
    ) -> None:
        if len(self.entries) >= self.max_requests:
            self.skipped += 1
            return
        self.entries.append(TrafficEntry(max(0.0, t), method, path, scrub_headers(headers), body))

    def lines(self) -> Iterator[str]:
        yield header_line(self.recorded_at, self.source)
        for entry in sorted(self.entries, key=lambda e: e.t):
            yield entry.to_json()

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines())


def read_traffic(path: Path | str) -> list[TrafficEntry]:
    """Every request of a recording, checked line by line.

    Raises:
        ConfigError: the file is missing, its header is not ``chaosrec-traffic`` version
            1, a line is not JSON or not a valid request, or times go backwards; the
            message names the line.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ConfigError(f"cannot read the traffic recording {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; a traffic recording is JSON lines") from None
    entries: list[TrafficEntry] = []
    last_t = 0.0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{where}: not JSON ({err.msg})") from None
        if number == 1:
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ConfigError(
                    f"{where}: the first line must be the header "
                    f'{{"format": "{FORMAT}", "version": {VERSION}, ...}}'
                )
            if data.get("version") != VERSION:
                raise ConfigError(
                    f"{where}: version={data.get('version')!r} is not supported; this chaosrec "
                    f"reads version {VERSION}"
                )
            continue
        entry = TrafficEntry.from_json(data, where)
        if entry.t < last_t:
            raise ConfigError(
                f"{where}: t={entry.t:g} is before the previous request's {last_t:g}; "
                "requests must be in arrival order"
            )
        last_t = entry.t
        entries.append(entry)
    if not entries:
        raise ConfigError(f"{path} has no requests")
    return entries


class Replay(Arrivals):
    """A recording as a schedule: request ``i`` is due at its recorded ``t / speed``
    (measured from the recording's first request).

    :param entries: the recorded requests (:func:`read_traffic`).
    :param speed: 2.0 plays twice as fast (every gap halved), 0.5 half as fast.
    :param deny_headers: header names removed before sending (default
        :data:`DENY_HEADERS`; hop-by-hop headers are always removed).

    :attr:`request` is the matching builder (``i -> HttpRequest`` with the recorded
    path, joined to the run's URL); pass both to the run::

        LoadRun("http://127.0.0.1:8080", schedule=replay, request=replay.request)
    """

    def __init__(
        self,
        entries: list[TrafficEntry],
        *,
        speed: float = 1.0,
        deny_headers: Iterable[str] = DENY_HEADERS,
    ) -> None:
        if not entries:
            raise ConfigError("a replay needs at least one recorded request")
        self.speed = check_positive("speed", speed, maximum=1000.0)
        self.entries = entries
        deny = list(deny_headers)
        self._requests = [
            HttpRequest.build(
                e.path,
                method=e.method,
                headers=scrub_headers(e.headers.items(), deny),
                content=e.body,
            )
            for e in entries
        ]
        first = entries[0].t
        super().__init__([(e.t - first) / self.speed for e in entries])

    @classmethod
    def load(
        cls,
        path: Path | str,
        *,
        speed: float = 1.0,
        deny_headers: Iterable[str] = DENY_HEADERS,
    ) -> Replay:
        """Read ``path`` (see the module docs) and replay it at ``speed``."""
        return cls(read_traffic(path), speed=speed, deny_headers=deny_headers)

    def request(self, i: int) -> HttpRequest:
        return self._requests[i]

    def describe(self) -> str:
        return f"replay({self.n_requests} requests over {self.duration_s:g} s at {self.speed:g}x)"


class Recording:
    """Record a reference gateway's traffic (``/admin/recording/*``, admin token); a
    context manager. The gateway keeps the requests in its memory; :meth:`stop` fetches
    them as the file's text, :meth:`save` writes them::

        with Recording(stack.gateway_url, admin_token=stack.gateway_admin_token) as rec:
            ...  # shoppers' traffic
        rec.save("fixtures/traffic/shoppers.jsonl")
    """

    def __init__(self, gateway_url: str, *, admin_token: str, max_requests: int = 100_000) -> None:
        self.url = gateway_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {admin_token}"}
        self.max_requests = max_requests
        self.text: str | None = None
        self.skipped = 0

    def __repr__(self) -> str:  # never shows the token
        return f"Recording({self.url!r})"

    def start(self) -> Recording:
        from chaosrec.adapters import http

        resp = http.post(
            f"{self.url}/admin/recording/start",
            json={"max_requests": self.max_requests},
            headers=self._headers,
            timeout=5.0,
        )
        if resp.status_code != 200:
            raise ConfigError(
                f"the gateway at {self.url} refused to record: {resp.text.strip()[:200]}"
            )
        return self

    def stop(self) -> str:
        """End the recording; its text (the whole file: header line, then requests)."""
        from chaosrec.adapters import http

        resp = http.post(f"{self.url}/admin/recording/stop", headers=self._headers, timeout=30.0)
        if resp.status_code != 200:
            raise ConfigError(
                f"the gateway at {self.url} did not hand over its recording: "
                f"{resp.text.strip()[:200]}"
            )
        self.text = resp.text
        self.skipped = int(resp.headers.get("X-Chaosrec-Skipped", "0") or 0)
        return self.text

    def __enter__(self) -> Recording:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def save(self, path: Path | str) -> Path:
        """Write the recording to ``path`` (after :meth:`stop`); checks it reads back."""
        if self.text is None:
            raise ConfigError("nothing recorded yet: stop the recording first")
        path = Path(path)
        path.write_text(self.text, encoding="utf-8")
        read_traffic(path)
        return path
