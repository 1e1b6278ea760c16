"""Report logic on synthetic request logs and drill records: no processes, no Allure CLI."""

from __future__ import annotations

import io
import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chaosrec.adapters import tools as report_tools
from chaosrec.errors import ConfigError, ToolNotFoundError
from chaosrec.reporting.build import allure_config, build_report
from chaosrec.reporting.results import (
    CATEGORIES,
    CATEGORY_ABORTED,
    CATEGORY_INCONCLUSIVE,
    CATEGORY_INFRA,
    CATEGORY_REGRESSED,
    CATEGORY_SLO,
    category_of,
    drill_result,
    run_metrics,
    severity_of,
    timeline,
)
from chaosrec.reporting.run_files import write_run_files
from chaosrec.reporting.summary import (
    summary_html,
    summary_markdown,
    terminal_rows,
    verdict_html,
)
from chaosrec.slo.log import RequestLog
from chaosrec.slo.objectives import FaultWindow, Objectives, evaluate

T0 = 1_800_000_000.0  # epoch of the synthetic runs


def region_outage_log(rate: int = 100, duration_s: float = 6.0) -> RequestLog:
    """Requests at ``rate`` rps; region-a.r0 serves half until its fault at t=2 s, which
    fails requests sent to it for 0.5 s, then everything goes to region-b.r0 (slower)
    until t=4 s; while failover is pending a few answers are degraded."""
    rows = []
    for i in range(int(rate * duration_s)):
        t = i / rate
        replica = "region-a.r0" if i % 2 == 0 else "region-b.r0"
        status, latency, degraded = 200, 0.010 + 0.001 * (i % 5), False
        if 2.0 <= t < 4.0:
            if replica == "region-a.r0" and t < 2.5:
                status, latency = 0, 0.300
            else:
                replica, latency = "region-b.r0", 0.040
            if t < 2.5 and i % 10 == 1:
                degraded = True  # the fallback answered a few while failover was pending
        rows.append((t, t, t + latency, status, replica.split(".")[0], replica, degraded, ""))
    return RequestLog.from_rows(T0, rows)


@dataclass
class RecordedRun:
    """A finished load run as the drill recorder keeps it (plain data)."""

    log: RequestLog
    rate_rps: float = 100.0
    duration_s: float = 6.0
    t0_epoch: float = T0
    url: str = "http://127.0.0.1:1/recommend"


FAULT = {
    "label": "region_outage(region-a, mode=refuse)",
    "kind": "region_outage",
    "targets": ["region-a.r0"],
    "params": {"mode": "refuse"},
    "injecting_at": T0 + 1.99,
    "started_at": T0 + 2.0,
    "ended_at": T0 + 4.0,
    "touched": True,
}


