"""ToxiproxyClient and ToxiproxyServer against the real toxiproxy-server (from ensure_toxiproxy()).

Timing assertions are lower bounds only: a toxic must delay at least as long as
configured; a busy machine may always be slower.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

import chaosrec.adapters.toxiproxy.server as toxiproxy_server_module
from chaosrec.adapters.tools import ensure_toxiproxy, toxiproxy_version
from chaosrec.adapters.toxiproxy import Proxy, ToxiproxyClient, ToxiproxyServer
from chaosrec.errors import (
    ConfigError,
    PortInUseError,
    ProcessStartError,
    StackError,
    ToxiproxyError,
    UnknownTargetError,
)

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------ helpers


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(OSError):
            while data := self.request.recv(65536):
                self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    """A TCP echo server on 127.0.0.1 and a free port."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


def free_port() -> int:
    """A port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def roundtrip(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Send ``payload`` through an echo connection; return seconds until it all came back."""
    started = time.monotonic()
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the echo came back")
        received += chunk
    assert received == payload
    return time.monotonic() - started


def connect(proxy: Proxy, timeout_s: float = 5.0) -> socket.socket:
    return socket.create_connection((proxy.listen_host, proxy.listen_port), timeout=timeout_s)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    stat_file = Path(f"/proc/{pid}/stat")
    if stat_file.parent.parent.joinpath("self").exists():
        try:
            state = stat_file.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until_gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def write_script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}")
    path.chmod(0o755)
    return path


# ----------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def binary() -> Path:
    return ensure_toxiproxy()


@pytest.fixture(scope="module")
def server(binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToxiproxyServer]:
    log_path = tmp_path_factory.mktemp("toxiproxy") / "toxiproxy.log"
    with ToxiproxyServer(binary, log_path) as running:
        yield running


@pytest.fixture
def client(server: ToxiproxyServer) -> Iterator[ToxiproxyClient]:
    yield server.client
    server.client.reset()
    for name in server.client.proxies():
        server.client.delete_proxy(name)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with EchoServer() as echo_server:
        echo_server.thread.start()
        yield echo_server
        echo_server.shutdown()


@pytest.fixture
def proxy(client: ToxiproxyClient, echo: EchoServer) -> Proxy:
    return client.create_proxy("echo", echo.address)


@pytest.fixture
def offline_client() -> Iterator[ToxiproxyClient]:
    """A client whose API does not exist: any request it sends fails with ToxiproxyError."""
    with ToxiproxyClient(f"http://127.0.0.1:{free_port()}", timeout_s=1.0) as unreachable:
        yield unreachable


# -------------------------------------------------------------------- the basics


def test_server_answers_and_starts_clean(server: ToxiproxyServer, binary: Path) -> None:
    assert server.client.version()  # "git" for go-installed builds
    assert toxiproxy_version(binary) == "2.12.0"
    assert server.client.proxies() == {}  # the readiness sentinel was removed
    assert server.client.is_clean()
    assert alive(server.pid)
    assert server.api_url == f"http://127.0.0.1:{server.port}"


def test_traffic_passes_through_a_proxy(
    client: ToxiproxyClient, proxy: Proxy, echo: EchoServer
) -> None:
    assert proxy.listen_port != 0  # port 0 asked the server to pick one; we get the real one
    assert proxy.upstream == echo.address
    assert proxy.enabled
    assert proxy.toxics == ()
    with connect(proxy) as sock:
        roundtrip(sock, b"hello through toxiproxy")
    assert client.proxy("echo") == proxy
    assert client.proxies() == {"echo": proxy}
    assert client.get_or_create_proxy("echo", echo.address) == proxy


def test_get_or_create_proxy_creates_once(client: ToxiproxyClient, echo: EchoServer) -> None:
    created = client.get_or_create_proxy("fresh", echo.address)
    assert client.get_or_create_proxy("fresh", echo.address) == created
    with pytest.raises(ConfigError, match="already exists with upstream="):
        client.get_or_create_proxy("fresh", "127.0.0.1:1")


def test_delete_proxy(client: ToxiproxyClient, proxy: Proxy) -> None:
    client.delete_proxy("echo")
    assert client.proxies() == {}
    with pytest.raises(ConnectionRefusedError), connect(proxy):
        pass


