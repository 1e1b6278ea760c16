"""Teams whose suites already use toxiproxy-python adopt chaosrec without rewriting:
its ``Proxy`` objects are fault targets, on the real Toxiproxy server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chaosrec.errors import UnknownTargetError
from chaosrec.faults.injector import Chaos

pytestmark = pytest.mark.integration


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A TCP server on loopback that echoes one line per connection."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                data = conn.recv(64)
                if data:
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


def _round_trip_s(port: int) -> float:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"ping\n")
        assert sock.recv(64) == b"ping\n"
    return time.monotonic() - started


@pytest.fixture
def tp_proxy(toxiproxy: Any, echo_server: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A proxy created with toxiproxy-python (it keeps its server address in class globals)."""
    from toxiproxy import Toxiproxy
    from toxiproxy.api import APIConsumer

    host, port = toxiproxy.api_url.removeprefix("http://").rsplit(":", 1)
    monkeypatch.setattr(APIConsumer, "host", host)
    monkeypatch.setattr(APIConsumer, "port", int(port))
    server = Toxiproxy()
    proxy = server.create(
        upstream=f"127.0.0.1:{echo_server}", name="toxiproxy-python-echo", listen="127.0.0.1:0"
    )
    yield proxy
    server.destroy(proxy)


def test_a_toxiproxy_python_proxy_is_a_fault_target(toxiproxy: Any, tp_proxy: Any) -> None:
    chaos = Chaos(toxiproxy.client)
    port = int(toxiproxy.client.proxy(tp_proxy.name).listen_port)
    assert _round_trip_s(port) < 0.2
    with chaos.latency(tp_proxy, ms=300) as fault:
        assert fault.label == "latency(toxiproxy-python-echo, ms=300)"
        assert [t.type for t in tp_proxy.toxics().values()] == ["latency"]  # it sees it too
        assert _round_trip_s(port) >= 0.3
    assert tp_proxy.toxics() == {}
    with chaos.down(tp_proxy):
        assert not toxiproxy.client.proxy(tp_proxy.name).enabled
        with pytest.raises(OSError):
            _round_trip_s(port)
    assert toxiproxy.client.proxy(tp_proxy.name).enabled
    assert _round_trip_s(port) < 0.2


def test_a_proxy_object_from_another_server_is_refused(toxiproxy: Any) -> None:
    class Stranger:
        name = "not-on-this-server"

    chaos = Chaos(toxiproxy.client)
    with pytest.raises(UnknownTargetError, match="not on the Toxiproxy server at http://"):
        chaos.latency(Stranger(), ms=10)
    assert chaos.faults == []