def drill_dict(verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    phases = [
        ("baseline", 0.0, 1.99),
        ("inject", 1.99, 2.0),
        ("observe", 2.0, 4.0),
        ("rollback", 4.0, 4.01),
        ("recover", 4.01, 6.0),
        ("verify", 6.0, None),
    ]
    return {
        "name": "tests/drills/test_x.py::test_region_failover",
        "phases": [
            {"name": n, "started_at": T0 + a, "ended_at": None if b is None else T0 + b}
            for n, a, b in phases
        ],
        "faults": [FAULT],
        "verdicts": verdicts,
        "notes": [],
    }


def verdict_of(log: RequestLog, **objectives: Any) -> dict[str, Any]:
    window = FaultWindow(FAULT["label"], "region_outage", ("region-a.r0",), 2.0, 4.0, True)
    return evaluate(log, Objectives(**objectives), [window], run_end_s=6.0).to_dict()


# ------------------------------------------------------------------------------ timeline


def test_timeline_buckets_match_brute_force() -> None:
    log = region_outage_log()
    tl = timeline(log, bucket_s=0.25, end_s=6.0)
    assert len(tl.t_s) == 24  # 6 s in 250 ms buckets, no empty bucket past the end
    for b in (0, 8, 9, 12, 23):
        in_bucket = (log.scheduled_s >= b * 0.25) & (log.scheduled_s < (b + 1) * 0.25)
        ok = in_bucket & log.ok
        assert tl.requests[b] == in_bucket.sum()
        assert tl.throughput_rps[b] == pytest.approx(ok.sum() / 0.25)
        # nearest rank (the SLO's definition): the ceil(q/100 * n)-th smallest latency
        latencies = sorted(log.latency_ms[ok])
        assert tl.p50_ms[b] == latencies[math.ceil(0.50 * len(latencies)) - 1]
        assert tl.p99_ms[b] == latencies[math.ceil(0.99 * len(latencies)) - 1]
        assert tl.error_rate[b] == pytest.approx(1 - ok.sum() / in_bucket.sum())
        degraded = (ok & log.degraded).sum() / ok.sum()
        assert tl.degraded_rate[b] == pytest.approx(degraded)
    assert tl.error_rate[8] == pytest.approx(13 / 25)  # t=2.0-2.25: region-a.r0's share fails
    assert tl.error_rate[12] == 0.0


def test_timeline_of_an_empty_bucket_is_nan_not_zero() -> None:
    rows = [
        (0.1, 0.1, 0.11, 200, "r", "r.0", False, ""),
        (0.9, 0.9, 0.91, 200, "r", "r.0", False, ""),
    ]
    tl = timeline(RequestLog.from_rows(T0, rows), bucket_s=0.25)
    assert tl.requests.tolist() == [1, 0, 0, 1]
    assert math.isnan(tl.p99_ms[1]) and math.isnan(tl.error_rate[1])


def test_timeline_rejects_a_bad_bucket() -> None:
    with pytest.raises(ConfigError, match="bucket_s"):
        timeline(region_outage_log(), bucket_s=0)


# ------------------------------------------------------------------------ run metrics


def test_run_metrics_measure_detection_and_recovery_from_the_fault() -> None:
    log = region_outage_log()
    m = run_metrics(log, [FAULT], latency_ms=250)
    assert m["requests"] == 600
    verdict = verdict_of(log, p99_ms=250)
    assert m["p99_ms"] == verdict["facts"]["p99_ms"]  # the same p99 as the SLO verdict
    assert m["availability"] == pytest.approx(1 - 25 / 600)  # 25 failed on region-a.r0
    # the last failed request was sent at 2.48 s; the next good one from region-b at 2.49 s
    assert m["mttd_s"] == pytest.approx(0.49, abs=1e-6)
    assert m["detected_at_s"] == pytest.approx(2.49, abs=1e-6)
    # 0.5 s windows from the fault start: [2.0, 2.5) misses 99 %, [2.5, 3.0) meets it
    assert m["rto_s"] == pytest.approx(0.5)
    assert m["recovered_at_s"] == pytest.approx(2.5)
    assert m["fault_windows_s"] == [[pytest.approx(2.0), pytest.approx(4.0)]]


def test_run_metrics_without_a_fault_have_no_mttd_or_rto() -> None:
    m = run_metrics(region_outage_log(), [])
    assert m["mttd_s"] is None and m["rto_s"] is None and m["recovered_at_s"] is None


def test_run_metrics_say_never_when_the_run_ends_before_recovery() -> None:
    rows = [(i / 100, i / 100, i / 100 + 0.01, 200 if i < 200 else 503, "r", "r.0", False, "")
            for i in range(400)]  # fmt: skip
    fault = {**FAULT, "targets": ["r.0"], "ended_at": None}
    m = run_metrics(RequestLog.from_rows(T0, rows), [fault])
    assert m["rto_s"] == "never" and m["recovered_at_s"] is None


def test_run_metrics_use_the_baseline_when_no_latency_objective_is_given() -> None:
    # latency triples during the fault but nothing fails: only latency shows the impact
    rows = [(i / 100, i / 100, i / 100 + (0.300 if 200 <= i < 300 else 0.010), 200, "r", "r.0",
             False, "") for i in range(500)]  # fmt: skip
    fault = {**FAULT, "targets": ["r.0"], "ended_at": T0 + 3.0}
    m = run_metrics(RequestLog.from_rows(T0, rows), [fault])
    assert m["good_latency_ms"] == pytest.approx(60.0)  # baseline p99 10 ms + 50 ms
    assert m["rto_s"] == pytest.approx(1.0)  # the first good window starts at t=3.0 s


# ----------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("outcome", "exc_type", "message", "category"),
    [
        ("passed", None, "", None),
        ("skipped", None, "", None),
        ("failed", "SLOViolation", "SLO breached: p99_ms measured 300 ms", CATEGORY_SLO),
        ("failed", "GuardrailTripped", "guardrail tripped: availability 0.5", CATEGORY_ABORTED),
        ("failed", "DrillInconclusive", "drill inconclusive:\n...", CATEGORY_INCONCLUSIVE),
        ("broken", "ProcessStartError", "tritonserver exited with code 1", CATEGORY_INFRA),
        ("failed", "AssertionError", "assert 1 == 2", None),
    ],
    ids=["passed", "skipped", "slo", "guardrail", "inconclusive", "infra", "plain-assert"],
)  # fmt: skip
def test_category_of(
    outcome: str, exc_type: str | None, message: str, category: str | None
) -> None:
    assert category_of(outcome, exc_type, message) == category


