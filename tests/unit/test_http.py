"""The shared control-plane HTTP client: one per process, reused across threads."""

from __future__ import annotations

import threading

import httpx
import pytest

from chaosrec.adapters import http as _http


def test_every_thread_gets_the_same_client() -> None:
    seen: list[httpx.Client] = []
    threads = [threading.Thread(target=lambda: seen.append(_http.client())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and all(c is _http.client() for c in seen)
    assert not _http.client().is_closed


def test_errors_are_httpx_errors_with_the_given_timeout() -> None:
    # nothing listens on port 1: refused at once, raised as httpx's own error type
    with pytest.raises(httpx.ConnectError):
        _http.get("http://127.0.0.1:1/v2/health/ready", timeout=0.5)
