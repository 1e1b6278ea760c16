"""A real drill on the embedded stack, reported end to end: allure-pytest results, the
drill summary, the HTML report built by the real Allure CLI, rendered in headless Chromium.

One pytest subprocess (module fixture) runs two drills on the ``quick`` topology with
``--alluredir``: one that passes and one whose impossible p99 objective breaks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chaosrec.core.paths import cache_dir
from chaosrec.reporting.results import CATEGORIES, CATEGORY_SLO

pytestmark = pytest.mark.integration

DRILLS = '''
import pytest


@pytest.mark.drill
def test_replica_gpu_lost(recsys, chaos, load, slo):
    """Losing region-a's GPU moves traffic to region-b."""
    with load.run(rate=60, duration=6) as run:
        run.wait(1.5)
        with chaos.gpu_loss("region-a.r0", mode="error"):
            run.wait(2.5)
    slo.assert_met(run, availability=0.95, p99_ms=2000)


@pytest.mark.drill
def test_impossible_p99(recsys, chaos, load, slo):
    """The same fault against an objective nobody can meet."""
    with load.run(rate=60, duration=6) as run:
        run.wait(1.5)
        with chaos.gpu_loss("region-a.r0", mode="error"):
            run.wait(2.5)
    slo.assert_met(run, availability=0.95, p99_ms=1)
