"""The gateway under hostile clients: malformed, non-finite, huge, deeply nested and
mistyped requests get a 4xx with a one-line reason (never a 5xx), slow clients are cut
off within the read timeouts, and ``/admin/*`` needs the admin token.

The gateway here is a real ``python -m chaosrec.stack.gateway`` process with a config
this module writes (so the tests know its admin token), calling the session stack's
Triton replicas through their Toxiproxy proxies, as the stack's own gateway does.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import select
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chaosrec.adapters.ports import free_port
from chaosrec.adapters.process.manager import ManagedProcess, log_tail
from chaosrec.errors import ProcessStartError
from chaosrec.load.generator import LoadRun, default_params
from chaosrec.slo.objectives import Objectives, evaluate
from chaosrec.slo.profile import load_slo_profile
from chaosrec.stack.gateway.config import POLICY_RULES, GatewayConfig, UpstreamConfig
from chaosrec.stack.gateway.edge import LINGER_S

pytestmark = pytest.mark.integration

SLO_PROFILE = str(Path(__file__).resolve().parents[2] / "fixtures/slo/recsys.yaml") + ":default"
#: Hypothesis examples x requests per example: at least 2,000 hostile requests
FUZZ_EXAMPLES = 100
FUZZ_BATCH = 24
SHOPPERS_RPS = 100.0
HOSTILE_RPS = 100.0


@dataclass
class HardenedGateway:
    """Our gateway process: its URL, its config (with the admin token) and its log."""

    url: str
    config: GatewayConfig
    process: ManagedProcess
    log_path: Path

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.admin_token}"}

    def healthy(self) -> bool:
        return _healthy(self.url)

    def policy(self) -> dict[str, Any]:
        resp = httpx.get(f"{self.url}/admin/policy", headers=self.admin, timeout=2.0)
        assert resp.status_code == 200, resp.text
        data: dict[str, Any] = resp.json()
        return data


def _start(config: GatewayConfig, run_dir: Path) -> HardenedGateway:
    config_path = run_dir / "gateway.json"
    config.write(config_path)
    url = f"http://127.0.0.1:{config.port}"
    process = ManagedProcess(
        "hostile-gateway",
        [sys.executable, "-m", "chaosrec.stack.gateway", "--config", str(config_path)],
        log_path=run_dir / "gateway.log",
        ready_check=lambda: _healthy(url),
        ready_timeout_s=30.0,
    )
    process.start()
    process.wait_ready()
    return HardenedGateway(url, config, process, run_dir / "gateway.log")


def _healthy(url: str) -> bool:
    resp = httpx.get(f"{url}/healthz", timeout=2.0)
    return resp.status_code == 200 and resp.json()["status"] == "ok"


@pytest.fixture(scope="module")
def gateway(recsys: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HardenedGateway]:
    recsys.wait_healthy(timeout_s=60)
    replicas = recsys.health()["replicas"]
    upstreams = tuple(
        UpstreamConfig(rid, info["region"], info["address"]) for rid, info in replicas.items()
    )
    run_dir = tmp_path_factory.mktemp("hostile-gateway")
    for attempt in range(3):  # another process may take the free port first
        config = GatewayConfig(
            port=free_port(),
            home_region=recsys.topology.home_region,
            upstreams=upstreams,
            popularity=tuple(range(50)),
            n_users=recsys.n_users,
        )
        try:
            hardened = _start(config, run_dir)
            break
        except ProcessStartError:
            if "address already in use" not in log_tail(run_dir / "gateway.log").lower():
                raise
            if attempt == 2:
                raise
    try:
        yield hardened
    finally:
        hardened.process.stop()
        assert config.admin_token not in hardened.log_path.read_text(errors="replace")


# -- what every refusal looks like ------------------------------------------------------------


def _assert_reason(resp: httpx.Response, what: str = "") -> str:
    """A 4xx answer carries ``{"error": "one line"}``; returns the reason."""
    assert 400 <= resp.status_code <= 499, f"{what}: {resp.status_code} {resp.text[:300]}"
    assert resp.headers.get("content-type", "").startswith("application/json"), what
    reason = resp.json()["error"]
    assert isinstance(reason, str) and reason.strip(), what
    assert "\n" not in reason and "\r" not in reason and len(reason) < 1000, (what, reason)
    return reason


# -- routes, methods, content types ------------------------------------------------------------


BATCH = "/recommend/batch"
TEXT_PLAIN = {"Content-Type": "text/plain"}
GZIP = {"Content-Encoding": "gzip"}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "reason"),
    [
        ("GET", "/recommend", {"params": {"user_id": "1", "k": "Infinity"}}, 400, r"^k='Infinity'"),
        ("GET", "/recommend", {"params": {"user_id": "1e400"}}, 400, r"^user_id='1e400' must"),
        ("GET", "/recommend", {"params": {"user_id": "-Infinity"}}, 400, r"^user_id='-Infinity'"),
        ("GET", "/recommend", {"params": {"user_id": "9" * 4000}}, 400, r"is out of range"),
        ("GET", "/recommend", {"params": {"user_id": "1", "k": "5", "x": "y"}}, 400, r"'x' is not"),
        ("GET", "/healthz", {"params": {"verbose": "1"}}, 400, r"'verbose' is not accepted by"),
        ("GET", "/metrics", {"params": {"name[]": "x"}}, 400, r"not accepted by /metrics"),
        ("POST", BATCH, {"content": b"[" * 50_000}, 400, r"more than 8 levels"),
        ("POST", BATCH, {"content": b'{"user_ids": [1], "k": 1e400}'}, 400, r"^k=inf "),
        ("POST", BATCH, {"content": b'{"user_ids": [NaN]}'}, 400, r"user_ids\[0\]=nan"),
        ("POST", BATCH, {"content": b'{"user_ids": [1], "k": -Infinity}'}, 400, r"k=-inf"),
        ("POST", BATCH, {"content": b"\xff\xfe{}"}, 400, r"^body is not UTF-8"),
        ("POST", BATCH, {"content": b"x" * 70_000}, 413, r"^Content-Length=70000 is too"),
        ("POST", BATCH, {"content": iter([b"[" * 40_000] * 2)}, 413, r"^body is larger"),
        (
            "POST",
            BATCH,
            {"json": {"user_ids": [1]}, "headers": TEXT_PLAIN},
            415,
            r"^Content-Type='text/plain'",
        ),
        (
            "POST",
            BATCH,
            {"json": {"user_ids": [1]}, "headers": GZIP},
            415,
            r"^Content-Encoding='gzip'",
        ),
        (
            "PUT",
            "/recommend",
            {},
            405,
            r"^method 'PUT' is not allowed on '/recommend'; allowed: GET, HEAD",
        ),
        ("GET", "/recommend/batch", {}, 405, r"allowed: POST$"),
        ("DELETE", "/healthz", {}, 405, r"^method 'DELETE'"),
        ("GET", "/recommendations", {}, 404, r"^path '/recommendations' not found; paths: /admin"),
        ("GET", "/%F0%9F%92%A3/%00", {}, 404, r"not found"),
    ],
    ids=[
        "k-infinity",
        "user-1e400",
        "user--infinity",
        "user-4000-digits",
        "unknown-param",
        "healthz-param",
        "metrics-param",
        "nested-50k",
        "batch-k-1e400",
        "batch-nan-id",
        "batch-k--infinity",
        "not-utf8",
        "too-large",
        "too-large-chunked",
        "text-plain",
        "gzip",
        "put",
        "get-on-post-route",
        "delete",
        "unknown-path",
        "unicode-path",
    ],
)
def test_hostile_requests_get_a_4xx_with_a_reason(
    gateway: HardenedGateway, method: str, path: str, kwargs: Any, status: int, reason: str
) -> None:
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        resp = client.request(method, path, **kwargs)
    assert resp.status_code == status, resp.text
    assert re.search(reason, _assert_reason(resp, f"{method} {path}")), resp.json()["error"]
    if status == 405:
        assert resp.headers["Allow"]


def test_good_requests_still_work(gateway: HardenedGateway) -> None:
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        one = client.get("/recommend", params={"user_id": 7, "k": 5})
        batch = client.post("/recommend/batch", json={"user_ids": [1, 2, 3], "k": 5})
        head = client.head("/recommend", params={"user_id": 7})
        charset = client.post(
            "/recommend/batch",
            content=b'{"user_ids": [4]}',
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
    assert one.status_code == 200 and len(one.json()["items"]) == 5
    assert batch.status_code == 200 and [r["user_id"] for r in batch.json()["results"]] == [1, 2, 3]
    assert head.status_code == 200
    assert charset.status_code == 200 and charset.json()["k"] == 10


# -- admin ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Basic YWRtaW46YWRtaW4="}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({"Authorization": "Bearer not-the-token"}, 403),
    ],
    ids=["none", "basic", "empty-bearer", "wrong"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/admin/policy"), ("POST", "/admin/policy"), ("GET", "/admin/unknown")],
    ids=["get", "post", "unknown-admin-path"],
)
def test_admin_needs_the_token(
    gateway: HardenedGateway, headers: dict[str, str], status: int, method: str, path: str
) -> None:
    before = gateway.policy()
    resp = httpx.request(
        method, f"{gateway.url}{path}", headers=headers, json={"failover": False}, timeout=5
    )
    assert resp.status_code == status
    _assert_reason(resp)
    assert ("WWW-Authenticate" in resp.headers) == (status == 401)
    assert gateway.config.admin_token not in resp.text
    assert gateway.policy() == before


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"attempt_timeout_s": NaN}', r"^policy\.attempt_timeout_s=nan must be a number > 0"),
        (b'{"request_timeout_s": Infinity}', r"^policy\.request_timeout_s=inf must be"),
        (b'{"hedge_after_s": 1e400}', r"^policy\.hedge_after_s=inf must be"),
        (b'{"max_inflight": 1e400}', r"^policy\.max_inflight=inf must be an integer"),
        (b'{"max_attempts": 100000000000000000000}', r"must be an integer >= 1 and <= 16$"),
        (b'{"failover": "false"}', r"^policy\.failover='false' must be a JSON boolean"),
        (b'{"fallback": 0}', r"^policy\.fallback=0 must be a JSON boolean"),
        (b'{"retry": null}', r"^policy\.retry=None must be a JSON boolean"),
        (b'{"failover": false, "max_attempts": 0}', r"^policy\.max_attempts=0 must be"),
        (b'{"failover": false, "retries": 2}', r"^unknown policy key\(s\) \['retries'\]"),
        (b'[{"failover": false}]', r"^body=\[\{'failover': False\}\] must be a JSON object"),
        (b'{"failover": false', r"^body is not valid JSON"),
        (b'{"a": ' * 1000 + b"1" + b"}" * 1000, r"more than 8 levels deep"),
    ],
    ids=[
        "nan",
        "infinity",
        "1e400",
        "1e400-int",
        "huge-int",
        "string-false",
        "zero-as-bool",
        "null-bool",
        "one-bad-among-good",
        "unknown-key",
        "list",
        "broken",
        "nested",
    ],
)
def test_a_bad_policy_change_is_refused_whole(
    gateway: HardenedGateway, body: bytes, reason: str
) -> None:
    before = gateway.policy()
    resp = httpx.post(
        f"{gateway.url}/admin/policy",
        content=body,
        headers={**gateway.admin, "Content-Type": "application/json"},
        timeout=5,
    )
    assert resp.status_code == 400
    assert re.search(reason, _assert_reason(resp)), resp.json()["error"]
    assert gateway.policy() == before  # nothing of the change applied


def test_a_good_policy_change_applies(gateway: HardenedGateway) -> None:
    before = gateway.policy()
    changes = {"failover": False, "hedge_after_s": 0.08, "max_attempts": 2}
    try:
        resp = httpx.post(
            f"{gateway.url}/admin/policy", json=changes, headers=gateway.admin, timeout=5
        )
        assert resp.status_code == 200, resp.text
        assert {k: resp.json()[k] for k in changes} == changes
        assert gateway.policy() == {**before, **changes}
    finally:
        restore = {k: before[k] for k in changes}
        httpx.post(f"{gateway.url}/admin/policy", json=restore, headers=gateway.admin, timeout=5)
    assert gateway.policy() == before


# -- slow clients ---------------------------------------------------------------------------


@dataclass
class _SlowClient:
    """A raw connection that sends part of a request, then stalls (or trickles)."""

    sock: socket.socket
    trickle: bytes = b""
    received: bytearray = field(default_factory=bytearray)
    closed_after_s: float | None = None


def _connect(gateway: HardenedGateway, first: bytes, trickle: bytes = b"") -> _SlowClient:
    sock = socket.create_connection(("127.0.0.1", gateway.config.port), timeout=5)
    sock.sendall(first)
    return _SlowClient(sock, trickle)


def _watch_until_closed(
    gateway: HardenedGateway, clients: list[_SlowClient], give_up_s: float
) -> int:
    """Wait (select, 0.25 s) until the gateway has closed every client; meanwhile trickle
    their bytes and send normal requests, which must be answered. Returns how many were."""
    started = time.monotonic()
    served = 0
    open_ = {c.sock: c for c in clients}
    try:
        with httpx.Client(base_url=gateway.url, timeout=5) as normal:
            while open_ and time.monotonic() - started < give_up_s:
                readable, _, _ = select.select(list(open_), [], [], 0.25)
                for sock in readable:
                    client = open_[sock]
                    try:
                        data = sock.recv(65536)
                    except ConnectionResetError:
                        data = b""
                    client.received += data
                    if not data:
                        client.closed_after_s = time.monotonic() - started
                        del open_[sock]
                for client in open_.values():
                    if client.trickle:
                        with contextlib.suppress(OSError):  # closed: the next select sees it
                            client.sock.send(client.trickle)
                resp = normal.get("/recommend", params={"user_id": served % 100})
                assert resp.status_code == 200, resp.text
                served += 1
    finally:
        for client in clients:
            client.sock.close()
    assert not open_, f"{len(open_)} slow connection(s) still open after {give_up_s} s"
    return served


def test_partial_headers_are_cut_within_the_header_timeout(gateway: HardenedGateway) -> None:
    bound_s = gateway.config.header_timeout_s
    head = b"GET /recommend?user_id=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    clients = [_connect(gateway, head) for _ in range(20)]  # a slow-loris crowd
    clients += [_connect(gateway, head, trickle=b"a") for _ in range(5)]  # a byte each 0.25 s
    clients += [_connect(gateway, b"")]  # connects and says nothing
    served = _watch_until_closed(gateway, clients, give_up_s=bound_s + 20)
    closed = sorted(c.closed_after_s or 0.0 for c in clients)
    print(
        f"partial headers: {len(clients)} cut after {closed[0]:.2f}-{closed[-1]:.2f} s; "
        f"{served} normal requests answered meanwhile"
    )
    assert all(not c.received for c in clients)  # closed without an answer
    # trickling does not extend the deadline; nobody is cut long before it either
    assert bound_s / 2 <= closed[0] and closed[-1] <= bound_s + 5
    assert served > 0


def test_partial_bodies_get_408_within_the_body_timeout(gateway: HardenedGateway) -> None:
    bound_s = gateway.config.body_timeout_s
    head = (
        b"POST /recommend/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
        b'{"user_ids": ['
    )
    clients = [_connect(gateway, head) for _ in range(10)]
    clients += [_connect(gateway, head, trickle=b"1, ") for _ in range(5)]
    auth = f"\r\nAuthorization: Bearer {gateway.config.admin_token}\r\n\r\n".encode()
    admin_head = head.replace(b"/recommend/batch", b"/admin/policy").replace(b"\r\n\r\n", auth)
    clients += [_connect(gateway, admin_head)]
    served = _watch_until_closed(gateway, clients, give_up_s=bound_s + LINGER_S + 20)
    closed = sorted(c.closed_after_s or 0.0 for c in clients)
    print(
        f"partial bodies: {len(clients)} answered 408 and closed after "
        f"{closed[0]:.2f}-{closed[-1]:.2f} s; {served} normal requests answered meanwhile"
    )
    for client in clients:
        status_line, _, rest = bytes(client.received).partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 408"), bytes(client.received)[:200]
        body = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert body["error"].startswith(f"body not received within {bound_s:g} s")
    assert bound_s / 2 <= closed[0] and closed[-1] <= bound_s + LINGER_S + 5
    assert served > 0


def test_an_unread_body_is_drained_briefly_then_the_connection_closed(
    gateway: HardenedGateway,
) -> None:
    """A GET with a body the handler ignores is answered at once; the rest of the body
    is waited for at most LINGER_S before the connection closes."""
    client = _connect(
        gateway, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nxx"
    )
    _watch_until_closed(gateway, [client], give_up_s=LINGER_S + 10)
    assert bytes(client.received).startswith(b"HTTP/1.1 200")
    assert client.closed_after_s is not None and client.closed_after_s <= LINGER_S + 5


POST_BATCH = b"POST /recommend/batch HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /recommend?user_id=\xff HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /r\xc3\xa9commend?user_id=1 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\xff\xfe\x00garbage\r\n\r\n",
        b"GET /recommend?user_id=" + b"1" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n",
        POST_BATCH + b"Content-Length: -1\r\n\r\n",
        POST_BATCH + b"Content-Length: 1e400\r\n\r\n",
        POST_BATCH + b"Content-Length: 99999999999999999999999\r\n\r\n",
        POST_BATCH + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
        POST_BATCH + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
        b"FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /recommend?user_id=%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /admin/policy HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n",
    ],
    ids=[
        "latin1-query",
        "utf8-path",
        "garbage",
        "request-line-9k",
        "header-9k",
        "200-headers",
        "nul-in-header",
        "negative-length",
        "float-length",
        "huge-length",
        "bad-chunk",
        "length-and-chunked",
        "http-9.9",
        "unknown-method",
        "percent-encoded-latin1",
        "latin1-token",
    ],
)
def test_malformed_http_never_gets_a_5xx(gateway: HardenedGateway, raw: bytes) -> None:
    """What aiohttp's HTTP parser refuses (bad bytes, over-long lines, too many headers,
    bad framing, a method it does not know) it answers itself with a plain-text 400; the
    rest reaches the gateway's checks. Either way a 4xx, and the gateway stays up."""
    client = _connect(gateway, raw)
    _watch_until_closed(gateway, [client], give_up_s=gateway.config.header_timeout_s + 10)
    status_line = bytes(client.received).partition(b"\r\n")[0]
    assert status_line[:10] in (b"HTTP/1.1 4", b"HTTP/1.0 4") or not client.received, status_line
    assert gateway.healthy()


