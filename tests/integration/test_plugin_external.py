"""The plugin as another team uses it: installed, no conftest, their own HTTP service.

Runs pytest in a subprocess on a throwaway project (pytester), with chaosrec found
through its ``pytest11`` entry point only.
"""

from __future__ import annotations

import pytest

from chaosrec.core.paths import cache_dir

pytestmark = pytest.mark.integration

# pytester points HOME at a temp dir; keep using the Toxiproxy binary and model cache
# `make setup` installed instead of rebuilding them under the temp HOME.
_CACHE_DIR = str(cache_dir())


@pytest.fixture(autouse=True)
def _shared_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSREC_CACHE_DIR", _CACHE_DIR)


SERVICE = """
import http.server
import sys
import threading

import pytest


@pytest.fixture(scope="module")
def service():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 256  # not 5: bursts of connections on busy cores

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
"""


def test_other_service_uses_toxiproxy_chaos_load_slo(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_their_service=SERVICE
        + """
from chaosrec.errors import SLOViolation


@pytest.mark.drill
def test_latency_breaks_their_p99(service, toxiproxy, chaos, load, slo):
    proxy = toxiproxy.proxy("their-service", upstream=service)
    assert proxy.name == "their-service" and proxy.listen.startswith("127.0.0.1:")
    with load.run(f"http://{proxy.listen}/", rate=50, duration=4) as run:
        run.wait(1)
        with chaos.latency(proxy, ms=300):
            run.wait(2)
    with pytest.raises(SLOViolation, match=r"p99_ms measured .* vs target <= 100 ms"):
        slo.assert_met(run, p99_ms=100)
    slo.assert_met(run, availability=0.99)
    # nothing of the recommender was started or even imported
    assert "chaosrec.stack.stack" not in sys.modules and "torch" not in sys.modules


def test_fault_rolled_back_after_error(service, toxiproxy, chaos):
    proxy = toxiproxy.proxy("their-service", upstream=service)
    with chaos.latency(proxy, ms=50):
        chaos.down("their-service")
        raise RuntimeError("the test blew up inside a fault")


def test_server_is_clean_afterwards(toxiproxy):
    assert toxiproxy.is_clean()
    assert toxiproxy.proxies()["their-service"].enabled
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.stdout.fnmatch_lines(
        [
            "*test_latency_breaks_their_p99 PASSED*",
            "*test_fault_rolled_back_after_error FAILED*",
            "*test_server_is_clean_afterwards PASSED*",
            "*RuntimeError: the test blew up inside a fault*",
        ]
    )
    result.assert_outcomes(passed=2, failed=1)


def test_drill_marker_selects_only_drills(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mix="""
import pytest

@pytest.mark.drill
def test_a_drill():
    pass

def test_not_a_drill():
    pass
"""
    )
    result = pytester.runpytest_subprocess("-m", "drill", "--strict-markers", "-v")
    result.stdout.fnmatch_lines(["*test_a_drill PASSED*"])
    result.assert_outcomes(passed=1, deselected=1)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--chaosrec-topology=nowhere.yaml", "--chaosrec-topology='nowhere.yaml': use one of"),
        ("--chaosrec-target=missing.yaml", "--chaosrec-target='missing.yaml': use 'embedded'"),
        ("--chaosrec-toxiproxy-url=localhost:8474", "must be an http:// URL"),
        ("--chaosrec-slo-profile=none.yaml", "SLO profile file 'none.yaml' does not exist"),
    ],
    ids=["topology", "target", "toxiproxy-url", "slo-profile"],
)
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, option: str, message: str) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_unreachable_toxiproxy_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="""
def test_needs_chaos(chaos):
    chaos.down("anything")
"""
    )
    result = pytester.runpytest_subprocess("--chaosrec-toxiproxy-url=http://127.0.0.1:9")
    result.stdout.fnmatch_lines(
        ["*ToxiproxyError: Toxiproxy API at http://127.0.0.1:9 is unreachable*"]
    )
    result.assert_outcomes(errors=1)


def test_works_under_xdist_and_rolls_back_on_timeout(pytester: pytest.Pytester) -> None:
    """Two xdist workers each get their own Toxiproxy (no port clash); a test killed by
    pytest-timeout inside a fault still has the fault rolled back at teardown."""
    pytester.makepyfile(
        test_parallel_a=SERVICE
        + """

@pytest.mark.parametrize("n", range(4))
def test_each_worker_injects(service, toxiproxy, chaos, n):
    proxy = toxiproxy.proxy(f"svc-{n}", upstream=service)
    with chaos.latency(proxy, ms=10):
        assert len(toxiproxy.toxics(proxy.name)) == 1
""",
        test_parallel_b=SERVICE
        + """
import time


def test_a_warm_up(service, toxiproxy):
    # session and module fixtures are set up here, outside the timed test below
    toxiproxy.proxy("svc-timeout", upstream=service)


@pytest.mark.timeout(3)
def test_times_out_inside_a_fault(service, toxiproxy, chaos):
    proxy = toxiproxy.proxy("svc-timeout", upstream=service)
    chaos.down(proxy)
    time.sleep(30)


def test_zz_clean_after_timeout(toxiproxy):
    assert toxiproxy.is_clean()
    assert toxiproxy.proxies()["svc-timeout"].enabled
""",
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile"
    )
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(["*Timeout*"])


def test_unreachable_gateway_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", target="gateway_url: http://127.0.0.1:9\ntopology: quick\n")
    pytester.makepyfile(test_x="def test_needs_recsys(recsys):\n    pass\n")
    result = pytester.runpytest_subprocess("--chaosrec-target=target.yaml")
    result.stdout.fnmatch_lines(["*the recommender gateway at http://127.0.0.1:9 is unreachable*"])
    result.assert_outcomes(errors=1)