@pytest.mark.parametrize(
    ("status", "message", "name"),
    [
        ("failed", "errors.SLOViolation: SLO breached: p99_ms 1 ms\ntable", CATEGORY_SLO),
        ("failed", "errors.GuardrailTripped: guardrail tripped: p99 > 2 s", CATEGORY_ABORTED),
        ("broken", "guardrail tripped: availability 0.2 < 0.5", CATEGORY_ABORTED),
        ("failed", "errors.DrillInconclusive: drill inconclusive:\nx", CATEGORY_INCONCLUSIVE),
        ("broken", "chaosrec.errors.StackError: gateway did not start", CATEGORY_INFRA),
        ("failed", "AssertionError: assert 1 == 2", None),
    ],
    ids=["slo", "guardrail", "guardrail-broken", "inconclusive", "infra", "other-failure"],
)  # fmt: skip
def test_allure_categories_match_whole_messages_like_allure_does(
    status: str, message: str, name: str | None
) -> None:
    """Allure 2 matches with Java's matches() (the whole message); first match wins."""
    matched = None
    for category in CATEGORIES:
        if status not in category["matchedStatuses"]:
            continue
        regex = category.get("messageRegex")
        if regex is None or re.fullmatch(regex, message):
            matched = category["name"]
            break
    assert matched == name
    assert all("(?" not in c.get("messageRegex", "") for c in CATEGORIES)  # JS has no inline flags


@pytest.mark.parametrize(
    ("targets", "severity"),
    [([], "normal"), ([0.9999], "blocker"), ([0.99, 0.999], "critical"), ([0.99], "normal"),
     ([0.9], "minor")],
    ids=["none", "four-nines", "strictest-wins", "two-nines", "below"],
)  # fmt: skip
def test_severity_follows_the_slo_tier(targets: list[float], severity: str) -> None:
    verdicts = [
        {"results": [{"name": "availability", "target": f">= {t:g}"}, {"name": "p99_ms",
                      "target": "<= 250 ms"}]}
        for t in targets
    ]  # fmt: skip
    assert severity_of(verdicts) == severity


# ------------------------------------------------------------------- drill records


def failed_result() -> dict[str, Any]:
    log = region_outage_log()
    verdicts = [verdict_of(log, availability=0.999, p99_ms=250, rto_s=0.1)]
    assert verdicts[0]["status"] == "fail"
    return drill_result(
        drill_dict(verdicts),
        [RecordedRun(log)],
        nodeid="tests/drills/test_x.py::test_region_failover[refused]",
        outcome="failed",
        exc_type="SLOViolation",
        message="SLO breached: availability measured 0.9583 (575/600) vs target >= 0.999",
        ended_at=T0 + 6.2,
        doc="Seed practice: region DR.\n    Proves: failover.",
    )


def test_drill_result_is_json_and_carries_what_the_reports_need() -> None:
    result = failed_result()
    assert json.loads(json.dumps(result)) == result  # travels through xdist and into files
    assert result["scenario"] == "test_region_failover[refused]"
    assert result["purpose"] == "Seed practice: region DR. Proves: failover."
    assert result["category"] == CATEGORY_SLO
    assert result["severity"] == "critical"
    assert result["phases"][-1]["ended_at"] == T0 + 6.2  # the open verify phase is closed
    (run,) = result["runs"]
    assert run["rate_rps"] == 100.0 and run["requests"] == 600
    assert run["good_latency_ms"] == 250.0  # the drill's own p99 objective
    assert run["rto_s"] == pytest.approx(0.5)