def test_disabling_refuses_new_and_closes_open_connections(
    client: ToxiproxyClient, proxy: Proxy
) -> None:
    with connect(proxy) as sock:
        roundtrip(sock)
        disabled = client.set_enabled("echo", False)
        assert not disabled.enabled
        assert not client.is_clean()
        # The open connection is closed by the proxy: EOF, or a reset if data was in flight.
        with pytest.raises((ConnectionError, OSError)):
            roundtrip(sock)
    with pytest.raises(ConnectionRefusedError), connect(proxy):
        pass

    enabled = client.set_enabled("echo", True)
    assert enabled.listen == proxy.listen  # re-enabling binds the same port again
    with connect(proxy) as sock:
        roundtrip(sock)


class _OkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_disabling_breaks_pooled_keep_alive_http_connections(client: ToxiproxyClient) -> None:
    http_server = ThreadingHTTPServer(("127.0.0.1", 0), _OkHandler)
    http_server.daemon_threads = True
    threading.Thread(target=http_server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        upstream = f"127.0.0.1:{http_server.server_address[1]}"
        proxy = client.create_proxy("http", upstream)
        url = f"http://{proxy.listen}/"
        with httpx.Client(trust_env=False, timeout=5.0) as http:
            assert http.get(url).text == "ok"
            client.set_enabled("http", False)
            with pytest.raises(httpx.ConnectError):
                http.get(url)  # the pooled connection was closed; a new one is refused
            client.set_enabled("http", True)
            assert http.get(url).text == "ok"
    finally:
        http_server.shutdown()
        http_server.server_close()


# ------------------------------------------------------------------------- toxics


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_toxic_delays_round_trips(
    client: ToxiproxyClient, proxy: Proxy, stream: str
) -> None:
    latency_ms = 300
    toxic = client.add_toxic("echo", "latency", {"latency": latency_ms}, stream=stream)
    assert toxic.name == f"latency_{stream}"
    assert toxic.stream == stream
    assert toxic.toxicity == 1.0
    assert dict(toxic.attributes) == {"latency": latency_ms, "jitter": 0}
    assert client.toxics("echo") == [toxic]
    assert client.proxy("echo").toxics == (toxic,)
    assert not client.is_clean()
    with connect(proxy) as sock:
        assert roundtrip(sock) >= latency_ms / 1000
        client.remove_toxic("echo", toxic.name)
        roundtrip(sock)  # the same connection keeps working once the toxic is gone
    assert client.is_clean()


def test_latency_toxic_applies_to_already_open_connections(
    client: ToxiproxyClient, proxy: Proxy
) -> None:
    with connect(proxy) as sock:
        roundtrip(sock)
        client.add_toxic("echo", "latency", {"latency": 200}, name="late")
        assert roundtrip(sock) >= 0.2


def test_update_toxic_merges_attributes(client: ToxiproxyClient, proxy: Proxy) -> None:
    client.add_toxic("echo", "latency", {"latency": 10, "jitter": 5}, name="lag")
    updated = client.update_toxic("echo", "lag", {"latency": 250}, toxicity=1.0)
    assert dict(updated.attributes) == {"latency": 250, "jitter": 5}
    assert client.toxic("echo", "lag") == updated
    with connect(proxy) as sock:
        assert roundtrip(sock) >= (250 - 5) / 1000  # jitter is ± around the latency


def test_timeout_toxic_with_zero_blocks_until_removed(
    client: ToxiproxyClient, proxy: Proxy
) -> None:
    client.add_toxic("echo", "timeout", {"timeout": 0}, name="blackhole")
    with connect(proxy, timeout_s=0.5) as sock:
        sock.sendall(b"ping")
        with pytest.raises(TimeoutError):
            sock.recv(16)  # nothing ever comes back while the toxic is there
        client.remove_toxic("echo", "blackhole")
        sock.settimeout(5.0)
        # Measured: removing it closes the held connection; the swallowed bytes are lost.
        assert sock.recv(16) == b""
    with connect(proxy) as sock:
        roundtrip(sock)


def test_timeout_toxic_closes_the_connection_after_the_timeout(
    client: ToxiproxyClient, proxy: Proxy
) -> None:
    client.add_toxic("echo", "timeout", {"timeout": 200})
    with connect(proxy) as sock:
        started = time.monotonic()
        sock.sendall(b"ping")
        assert sock.recv(16) == b""
        assert time.monotonic() - started >= 0.2


def test_reset_removes_every_toxic_and_re_enables_every_proxy(
    client: ToxiproxyClient, proxy: Proxy, echo: EchoServer
) -> None:
    other = client.create_proxy("other", echo.address)
    client.add_toxic("echo", "latency", {"latency": 1000})
    client.add_toxic("echo", "bandwidth", {"rate": 1}, stream="upstream")
    client.add_toxic("other", "slicer", {"average_size": 1, "delay": 10})
    client.set_enabled("other", False)
    assert not client.is_clean()

    client.reset()

    assert client.is_clean()
    after = client.proxies()
    assert set(after) == {"echo", "other"}  # reset keeps the proxies themselves
    assert after["echo"] == proxy
    assert after["other"] == other
    for target in (proxy, other):
        with connect(target) as sock:
            roundtrip(sock)


# --------------------------------------------------------------------- errors


def _bad_toxicity(value: object) -> Callable[[ToxiproxyClient], object]:
    return lambda c: c.add_toxic("p", "latency", {"latency": 1}, toxicity=value)  # type: ignore[arg-type]


def _bad_attributes(toxic_type: str, attributes: object) -> Callable[[ToxiproxyClient], object]:
    return lambda c: c.add_toxic("p", toxic_type, attributes)  # type: ignore[arg-type]


INVALID_CALLS = [
    pytest.param(_bad_toxicity(1.5), r"^toxicity=1\.5 is outside \[0, 1\]$", id="toxicity-above-1"),
    pytest.param(
        _bad_toxicity(-0.1), r"toxicity=-0\.1 is outside \[0, 1\]", id="toxicity-negative"
    ),
    pytest.param(_bad_toxicity(math.nan), r"toxicity=nan is outside \[0, 1\]", id="toxicity-nan"),
    pytest.param(_bad_toxicity("high"), r"toxicity='high' is not a number", id="toxicity-string"),
    pytest.param(
        lambda c: c.add_toxic("p", "latency", {"latency": 1}, stream="sideways"),
        r"stream='sideways' is not one of 'upstream', 'downstream'",
        id="stream-unknown",
    ),
    pytest.param(
        lambda c: c.add_toxic("p", "lag", {}),
        r"type='lag' is not a Toxiproxy toxic type; use one of bandwidth, latency, limit_data",
        id="type-unknown",
    ),
    pytest.param(
        _bad_attributes("latency", {"latency": -5}),
        r"latency=-5 is negative; pass a whole number of ms >= 0",
        id="attribute-negative",
    ),
    pytest.param(
        _bad_attributes("latency", {"latncy": 100}),
        r"attribute 'latncy' is not known to a latency toxic .*; use latency, jitter",
        id="attribute-misspelt",
    ),
    pytest.param(
        _bad_attributes("latency", {"rate": 100}),
        r"attribute 'rate' is not known to a latency toxic",
        id="attribute-of-another-type",
    ),
    pytest.param(
        _bad_attributes("bandwidth", {"rate": 1.5}),
        r"rate=1\.5 is not a whole number; pass a whole number of KB/s",
        id="attribute-fraction",
    ),
    pytest.param(
        _bad_attributes("latency", {"latency": True}),
        r"latency=True is not a number",
        id="attribute-bool",
    ),
    pytest.param(
        _bad_attributes("latency", {"latency": "100ms"}),
        r"latency='100ms' is not a number",
        id="attribute-string",
    ),
    pytest.param(
        _bad_attributes("limit_data", {"bytes": 2**63}),
        r"bytes=9223372036854775808 is too large",
        id="attribute-overflows-int64",
    ),
    pytest.param(
        _bad_attributes("latency", [("latency", 1)]),
        r"attributes=\[\('latency', 1\)\] is not a mapping",
        id="attributes-not-a-mapping",
    ),
    pytest.param(
        lambda c: c.create_proxy("", "127.0.0.1:80"),
        r"name='' is not a valid name",
        id="proxy-name-empty",
    ),
    pytest.param(
        lambda c: c.create_proxy("a/b", "127.0.0.1:80"),
        r"name='a/b' is not a valid name; pass a non-empty string without '/'",
        id="proxy-name-with-slash",
    ),
    pytest.param(
        lambda c: c.create_proxy("p", "localhost"),
        r"upstream='localhost' is not a host:port address with port in \[1, 65535\]",
        id="upstream-without-port",
    ),
    pytest.param(
        lambda c: c.create_proxy("p", "127.0.0.1:0"),
        r"upstream='127\.0\.0\.1:0' is not a host:port address with port in \[1, 65535\]",
        id="upstream-port-0",
    ),
    pytest.param(
        lambda c: c.create_proxy("p", "127.0.0.1:80", listen="127.0.0.1:70000"),
        r"listen='127\.0\.0\.1:70000' is not a host:port address with port in \[0, 65535\]",
        id="listen-port-too-large",
    ),
    pytest.param(
        lambda c: c.set_enabled("p", "yes"),
        r"enabled='yes' is not a bool",
        id="enabled-not-bool",
    ),
    pytest.param(
        lambda c: c.update_toxic("p", "t", toxicity=2),
        r"toxicity=2 is outside \[0, 1\]",
        id="update-toxicity-above-1",
    ),
    pytest.param(
        lambda c: c.update_toxic("p", "t"),
        r"update_toxic\(\) got neither attributes nor toxicity",
        id="update-nothing",
    ),
    pytest.param(
        lambda c: c.remove_toxic("p", ""),
        r"toxic_name='' is not a valid name",
        id="toxic-name-empty",
    ),
]


@pytest.mark.parametrize(("call", "message"), INVALID_CALLS)
def test_invalid_arguments_fail_before_any_request(
    offline_client: ToxiproxyClient, call: Callable[[ToxiproxyClient], object], message: str
) -> None:
    # The client's API is unreachable: reaching it would raise ToxiproxyError instead.
    with pytest.raises(ConfigError, match=message) as info:
        call(offline_client)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"api_url": "127.0.0.1:8474"}, r"api_url='127\.0\.0\.1:8474'", id="no-scheme"),
        pytest.param({"api_url": "ftp://h:1"}, r"is not an http\(s\) URL", id="wrong-scheme"),
        pytest.param(
            {"api_url": "http://h:1", "timeout_s": 0},
            r"timeout_s=0 is not a positive number of seconds",
            id="timeout-zero",
        ),
    ],
)
def test_invalid_client_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ToxiproxyClient(**kwargs)  # type: ignore[arg-type]