def test_a_malformed_line_with_the_token_is_logged_without_it(
    gateway: HardenedGateway, wait_for: Any
) -> None:
    token = gateway.config.admin_token.encode()
    client = _connect(
        gateway, b"GET /admin/policy HTTP/1.1\r\nAuthorization: Bearer " + token + b"\x01\r\n\r\n"
    )
    _watch_until_closed(gateway, [client], give_up_s=gateway.config.header_timeout_s + 10)
    assert bytes(client.received).startswith(b"HTTP/1.0 400")

    def logged() -> bool:
        return "Invalid header value char" in gateway.log_path.read_text(errors="replace")

    wait_for(logged, 10.0, "aiohttp logging the malformed request")
    text = gateway.log_path.read_text(errors="replace")
    assert "Bearer <admin token>" in text and token.decode() not in text


# -- the fuzz -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    """One generated request."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    content: bytes | None = None

    def __repr__(self) -> str:
        body = (
            "" if self.content is None else f" body={self.content[:80]!r} ({len(self.content)} B)"
        )
        return f"<{self.method} {self.path} {list(self.params)} {dict(self.headers)}{body}>"


_NUMBER_TEXTS = [
    "Infinity",
    "-Infinity",
    "NaN",
    "inf",
    "-inf",
    "nan",
    "1e400",
    "-1e400",
    "1e-400",
    "1e308",
    "0x1F",
    "1_000",
    " 7",
    "7 ",
    "+7",
    "-0",
    "00",
    "",
    "\u0663",
    "\uff17",
    "\u00b2",
    "1.0",
    "7.5",
    "true",
    "null",
    "[]",
    "{}",
    "%",
    "%00",
    "\x00",
    "\n",
    str(2**63),
    str(2**64),
    str(-(2**63) - 1),
    "9" * 4000,
]