def test_an_inconclusive_drill_is_shown_as_inconclusive() -> None:
    result = drill_result(
        drill_dict([]), [], nodeid="t.py::test_x", outcome="failed",
        exc_type="DrillInconclusive", message="drill inconclusive:\n...",
    )  # fmt: skip
    assert result["outcome"] == "inconclusive"
    assert result["category"] == CATEGORY_INCONCLUSIVE


# ---------------------------------------------------------------------- renderings


def test_verdict_table_shows_measured_vs_target_and_status() -> None:
    page = verdict_html(failed_result()["verdicts"], title="SLO verdict: <drill>")
    assert "&lt;drill&gt;" in page and "<drill>" not in page  # escaped
    row = re.search(r"<tr><td>availability</td>(.*?)</tr>", page)
    assert row is not None
    assert ">= 0.999" in html_unescape(row.group(1))
    assert "0.9583 (575/600)" in row.group(1)
    assert "class='fail'>FAIL" in row.group(1)
    assert "class='pass'>PASS" in page  # p99 held


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def passed_result() -> dict[str, Any]:
    log = region_outage_log()
    return drill_result(
        drill_dict([verdict_of(log, availability=0.9, p99_ms=250)]),
        [RecordedRun(log)],
        nodeid="tests/drills/test_x.py::test_single_gpu_lost",
        outcome="passed",
        doc="Seed practice: single-point DR.",
    )


def test_summary_markdown_has_the_seed_report_sections() -> None:
    text = summary_markdown(
        [passed_result(), failed_result()], {"topology": "default (2 x 2)", "model.version": "v1"}
    )
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Purpose", "## Scope", "## Scenarios", "## Timeline", "## Results",
        "## Fault versus baseline", "## Problems found", "## Suggested improvements",
    ]  # fmt: skip
    assert "- targets: region-a.r0" in text and "- topology: default (2 x 2)" in text
    assert "baseline +0.0 s → inject +2.0 s → observe +2.0 s" in text
    assert "| test_region_failover[refused] | FAILED | 0.9583 | " in text
    assert "| 0.50 s |" in text  # RTO column
    assert (
        "test_region_failover[refused]: [SLO breached] availability measured 0.9583 (575/600) "
        "vs target >= 0.999" in text
    )
    assert "- rto_s: recovery took too long" in text
    assert "test_single_gpu_lost" not in text.split("## Problems found")[1]


def test_summary_suggests_raising_the_bar_when_everything_passed() -> None:
    text = summary_markdown([passed_result()])
    assert "## Problems found\n\n- none" in text
    assert "raise the bar next time" in text


def test_summary_html_escapes_and_marks_outcomes() -> None:
    bad = failed_result()
    bad["message"] = "<script>alert(1)</script>"
    bad["verdicts"] = []
    page = summary_html([bad])
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<td class='fail'>FAILED</td>" in page


def test_terminal_rows_line_up() -> None:
    rows = terminal_rows([passed_result(), failed_result()])
    assert rows[0].split() == [
        "drill", "outcome", "verdicts", "avail", "p99", "MTTD", "RTO", "degr", "faults",
    ]  # fmt: skip
    starts = {row.index(row.split()[1]) for row in rows}
    assert len(starts) == 1  # the outcome column starts at the same place on every line
    assert rows[2].startswith("test_region_failover[refused]")
    assert "FAILED" in rows[2] and "region_outage(region-a, mode=refuse)" in rows[2]


def test_timeline_png_is_a_chart_of_the_run() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.image

    from chaosrec.reporting.charts import timeline_png

    png = timeline_png(
        region_outage_log(),
        title="test_region_failover",
        fault_windows=[(2.0, 4.0, FAULT["label"])],
        detected_at_s=2.49,
        recovered_at_s=2.5,
        end_s=6.0,
    )
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert pixels.shape[:2] == (700, 1000)
    # the fault window is shaded: inside it the lightest pixels are tinted, outside white
    row = pixels[350, :, :3]
    tinted = (row[:, 2] - row[:, 1] > 0.03) & (row.min(axis=1) > 0.85)
    # 2 s of a 6 s axis about 900 px wide: ~300 px
    assert 200 < tinted.sum() < 400


# ------------------------------------------------------------------- run-level files


