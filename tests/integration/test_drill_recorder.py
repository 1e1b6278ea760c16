"""The drill recorder follows a drill's phases and faults (against a tiny local service)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chaosrec.errors import DrillInconclusive
from chaosrec.steady_state.hypotheses import at_least, at_most

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 256  # not 5: bursts of connections on busy cores

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_phases_in_order(
    service: str, toxiproxy: Any, chaos: Any, load: Any, slo: Any, drill: Any
) -> None:
    proxy = toxiproxy.proxy("recorder-svc", upstream=service)
    with load.run(f"http://{proxy.listen}/", rate=100, duration=3) as run:
        run.wait(1)
        with chaos.latency(proxy, ms=20):
            run.wait(1)
    verdict = slo.assert_met(run, availability=0.99, p99_ms=1000, rto_s=1.0)
    names = [p.name for p in drill.phases]
    assert names == ["baseline", "inject", "observe", "rollback", "recover", "verify"]
    starts = [p.started_at for p in drill.phases]
    assert starts == sorted(starts)
    (window,) = drill.fault_windows(run.t0_epoch)
    assert 0.9 < window.start_s < 1.5 and window.end_s is not None
    assert window.touched is True  # Toxiproxy's byte counters saw the traffic
    assert verdict.status == "pass"
    assert drill.to_dict()["faults"][0]["label"] == "latency(recorder-svc, ms=20)"


def test_fault_on_an_idle_proxy_is_inconclusive(
    service: str, toxiproxy: Any, chaos: Any, load: Any, slo: Any
) -> None:
    """Traffic goes to one proxy, the fault to another: the drill proved nothing."""
    used = toxiproxy.proxy("recorder-used", upstream=service)
    idle = toxiproxy.proxy("recorder-idle", upstream=service)
    with load.run(f"http://{used.listen}/", rate=100, duration=2) as run:
        run.wait(0.5)
        with chaos.latency(idle, ms=100):
            run.wait(1)
    with pytest.raises(DrillInconclusive, match="no request went through a faulted target"):
        slo.assert_met(run, availability=0.99)


def test_steady_state_around_a_fault(
    service: str, toxiproxy: Any, chaos: Any, steady_state: Any
) -> None:
    proxy = toxiproxy.proxy("recorder-steady", upstream=service)
    hypothesis = steady_state.hypothesis(
        "the service answers fast",
        url=f"http://{proxy.listen}/",
        availability=at_least(0.99),
        p99_ms=at_most(250),  # the fault adds 400 ms; 250 leaves room for 2 busy cores
        rate=100,
        duration=1.0,
    )
    with steady_state.around(hypothesis), chaos.latency(proxy, ms=400):
        during = hypothesis.measure("during")
    assert not during.ok
    assert [r.ok for r in hypothesis.history] == [True, False, True]