def _texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(_NUMBER_TEXTS),
        st.integers().map(str),
        st.integers(-(10**40), 10**40).map(str),
        st.floats().map(repr),
        st.text(max_size=60),
    )


_ASCII = st.characters(min_codepoint=32, max_codepoint=126)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(10**400), 10**400),
    st.floats(),  # NaN and +-Infinity included: json.dumps writes them as such
    st.text(max_size=40),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
_LITERAL_BODIES = [
    b'{"user_ids": [1e400], "k": 1}',
    b'{"user_ids": [1], "k": Infinity}',
    b'{"user_ids": [NaN]}',
    b'{"user_ids": [' + b"1" * 5000 + b"]}",  # past Python's 4300-digit int limit
    b'{"user_ids": [1], "k": -Infinity}',
    b'\xef\xbb\xbf{"user_ids": [1]}',  # a byte-order mark
    b'{"user_ids": [1], "user_ids": "x"}',
    b'{"attempt_timeout_s": 1e400}',
    b'{"failover": "false"}',
    b"{}",
]
#: every kind of raw body, each drawn as often as the others: Hypothesis favours the
#: first branches of a one_of, and oversized bodies would otherwise be rare
_RAW_BODIES = st.sampled_from(["binary", "repeated", "nested", "oversized", "literal"]).flatmap(
    lambda kind: {
        "binary": st.binary(max_size=100),
        "repeated": st.builds(
            lambda unit, n: unit * n,
            st.sampled_from([b"[", b"{", b'{"a": ', b"[1, ", b" ", b'"\\u00e9']),
            st.integers(1, 80_000),
        ),
        "nested": st.builds(lambda n: b"[" * n + b"]" * n, st.integers(1, 30_000)),
        "oversized": st.builds(lambda n: b"9" * n, st.sampled_from([65_537, 100_000, 300_000])),
        "literal": st.sampled_from(_LITERAL_BODIES),
    }[kind]
)
_CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=latin-1",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
        ]
    ),
    st.text(_ASCII, max_size=40).map(str.strip),  # h11 refuses to send padded values
)