def test_unreachable_api_says_so_and_how_to_fix_it(offline_client: ToxiproxyClient) -> None:
    with pytest.raises(ToxiproxyError) as info:
        offline_client.version()
    message = str(info.value)
    assert message.startswith(f"Toxiproxy API at {offline_client.api_url} is unreachable: ")
    assert "start it with `toxiproxy-server -host 127.0.0.1 -port" in message
    assert message.endswith("or check the URL")
    assert "\n" not in message
    assert not isinstance(info.value, ConfigError)


def test_unknown_proxy_lists_the_existing_ones(client: ToxiproxyClient, echo: EchoServer) -> None:
    client.create_proxy("beta", echo.address)
    client.create_proxy("alpha", echo.address)
    calls: list[Callable[[], object]] = [
        lambda: client.proxy("gamma"),
        lambda: client.delete_proxy("gamma"),
        lambda: client.set_enabled("gamma", False),
        lambda: client.add_toxic("gamma", "latency", {"latency": 1}),
        lambda: client.toxics("gamma"),
    ]
    for call in calls:
        with pytest.raises(UnknownTargetError, match="no proxy named 'gamma'; existing proxies: "):
            call()
        with pytest.raises(UnknownTargetError, match="existing proxies: alpha, beta;"):
            call()


def test_unknown_toxic_lists_the_existing_ones(client: ToxiproxyClient, proxy: Proxy) -> None:
    client.add_toxic("echo", "latency", {"latency": 1}, name="slow")
    with pytest.raises(UnknownTargetError, match="proxy 'echo' has no toxic named 'fast'; its "):
        client.remove_toxic("echo", "fast")
    with pytest.raises(UnknownTargetError, match=r"its toxics: slow$"):
        client.toxic("echo", "fast")


