"""The drill history in the reports, end to end: a throwaway project's drill (a local
service behind a real Toxiproxy, 20 ms of latency injected) runs once, its run is
recorded four more times (an unchanged service's history), then runs again against a
slower service with ``--alluredir``: its SLO still passes, it is flagged regressed.

Checked: the Allure result (passed, ``drill regressed:`` message, label, category), the
drill summary and the HTML report built by the real Allure CLI, both rendered in headless
Chromium, showing the score and its trend, the fault-versus-baseline deltas with their
intervals, and the regressions.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chaosrec.adapters.history import RunRecord, open_store
from chaosrec.core.paths import cache_dir
from chaosrec.reporting.results import CATEGORY_REGRESSED

pytestmark = pytest.mark.integration

DRILLS = '''
import http.server
import os
import threading
import time

import pytest


@pytest.fixture(scope="module")
def service():
    delay_s = float(os.environ.get("SERVICE_DELAY_S", "0"))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if delay_s:
                time.sleep(delay_s)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 256

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.drill
def test_their_service_link_latency(service, toxiproxy, chaos, load, slo):
    """Their service with 20 ms added on its link still answers within 2 s."""
    proxy = toxiproxy.proxy("their-service", upstream=service)
    with load.run(f"http://{proxy.listen}/", rate=100, duration=3) as run:
        run.wait(1.2)
        with chaos.latency(proxy, ms=20):
            run.wait(1.2)
    slo.assert_met(run, availability=0.99, p99_ms=2000)
'''


#: the first effect sentence: the fault by its label, then its effect on p99
_P99_SENTENCE = (
    r"latency\(their-service, ms=20\) (added [\d.]+ ms to|took [\d.]+ ms off) p99 "
    r"\(95 % CI -?[\d.]+ to -?[\d.]+\)"
)


def _pytest(project: Path, *args: str, delay_s: float = 0.0) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CHAOSREC_CACHE_DIR": str(cache_dir()),
        "SERVICE_DELAY_S": str(delay_s),
    }
    env.pop("CHAOSREC_HISTORY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    (project / "pytest-output.txt").write_text(proc.stdout + proc.stderr)  # for a failure
    return proc


@pytest.fixture(scope="module")
def history_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    project = tmp_path_factory.mktemp("history-project")
    (project / "test_drills.py").write_text(DRILLS)
    # judged however busy the machine is: the rule's noise gate is not what is tested here
    (project / "pytest.ini").write_text("[pytest]\nchaosrec_regression_busy_lag_ms = off\n")
    store = f"sqlite:///{project / '.chaosrec' / 'history.sqlite'}"  # the default store
    first = _pytest(project, "test_drills.py")
    assert first.returncode == 0, first.stdout[-3000:]
    with open_store(store) as opened:  # four more runs of the unchanged service
        (summary,) = opened.runs()
        ((drill_id, _),) = opened.drill_names()
        (past,) = opened.drill_runs(drill_id)
        for i in range(4):
            opened.record(
                RunRecord(
                    **{**summary.__dict__, "run_id": uuid.uuid4().hex,
                       "started_at": summary.started_at - 60 * (i + 1)},
                    drills=(replace(past.drill, regressions=()),),
                )
            )  # fmt: skip
    results = project / "allure-results"
    slower = _pytest(project, f"--alluredir={results}", "test_drills.py", delay_s=0.06)
    (result,) = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    return {"proc": slower, "project": project, "results": results, "result": result}


def test_the_slower_run_passes_its_slo_and_is_flagged_regressed(
    history_run: dict[str, Any],
) -> None:
    proc = history_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:]  # regressions fail only when asked
    out = proc.stdout
    assert "test_their_service_link_latency PASSED" in out
    assert "resilience score: 50.0/100 (trend: 100.0 → 100.0 → 100.0 → 100.0 → 100.0 → " in out
    assert "  regressed: test_their_service_link_latency: p50_ms " in out
    result = history_run["result"]
    assert result["status"] == "passed"
    assert result["statusDetails"]["message"].startswith("drill regressed: ")
    labels = {label["name"]: label["value"] for label in result["labels"]}
    assert "p50_ms" in labels["chaosrec_regressed"].split(", ")
    assert "history.png" in [a["name"] for a in result["attachments"]]
    categories = json.loads((history_run["results"] / "categories.json").read_text())
    assert categories[-1]["name"] == CATEGORY_REGRESSED
    score = json.loads((history_run["results"] / "resilience-score.json").read_text())
    assert score["score"] == 50.0 and [t["score"] for t in score["trend"]][-2:] == [100.0, 50.0]


def test_the_drill_summary_renders_score_trend_deltas_and_regressions(
    history_run: dict[str, Any], installed_tool: Any
) -> None:
    from chaosrec.adapters.tools import find_chromium
    from chaosrec.reporting.browser import open_page

    chromium = installed_tool(find_chromium, "chromium")
    summary = history_run["results"] / "drill-summary.html"
    page = open_page(
        summary.resolve().as_uri(),
        wait_for=("Resilience score", "Fault versus baseline", "Compared with history"),
        size=(1400, 2000),
        chromium=chromium,
    )
    (history_run["project"] / "summary.png").write_bytes(page.png)
    text = page.text
    assert "50.0/100 (1 drill scored)" in text and "(50.0/100" not in text
    assert "Trend: 100.0 → 100.0 → 100.0 → 100.0 → 100.0 → 50.0 (this run)" in text
    assert '<svg class="trend"' in page.html  # the trend, drawn
    # the fault named, then each figure; p99 over ~120 answers per phase is nearly their
    # maximum, so its sign is noise: only the p50 shift (20 ms) is sure to be "added"
    assert re.search(_P99_SENTENCE, text), text
    assert re.search(r"added (1[5-9]|[23]\d)\.\d ms to p50 \(95 % CI ", text), text
    assert "REGRESSED (past " in text
    assert "[Regressed, SLO still met] p50_ms" in text
    assert page.errors == [] and len(page.png) > 50_000


def test_the_allure_report_shows_the_score_and_the_regression(
    history_run: dict[str, Any], installed_tool: Any
) -> None:
    from chaosrec.adapters.tools import find_allure, find_chromium
    from chaosrec.reporting.browser import check_report
    from chaosrec.reporting.build import build_report

    allure = installed_tool(find_allure, "the Allure CLI")
    chromium = installed_tool(find_chromium, "chromium")
    built = build_report(
        history_run["results"], history_run["project"] / "allure-report", allure=allure
    )
    assert built.score == 50.0 and built.score_file is not None and built.score_file.is_file()
    check = check_report(
        built.index,
        history_run["project"] / "screenshots",
        drills=["test_their_service_link_latency"],
        chromium=chromium,
    )
    assert check.problems == []  # an all-passed report: its tree opened to show the drill
    assert "resilience.score" in check.overview_text and "50.0/100" in check.overview_text
    assert "Global Attachments" in check.overview_text  # the summary and the score trend
    assert f"Category: {CATEGORY_REGRESSED}" in check.drill_text
    assert "history.png" in check.drill_text  # the drill's figures over its runs
    described = check.description_text  # rendered in the description's own frame
    assert "Fault versus baseline" in described
    assert re.search(_P99_SENTENCE, described), described
    assert "Compared with its history" in described and "REGRESSED (past " in described