@st.composite
def _hostile(draw: st.DrawFn, token: str, n_users: int) -> Hostile:
    """Any request a hostile or broken client might send, to any route."""
    headers: dict[str, str] = {}
    kind = draw(
        st.sampled_from(["recommend", "batch", "admin-get", "admin-post", "plain", "route"])
    )
    if kind == "recommend":
        pairs = [("user_id", draw(st.integers(0, n_users - 1).map(str) | _texts()))]
        names = st.sampled_from(["user_id", "k", "region"]) | st.text(min_size=1, max_size=20)
        pairs += draw(st.lists(st.tuples(names, _texts()), max_size=3))
        return Hostile(draw(st.sampled_from(["GET", "HEAD"])), "/recommend", tuple(pairs))
    if kind in ("batch", "admin-post"):
        if kind == "batch":
            ids = st.lists(st.integers(0, n_users - 1) | _SCALARS, max_size=70) | _JSON
            value: Any = draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "user_ids": ids,
                        "k": st.integers(-5, 60) | _SCALARS,
                        "region": st.sampled_from(["region-a", "region-b"]) | _JSON,
                        draw(st.text(max_size=10)): _JSON,
                    },
                )
            )
            path = "/recommend/batch"
        else:
            headers.update(draw(_auth(token)))
            # always one value no policy accepts: a change here must never apply
            value = draw(st.dictionaries(st.sampled_from(sorted(POLICY_RULES)), _JSON, max_size=4))
            bad_key = draw(st.sampled_from(sorted(POLICY_RULES)))
            value[bad_key] = draw(
                st.sampled_from(
                    [math.nan, math.inf, -math.inf, "false", None, [], -1, 10**30]
                ).filter(lambda v: not POLICY_RULES[bad_key].accepts(v))
            )
            path = "/admin/policy"
        if draw(st.booleans()):
            content = draw(_RAW_BODIES)
        else:
            content = json.dumps(value, ensure_ascii=draw(st.booleans())).encode()
        # mostly none or JSON, so that most bodies get past the 415 to be read and parsed
        content_type = draw(st.sampled_from([None, "application/json", "other"]))
        if content_type == "other":
            content_type = draw(_CONTENT_TYPES)
        if content_type is not None:
            headers["Content-Type"] = content_type
        if draw(st.integers(0, 9)) == 0:
            headers["Content-Encoding"] = draw(st.sampled_from(["gzip", "br", "identity", "x"]))
        # a stray query parameter is refused before the body is read: only now and then
        params: tuple[tuple[str, str], ...] = ()
        if draw(st.integers(0, 3)) == 0:
            params = ((draw(st.text(min_size=1, max_size=8)), draw(_texts())),)
        return Hostile("POST", path, params, tuple(headers.items()), content)
    if kind == "admin-get":
        headers.update(draw(_auth(token)))
        params = tuple(
            draw(st.lists(st.tuples(st.text(min_size=1, max_size=8), _texts()), max_size=2))
        )
        return Hostile(
            draw(st.sampled_from(["GET", "HEAD"])), "/admin/policy", params, tuple(headers.items())
        )
    if kind == "plain":
        path = draw(st.sampled_from(["/healthz", "/metrics"]))
        params = tuple(
            draw(st.lists(st.tuples(st.text(min_size=1, max_size=8), _texts()), max_size=2))
        )
        return Hostile("GET", path, params)
    # wrong methods on known paths, and unknown paths
    known = ["/recommend", "/recommend/batch", "/healthz", "/metrics", "/admin/policy", "/admin"]
    path = draw(
        st.sampled_from([*known, "/recommend/", "/RECOMMEND", "/admin/", "/admin/policy/x", "/"])
        | st.text(max_size=30).map(lambda t: "/" + quote(t, safe=""))
    )
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]))
    if path.startswith("/admin"):
        headers.update(draw(_auth(token)))
    body = draw(st.none() | _RAW_BODIES) if method not in ("GET", "OPTIONS", "TRACE") else None
    return Hostile(method, path, (), tuple(headers.items()), body)