def test_server_refusals_carry_the_server_message(
    client: ToxiproxyClient, proxy: Proxy, echo: EchoServer
) -> None:
    with pytest.raises(ToxiproxyError, match="HTTP 409: proxy already exists"):
        client.create_proxy("echo", echo.address)
    client.add_toxic("echo", "latency", {"latency": 1})
    with pytest.raises(ToxiproxyError, match="HTTP 409: toxic already exists"):
        client.add_toxic("echo", "latency", {"latency": 2})
    # 192.0.2.0/24 is reserved for documentation: no local interface has it.
    with pytest.raises(ToxiproxyError, match=r"HTTP 500: .*cannot assign requested address"):
        client.create_proxy("unbindable", echo.address, listen="192.0.2.1:0")


# --------------------------------------------------------------- server lifecycle


def test_stop_terminates_the_server_and_is_idempotent(binary: Path, tmp_path: Path) -> None:
    server = ToxiproxyServer(binary, tmp_path / "toxiproxy.log").start()
    pid = server.pid
    assert server.running
    server.stop()
    assert not alive(pid)
    assert not server.running
    server.stop()
    with pytest.raises(StackError, match="is not started"):
        _ = server.client


def test_binary_that_exits_at_once_raises_and_leaves_nothing(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = write_script(
        tmp_path / "fake-toxiproxy", f"echo $$ > {pid_file}\necho 'fatal: no config'\nexit 1\n"
    )
    server = ToxiproxyServer(script, tmp_path / "toxiproxy.log")
    with pytest.raises(ProcessStartError, match="exited with code 1 before it was ready") as info:
        server.start()
    assert "fatal: no config" in "\n".join(info.value.__notes__)
    assert not alive(int(pid_file.read_text()))
    assert not server.running


def test_binary_that_never_answers_is_killed_with_its_children(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "hung-toxiproxy",
        f"/bin/sleep 60 &\necho $! > {tmp_path / 'child'}\necho $$ > {tmp_path / 'pid'}\n"
        "echo 'warming up'\nexec /bin/sleep 60\n",
    )
    server = ToxiproxyServer(script, tmp_path / "toxiproxy.log", start_timeout_s=1.0)
    with pytest.raises(
        ProcessStartError, match=r"at http://\S+ \(pid \d+\) was not ready after 1 s"
    ) as info:
        server.start()
    assert "warming up" in "\n".join(info.value.__notes__)
    assert not alive(int((tmp_path / "pid").read_text()))
    assert wait_until_gone(int((tmp_path / "child").read_text()))


def test_missing_binary_raises_process_start_error(tmp_path: Path) -> None:
    with pytest.raises(ProcessStartError, match=r"cannot start .*: No such file or directory"):
        ToxiproxyServer(tmp_path / "nope", tmp_path / "toxiproxy.log").start()


def test_port_taken_by_another_toxiproxy_is_not_mistaken_for_ours(
    binary: Path, server: ToxiproxyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A toxiproxy-server that cannot bind logs the error and keeps running, and the other
    # Toxiproxy on that port answers GET /version: readiness must check whose API it is.
    ports = iter([server.port])
    real_free_port = toxiproxy_server_module.free_port
    monkeypatch.setattr(
        toxiproxy_server_module, "free_port", lambda host: next(ports, None) or real_free_port(host)
    )
    log_path = tmp_path / "second.log"
    with ToxiproxyServer(binary, log_path) as second:
        assert second.port != server.port
        second.client.create_proxy("only-in-second", "127.0.0.1:80")
        assert "only-in-second" not in server.client.proxies()
        second.client.delete_proxy("only-in-second")
    assert "address already in use" in log_path.read_text()


def test_explicit_port_in_use_raises_port_in_use_error(
    binary: Path, server: ToxiproxyServer, tmp_path: Path
) -> None:
    with pytest.raises(PortInUseError, match=f"port {server.port} on 127.0.0.1 is already in use"):
        ToxiproxyServer(binary, tmp_path / "toxiproxy.log", port=server.port).start()


PARENT_SCRIPT = """
import sys, time
from chaosrec.adapters.toxiproxy import ToxiproxyServer
server = ToxiproxyServer(sys.argv[1], sys.argv[2]).start()
print(server.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_server_dies_with_a_killed_parent(binary: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", PARENT_SCRIPT, str(binary), str(tmp_path / "toxiproxy.log")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as parent:
        try:
            assert parent.stdout is not None
            server_pid = int(parent.stdout.readline())
            assert alive(server_pid)
        finally:
            parent.send_signal(signal.SIGKILL)  # no finally block or atexit runs in it
            parent.wait()
    assert wait_until_gone(server_pid)
