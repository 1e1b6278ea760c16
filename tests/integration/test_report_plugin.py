"""The reporting sub-plugin from outside (pytester, no conftest), without the recommender:
the drill summary without allure-pytest, and how aborted, broken and experiment-based
drills land in Allure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaosrec.core.paths import cache_dir
from chaosrec.reporting.results import CATEGORY_ABORTED, CATEGORY_INFRA

pytestmark = pytest.mark.integration

_CACHE_DIR = str(cache_dir())


@pytest.fixture(autouse=True)
def _shared_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # pytester points HOME at a temp dir; keep using the installed Toxiproxy binary
    monkeypatch.setenv("CHAOSREC_CACHE_DIR", _CACHE_DIR)


SERVICE_DRILL = '''
import http.server
import threading

import pytest


@pytest.fixture(scope="module")
def service():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 256  # not 5: bursts of connections on busy cores

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.drill
def test_latency_breaks_their_p99(service, toxiproxy, chaos, load, slo):
    """Their service under 300 ms of added latency."""
    proxy = toxiproxy.proxy("their-service", upstream=service)
    with load.run(f"http://{proxy.listen}/", rate=50, duration=3) as run:
        run.wait(1)
        with chaos.latency(proxy, ms=300):
            run.wait(1)
    slo.assert_met(run, availability=0.99, p99_ms=100)
'''


def test_drill_summary_without_allure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_their_service=SERVICE_DRILL)
    result = pytester.runpytest_subprocess(
        "-p", "no:allure_pytest", "-p", "no:cacheprovider", "--chaosrec-report-dir=out"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*= chaosrec drills =*",
            "drill * outcome * verdicts * avail * p99 * MTTD * RTO * degr * faults",
            "test_latency_breaks_their_p99 * FAILED * fail * 1.0000 * ms * "
            "latency(their-service, ms=300)",
            "drill summary: out/drill-summary.md",
            "drill summary: out/drill-summary.html",
        ]
    )
    markdown = (pytester.path / "out" / "drill-summary.md").read_text()
    assert "- targets: their-service" in markdown
    assert "- **test_latency_breaks_their_p99**: Their service under 300 ms" in markdown
    assert "[SLO breached] p99_ms measured" in markdown and "vs target <= 100 ms" in markdown
    assert "- p99_ms: tail latency rose" in markdown
    page = (pytester.path / "out" / "drill-summary.html").read_text()
    assert "<td class='fail'>FAILED</td>" in page
    assert not list(pytester.path.glob("**/*-result.json"))  # no allure, no results


OTHER_OUTCOMES = """
import pytest

from chaosrec.errors import GuardrailTripped
from chaosrec.plugin_state import JOURNAL_KEY


@pytest.mark.drill
def test_guardrail_aborts(drill):
    with drill.phase("baseline"):
        pass
    raise GuardrailTripped("guardrail tripped: p99_ms 900.0 > 500 (stop condition)")


@pytest.mark.drill
def test_stack_breaks(drill):
    drill.enter("baseline")
    raise RuntimeError("tritonserver exited with code 1")


@pytest.mark.drill
def test_from_an_experiment(request, drill):
    drill.enter("baseline")
    request.node.stash[JOURNAL_KEY] = {"status": "completed", "deviated": False, "run": []}
"""


def _results(folder: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in folder.glob("*-result.json"):
        data = json.loads(path.read_text())
        found[data["name"]] = data
    return found


def _labels(result: dict[str, Any], name: str) -> list[str]:
    return [label["value"] for label in result["labels"] if label["name"] == name]


def test_aborted_broken_and_experiment_drills_in_allure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_outcomes=OTHER_OUTCOMES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--alluredir=res")
    result.assert_outcomes(failed=2, passed=1)
    found = _results(pytester.path / "res")

    aborted = found["test_guardrail_aborts"]
    assert aborted["status"] == "failed"
    assert "guardrail tripped: p99_ms 900.0 > 500" in aborted["statusDetails"]["message"]
    assert _labels(aborted, "chaosrec_category") == [CATEGORY_ABORTED]
    assert _labels(aborted, "feature") == ["no fault"]

    broken = found["test_stack_breaks"]
    assert broken["status"] == "broken"
    assert _labels(broken, "chaosrec_category") == [CATEGORY_INFRA]
    assert [s["name"] for s in broken["steps"]] == ["baseline"]
    assert broken["steps"][0]["status"] == "broken"

    experiment = found["test_from_an_experiment"]
    (journal,) = [a for a in experiment["attachments"] if a["name"].endswith("journal.json")]
    assert journal["type"] == "application/json"
    body = json.loads((pytester.path / "res" / journal["source"]).read_text())
    assert body == {"status": "completed", "deviated": False, "run": []}

    summary = (pytester.path / "res" / "drill-summary.md").read_text()
    assert "test_guardrail_aborts: [Drill aborted by a guardrail] guardrail tripped" in summary
    assert "test_stack_breaks: [Infrastructure error] tritonserver exited" in summary
    categories = json.loads((pytester.path / "res" / "categories.json").read_text())
    assert [c["name"] for c in categories][:2] == ["SLO breached", CATEGORY_ABORTED]