def _reported(token: str) -> list[Hostile]:
    """The requests of the issue, and one of each refusal: always sent, first."""
    admin = (("Authorization", f"Bearer {token}"), ("Content-Type", "application/json"))
    return [
        Hostile("GET", "/recommend", (("user_id", "1"), ("k", "Infinity"))),
        Hostile("GET", "/recommend", (("user_id", "1e400"),)),
        Hostile("GET", "/recommend", (("user_id", "-Infinity"),)),
        Hostile("POST", "/recommend/batch", content=b"[" * 60_000),  # a RecursionError
        Hostile("POST", "/recommend/batch", content=b'{"user_ids": [1], "k": Infinity}'),
        Hostile("POST", "/recommend/batch", content=b'{"user_ids": [1e400]}'),
        Hostile("POST", "/recommend/batch", content=b"9" * 100_000),
        Hostile("POST", "/recommend/batch", headers=(("Content-Type", "text/plain"),)),
        Hostile("POST", "/admin/policy", headers=admin, content=b'{"attempt_timeout_s": NaN}'),
        Hostile("POST", "/admin/policy", headers=admin, content=b'{"hedge_after_s": Infinity}'),
        Hostile("POST", "/admin/policy", headers=admin, content=b'{"breaker_cooldown_s": 1e400}'),
        Hostile("POST", "/admin/policy", headers=admin, content=b'{"failover": "false"}'),
        Hostile("POST", "/admin/policy", content=b'{"failover": false}'),
        Hostile("POST", "/admin/policy", headers=(("Authorization", "Bearer x"),), content=b"{}"),
        Hostile("PUT", "/recommend"),
        Hostile("GET", "/admin/policy/../../etc/passwd"),
    ]