'''

PHASES = ["baseline", "inject", "observe", "rollback", "recover", "verify"]


@pytest.fixture(scope="module")
def drill_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    project = tmp_path_factory.mktemp("drill-project")
    (project / "test_drills.py").write_text(DRILLS)
    results = project / "allure-results"
    env = {**os.environ, "CHAOSREC_CACHE_DIR": str(cache_dir())}
    proc = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v",
            "--chaosrec-topology=quick", f"--alluredir={results}", "test_drills.py",
        ],
        cwd=project, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    (project / "pytest-output.txt").write_text(proc.stdout + proc.stderr)  # for a failure
    by_name = {}
    for path in results.glob("*-result.json"):
        data = json.loads(path.read_text())
        by_name[data["name"]] = data
    return {"proc": proc, "results": results, "by_name": by_name, "project": project}


def _labels(result: dict[str, Any], name: str) -> list[str]:
    return [label["value"] for label in result["labels"] if label["name"] == name]


def _attachment(results: Path, result: dict[str, Any], name: str) -> Path:
    found = [a for a in result["attachments"] if a["name"] == name]
    assert found, f"no attachment {name!r}: {[a['name'] for a in result['attachments']]}"
    return results / found[0]["source"]


def test_the_drills_ran_and_the_terminal_shows_the_summary(drill_run: dict[str, Any]) -> None:
    proc = drill_run["proc"]
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:] + proc.stderr[-2000:]  # one drill failed
    assert "test_replica_gpu_lost PASSED" in out and "test_impossible_p99 FAILED" in out
    table = out.split("chaosrec drills")[1]
    assert "drill" in table and "MTTD" in table and "RTO" in table
    lines = {line.split()[0]: line for line in table.splitlines()[1:] if line.startswith("test_")}
    assert "PASSED" in lines["test_replica_gpu_lost"]
    assert "FAILED" in lines["test_impossible_p99"]
    assert "gpu_loss(region-a.r0, mode=error)" in lines["test_impossible_p99"]
    summary = drill_run["results"] / "drill-summary.md"
    assert f"drill summary: {summary}" in out
    text = summary.read_text()
    assert "## Problems found" in text
    assert "test_impossible_p99: [SLO breached] p99_ms measured" in text


def test_a_drill_result_has_phase_steps_labels_parameters_and_attachments(
    drill_run: dict[str, Any],
) -> None:
    result = drill_run["by_name"]["test_replica_gpu_lost"]
    assert result["status"] == "passed"
    steps = result["steps"]
    assert [s["name"] for s in steps] == PHASES
    times = [t for s in steps for t in (s["start"], s["stop"])]
    assert times == sorted(times)  # real, consecutive phase times
    assert result["start"] <= times[0] and times[-1] <= result["stop"]
    observe = steps[2]
    assert 2000 <= observe["stop"] - observe["start"] < 6000  # the fault held ~2.5 s
    (inject_fault,) = steps[1]["steps"]
    assert inject_fault["name"] == "inject gpu_loss(region-a.r0, mode=error)"

    assert _labels(result, "epic") == ["DR drill"]
    assert _labels(result, "feature") == ["gpu_loss"]
    assert _labels(result, "story") == ["test_replica_gpu_lost"]
    assert _labels(result, "severity") == ["minor"]  # availability >= 0.95 is a low tier
    assert {"region:region-a", "replica:region-a.r0"} <= set(_labels(result, "tag"))
    params = {p["name"]: p["value"] for p in result["parameters"]}
    assert params["rate_rps"] == "60.0" and params["duration_s"] == "6.0"
    assert params["gpu_loss.mode"] == "'error'"

    png = _attachment(drill_run["results"], result, "timeline.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    table = _attachment(drill_run["results"], result, "SLO verdict").read_text()
    assert "<td>availability</td>" in table and "class='pass'>PASS" in table
    csv_lines = _attachment(drill_run["results"], result, "request log.csv").read_text()
    assert csv_lines.startswith("scheduled_s,sent_s,latency_ms,status")
    assert len(csv_lines.splitlines()) == 1 + 360  # 60 rps x 6 s
    assert not [a for a in result["attachments"] if a["name"].startswith("log ")]


def test_a_failed_slo_is_categorised_with_measured_vs_target(drill_run: dict[str, Any]) -> None:
    result = drill_run["by_name"]["test_impossible_p99"]
    assert result["status"] == "failed"
    message = result["statusDetails"]["message"]
    assert "SLO breached: p99_ms measured" in message and "vs target <= 1 ms" in message
    assert _labels(result, "chaosrec_category") == [CATEGORY_SLO]
    assert "<td>p99_ms</td><td>&lt;= 1 ms</td>" in result["descriptionHtml"]
    assert result["steps"][-1]["name"] == "verify"
    assert result["steps"][-1]["status"] == "failed"
    logs = [a["name"] for a in result["attachments"] if a["name"].startswith("log ")]
    assert "log gateway.log" in logs  # process logs come with a failed drill
    assert "log replicas/region-a.r0/triton.log" in logs
    assert "<img alt='timeline chart'" in result["descriptionHtml"]  # the chart on the page
    categories = json.loads((drill_run["results"] / "categories.json").read_text())
    assert categories == CATEGORIES
    env = (drill_run["results"] / "environment.properties").read_text()
    for key in ("model.version=", "model.sha256=", "triton.version=", "toxiproxy.version="):
        assert key in env
    assert "topology=quick" in env and "device=" in env


def test_the_html_report_builds_and_renders_in_chromium(
    drill_run: dict[str, Any], installed_tool: Any
) -> None:
    from chaosrec.adapters.tools import find_allure, find_chromium
    from chaosrec.reporting.browser import check_report
    from chaosrec.reporting.build import build_report

    allure = installed_tool(find_allure, "the Allure CLI")
    chromium = installed_tool(find_chromium, "chromium")
    out = drill_run["project"] / "reports" / "allure-report"
    first = build_report(drill_run["results"], out, allure=allure)
    built = build_report(drill_run["results"], out, allure=allure)  # history carries over
    assert built.index == out / "index.html" and built.index.stat().st_size > 100_000
    assert built.summary_html == out / "drill-summary.html"
    assert first.history == built.history
    assert built.history is not None and len(built.history.read_text().splitlines()) == 2

    shots = drill_run["project"] / "reports" / "screenshots"
    check = check_report(
        built.index,
        shots,
        drills=["test_replica_gpu_lost", "test_impossible_p99"],
        drill="test_impossible_p99",
        chromium=chromium,
    )
    assert check.problems == []
    for png in (check.overview_png, check.drill_png):
        assert png.stat().st_size > 50_000  # a rendered page (the loading spinner is ~19 KB)
    # the failed drill's page names its category and shows measured vs target, no log needed
    assert f"Category: {CATEGORY_SLO}" in check.drill_text
    assert "p99_ms measured" in check.drill_text and "vs target" in check.drill_text


def test_chaosrec_report_prints_where_everything_is(
    drill_run: dict[str, Any], capsys: pytest.CaptureFixture[str], installed_tool: Any
) -> None:
    from chaosrec.adapters.tools import find_allure
    from chaosrec.cli import main

    installed_tool(find_allure, "the Allure CLI")
    out = drill_run["project"] / "cli-report"
    assert main(["report", str(drill_run["results"]), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"HTML report: {out / 'index.html'} (Allure 3.")
    assert lines[1:] == [
        f"drill summary: {out / 'drill-summary.html'}",
        f"drill summary: {out / 'drill-summary.md'}",
        # one drill passed, one failed, each on one replica: the run's history score
        f"resilience score: 50.0/100 ({out / 'resilience-score.json'})",
    ]
    assert (out / "index.html").is_file() and (out / "drill-summary.md").is_file()
