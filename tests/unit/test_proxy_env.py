"""Proxy variables set for a developer's or CI's outbound traffic must not reroute
chaosrec's loopback calls: the shared control-plane client and the load generator go
straight to 127.0.0.1 with HTTP_PROXY/HTTPS_PROXY/ALL_PROXY pointing at a dead port."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from chaosrec.adapters import http as _http


@pytest.fixture
def service() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def dead_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")  # nothing listens: refused


def test_the_shared_client_ignores_proxy_variables(
    service: str, dead_proxy: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http, "_client", None)  # a client created under these variables
    try:
        assert _http.get(f"{service}/healthz", timeout=2).status_code == 200
    finally:
        fresh = _http._client
        if fresh is not None:
            fresh.close()


def test_the_load_generator_ignores_proxy_variables(service: str, dead_proxy: None) -> None:
    from chaosrec.load.generator import LoadRun

    with LoadRun(f"{service}/recommend", rate_rps=50, duration_s=0.4, timeout_s=2) as run:
        pass
    assert len(run.log) == 20
    assert run.log.ok.all(), run.log.to_csv()