def _auth(token: str) -> st.SearchStrategy[dict[str, str]]:
    return st.sampled_from(
        [
            {},
            {"Authorization": f"Bearer {token}"},
            {"Authorization": f"bearer {token}"},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Bearer {token}x"},
            {"Authorization": token},
            {"Authorization": "Basic YWRtaW46YWRtaW4="},
        ]
    )


@dataclass
class _Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    sent: int = 0


def _send(client: httpx.Client, request: Hostile, tally: _Tally) -> None:
    try:
        resp = client.request(
            request.method,
            request.path,
            params=list(request.params),
            headers=dict(request.headers),
            content=request.content,
        )
    except httpx.TransportError as err:
        raise AssertionError(f"no answer to {request!r}: {err!r}") from err
    tally.sent += 1
    tally.statuses[resp.status_code] += 1
    assert resp.status_code < 500, f"{resp.status_code} for {request!r}: {resp.text[:300]}"
    if resp.status_code >= 400 and request.method != "HEAD":  # HEAD answers carry no body
        _assert_reason(resp, repr(request))


def test_hostile_fuzz_while_shoppers_shop(gateway: HardenedGateway, recsys: Any) -> None:
    """>= 2,000 generated hostile requests: no 5xx, every 4xx has its reason, no policy
    change ever applies; then the same requests again, paced among ~100 req/s of normal
    shoppers: still no 5xx, the gateway stays up and the shoppers keep their SLO.

    The two phases are apart on purpose: Hypothesis generating data holds the GIL of this
    process, which also runs the shoppers' load generator, and on 2 cores that showed up
    as shopper latency (p99 542 ms in one CI run) that the gateway never caused.
    """
    policy_before = gateway.policy()
    objectives = Objectives.from_mapping(load_slo_profile(SLO_PROFILE))
    tally = _Tally()
    generated: list[Hostile] = []
    client = httpx.Client(base_url=gateway.url, timeout=15)

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(
        st.lists(
            _hostile(gateway.config.admin_token, recsys.n_users or 1000),
            min_size=FUZZ_BATCH,
            max_size=FUZZ_BATCH,
        )
    )
    @example(_reported(gateway.config.admin_token))
    def fuzz(requests: list[Hostile]) -> None:
        for request in requests:
            _send(client, request, tally)
            generated.append(request)

    with client:
        fuzz()  # phase 1: Hypothesis finds (and would shrink) any request answered 5xx
        classes = Counter(f"{s // 100}xx" for s in tally.statuses.elements())
        print(
            f"\nfuzz: {tally.sent} hostile requests, {dict(sorted(classes.items()))}, "
            f"statuses {dict(sorted(tally.statuses.items()))}"
        )
        assert tally.sent >= 2000
        assert classes["5xx"] == 0
        # every kind of refusal was exercised (a strategy that stopped reaching one shows)
        assert {400, 401, 403, 404, 405, 413, 415} <= set(tally.statuses), tally.statuses

        # phase 2: the same requests, paced, while shoppers shop
        replayed = _Tally()
        shoppers = LoadRun(
            f"{gateway.url}/recommend",
            rate_rps=SHOPPERS_RPS,
            duration_s=300,
            params=default_params(recsys.n_users or 1000),
        )
        with shoppers as run:
            run.wait(3.0)  # warm connections; the shoppers' steady state, for comparison
            started_s, started = run.now(), time.monotonic()
            for i, request in enumerate(generated):
                _send(client, request, replayed)
                due = started + (i + 1) / HOSTILE_RPS  # paced by schedule, not by sleep(x)
                if (wait_s := due - time.monotonic()) > 0:
                    time.sleep(wait_s)
            ended_s, took_s = run.now(), time.monotonic() - started
            run.stop()
    during = run.log.window(started_s, ended_s)
    verdict = evaluate(during, objectives)
    before = evaluate(run.log.window(0.0, started_s), objectives)
    print(
        f"replayed {replayed.sent} hostile requests in {took_s:.1f} s among shoppers"
        f"\nshoppers before the hostile requests:\n{before.table()}"
        f"\nshoppers during the hostile requests:\n{verdict.table()}"
    )
    assert replayed.sent == len(generated)
    assert sum(n for status, n in replayed.statuses.items() if status >= 500) == 0
    assert gateway.process.alive, log_tail(gateway.log_path)
    assert gateway.healthy()
    assert gateway.policy() == policy_before  # no hostile change ever applied
    assert verdict.status == "pass", verdict.table()