def test_run_files(tmp_path: Path) -> None:
    write_run_files(tmp_path, {"model.version": "good-1", "topology": "quick"})
    props = (tmp_path / "environment.properties").read_text().splitlines()
    assert "model.version=good-1" in props and "topology=quick" in props
    names = [c["name"] for c in json.loads((tmp_path / "categories.json").read_text())]
    assert names == [
        CATEGORY_SLO, CATEGORY_ABORTED, CATEGORY_INCONCLUSIVE, CATEGORY_INFRA, CATEGORY_REGRESSED
    ]  # fmt: skip


def test_allure_config_builds_one_drill_shaped_file(tmp_path: Path) -> None:
    config = allure_config(tmp_path / "out", tmp_path / "history.jsonl")
    awesome = config["plugins"]["awesome"]["options"]  # type: ignore[index]
    assert awesome["singleFile"] is True
    assert awesome["groupBy"] == ["epic", "feature", "story"]
    assert config["historyPath"] == str(tmp_path / "history.jsonl")
    assert config["categories"] == CATEGORIES


@pytest.mark.parametrize("layout", ["empty", "inside"])
def test_build_report_refuses_bad_folders_before_running_allure(
    tmp_path: Path, layout: str
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    if layout == "empty":
        out, match = tmp_path / "out", "holds no Allure results"
    else:
        (results / "x-result.json").write_text("{}")
        out, match = results / "report", "must not be inside the results folder"
    with pytest.raises(ConfigError, match=match):
        build_report(results, out, allure=Path("/nonexistent/allure"))


# ------------------------------------------------------------------------------ tools


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No tools anywhere: empty tools dir, PATH with only our scripts."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("ALLURE_BIN", "CHROMIUM_BIN", "CHAOSREC_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHAOSREC_TOOLS_DIR", str(tmp_path / "tools"))
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_allure_is_found_in_order_env_tools_path(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert report_tools.find_allure() is None
    on_path = script(bare_env / "allure", "echo 2.30.0")
    assert report_tools.find_allure() == on_path
    pinned = report_tools.tools_dir() / f"allure-{report_tools.ALLURE_VERSION}/node_modules/.bin"
    pinned.mkdir(parents=True)
    installed = script(pinned / "allure", "echo 3.18.0")
    assert report_tools.find_allure() == installed
    monkeypatch.setenv("ALLURE_BIN", str(on_path))
    assert report_tools.find_allure() == on_path
    assert report_tools.allure_version(installed) == "3.18.0"


def test_a_bad_allure_bin_is_an_error_not_skipped(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLURE_BIN", str(bare_env / "missing"))
    with pytest.raises(ToolNotFoundError, match=r"ALLURE_BIN=.* points at a missing file"):
        report_tools.find_allure()


def test_without_npm_install_allure_says_how_to_get_it(bare_env: Path) -> None:
    with pytest.raises(ToolNotFoundError, match=r"no npm to install one.*chaosrec setup"):
        report_tools.install_allure()


def test_a_failed_npm_install_leaves_nothing_behind(bare_env: Path) -> None:
    script(bare_env / "npm", "echo 'npm ERR! 404 Not Found'; exit 1")
    with pytest.raises(Exception, match="exit code 1") as info:
        report_tools.install_allure()
    assert "404 Not Found" in "".join(getattr(info.value, "__notes__", []))
    assert list(report_tools.tools_dir().iterdir()) == []  # no half-installed folder


def test_chromium_install_explains_itself_without_root(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaosrec.adapters.tools import chromium

    monkeypatch.setattr(chromium.os, "geteuid", lambda: 1000)
    with pytest.raises(ToolNotFoundError, match="sudo apt-get install -y chromium"):
        report_tools.install_chromium()
    found = script(bare_env / "chromium", "exit 0")
    assert report_tools.install_chromium() == found  # found: nothing to install


def test_importing_the_plugin_does_not_import_allure_or_matplotlib() -> None:
    code = (
        "import sys, chaosrec.plugin, chaosrec.reporting.pytest_reporting;"
        "print(','.join(m for m in ('allure', 'allure_commons', 'matplotlib') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_chaosrec_report_without_results_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chaosrec.cli import main

    assert main(["report", str(tmp_path / "none"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no Allure results" in err[0] and "--alluredir" in err[0]
