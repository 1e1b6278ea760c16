"""pytest side of reporting: Allure enrichment and the drill summary (sub-plugin of
:mod:`chaosrec.plugin`).

For every test that used the ``drill`` recorder:

* its record (:func:`chaosrec.reporting.results.drill_result`) travels in
  ``report.user_properties`` as ``("chaosrec_report", dict)`` (so pytest-xdist carries it);
* with ``--alluredir`` the running Allure result gets labels, parameters, the phases as
  steps, the timeline chart, the SLO table, the request log, the Chaos Toolkit journal
  and, when the drill failed, process log tails;
* at the end of the run the drill summary is printed as a table and written as Markdown
  and HTML to ``--chaosrec-report-dir`` (default: the ``--alluredir`` folder, else none),
  and ``environment.properties`` and ``categories.json`` go into the Allure results;
* with the drill history on (``--chaosrec-history``, :mod:`chaosrec.reporting.history`),
  each drill is judged against its history as its report is made, and at the end the run
  is recorded and scored: the score, its trend, the fault-versus-baseline effects and
  the regressions go to the terminal, the drill summary, ``resilience-score.json`` and
  the Allure results; ``--chaosrec-fail-on-regression`` makes a regression fail the run.

Credentials never reach a report (:mod:`chaosrec.core.redact`): the drill record and
the environment are redacted before they are stored, every test's ``user_properties``
(which ``--junitxml`` writes out) are redacted as each report is made, the log lines of
httpx, Chaos Toolkit and chaosrec are redacted as they are logged, and at the end of the
run the Allure results folder is scrubbed of what allure-pytest wrote itself.

Option (also an ini key): ``--chaosrec-report-dir=DIR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from chaosrec.core.redact import redact
from chaosrec.plugin_state import DRILL_KEY, JOURNAL_KEY, SETTINGS_KEY

if TYPE_CHECKING:
    from chaosrec.reporting.history import RunOutcome

_RESULTS_KEY = pytest.StashKey[list[dict[str, Any]]]()
_ENV_KEY = pytest.StashKey[dict[str, str]]()
_WRITTEN_KEY = pytest.StashKey[list[Path]]()
_FILTER_KEY = pytest.StashKey[Any]()
# the regressions of a drill, for its Allure result once allure-pytest has set its status
_REGRESSED_KEY = pytest.StashKey[str]()

# loggers whose lines may carry a target's URL: httpx logs every request's URL at INFO
# (user:pass@ included), chaoslib and chaosrec's Chaos Toolkit control log to
# "chaostoolkit", the process ledger to "chaosrec"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaosrec", "chaosrec disaster-recovery drills")
    text = (
        "write the drill summary (drill-summary.md and .html) to this folder "
        "(default: the --alluredir folder, else no files)"
    )
    group.addoption("--chaosrec-report-dir", dest="chaosrec_report_dir", default=None, help=text)
    parser.addini("chaosrec_report_dir", text, default="")


def pytest_configure(config: pytest.Config) -> None:
    from chaosrec.core.redact import install_log_filter

    config.stash[_FILTER_KEY] = install_log_filter()
    config.stash[_RESULTS_KEY] = []
    config.stash[_ENV_KEY] = {}
    config.stash[_WRITTEN_KEY] = []
    config.pluginmanager.register(_DrillReports(config), "chaosrec-drill-reports")


def pytest_unconfigure(config: pytest.Config) -> None:
    from chaosrec.core.redact import remove_log_filter
    from chaosrec.reporting.history import session_history

    log_filter = config.stash.get(_FILTER_KEY, None)
    if log_filter is not None:
        remove_log_filter(log_filter)
    if SETTINGS_KEY in config.stash:
        session_history(config).close()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Open the drill history before any drill runs (a bad store stops the run here)."""
    from chaosrec.reporting.history import check_store

    check_store(session)


def _outcome(report: pytest.TestReport, call: pytest.CallInfo[None]) -> str:
    if report.passed:
        return "passed"
    if report.skipped:
        return "skipped"
    if call.excinfo is not None and not call.excinfo.errisinstance(AssertionError):
        return "broken"
    return "failed"


def _process_logs(item: pytest.Item) -> list[tuple[str, Path]]:
    """The embedded stack's process logs, named relative to its run folder."""
    target = item.funcargs.get("recsys") if hasattr(item, "funcargs") else None
    stack = getattr(target, "stack", None)
    run_dir = getattr(stack, "run_dir", None)
    if run_dir is None:
        return []
    root = Path(run_dir)
    paths = sorted(root.glob("*.log")) + sorted(root.glob("replicas/*/*.log"))
    return [(path.relative_to(root).as_posix(), path) for path in paths]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if call.when == "teardown":
        regressed = item.stash.get(_REGRESSED_KEY, None)
        if regressed is not None:
            from chaosrec.reporting.allure_results import allure_enabled, mark_regressed

            if allure_enabled(item.config):
                mark_regressed(regressed)
        return
    if call.when != "call":
        return
    try:
        _record(item, call, report)
    except Exception as err:  # noqa: BLE001 - a report must never break the drill run
        report.sections.append(
            ("chaosrec report", f"the drill's report could not be built: {err!r}")
        )


def _record(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    recorder = item.stash.get(DRILL_KEY, None)
    if recorder is None:
        return
    from chaosrec.reporting.results import drill_result

    status = _outcome(report, call)
    exc = call.excinfo.value if call.excinfo is not None else None
    doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
    runs = list(recorder.runs)
    result = drill_result(
        recorder.to_dict(),
        runs,
        nodeid=item.nodeid,
        outcome=status,
        exc_type=type(exc).__name__ if exc is not None else None,
        message=str(exc) if exc is not None else "",
        started_at=call.start,
        ended_at=call.stop,
        doc=doc,
    )
    _judge(item, result)
    result = redact(result)
    report.user_properties.append(("chaosrec_report", result))
    target = item.funcargs.get("recsys") if hasattr(item, "funcargs") else None
    if target is not None:
        from chaosrec.reporting.run_files import environment_of

        report.user_properties.append(("chaosrec_environment", environment_of(target)))

    from chaosrec.reporting.allure_results import allure_enabled

    if not allure_enabled(item.config):
        return
    from chaosrec.reporting.allure_results import enrich_allure_result
    from chaosrec.reporting.charts import timeline_png

    charts = []
    for run, row in zip(runs, result["runs"], strict=True):
        if len(run.log) == 0:
            continue
        labels = [f["label"] for f in result["faults"] if f.get("started_at") is not None]
        windows = [
            (start, end, labels[i] if i < len(labels) else "fault")
            for i, (start, end) in enumerate(row["fault_windows_s"])
        ]
        charts.append(
            timeline_png(
                run.log,
                title=f"{result['scenario']}: {row['rate_rps']:g} rps for {row['duration_s']:g} s",
                fault_windows=windows,
                detected_at_s=row["detected_at_s"],
                recovered_at_s=row["recovered_at_s"],
                end_s=row["duration_s"],
            )
        )
    enrich_allure_result(
        result,
        runs,
        journal=item.stash.get(JOURNAL_KEY, None),
        process_logs=_process_logs(item) if status != "passed" else [],
        charts=charts,
        regions=frozenset(getattr(getattr(target, "topology", None), "regions", ()) or ()),
        history_chart=_history_chart(result),
    )


def _history_chart(result: dict[str, Any]) -> bytes | None:
    """The drill's figures over its recent runs and this one, when it has a history."""
    judged = result.get("history")
    if not judged or not judged.get("recent"):
        return None
    from chaosrec.adapters.history.records import DrillRecord
    from chaosrec.drill.history import drill_figures
    from chaosrec.reporting.history_charts import drill_trend_png

    record = DrillRecord.from_dict(judged["record"])
    current = {"started_at": result["started_at"], "commit": None, "figures": drill_figures(record)}
    regressed = {r.figure for r in record.regressions}
    return drill_trend_png(result["scenario"], judged["recent"], current, regressed)


def _judge(item: pytest.Item, result: dict[str, Any]) -> None:
    """Judge a drill against its history (:mod:`chaosrec.reporting.history`): the
    judgement goes in ``result["history"]``, a regression message in the item's stash."""
    from chaosrec.reporting.history import session_history

    history = session_history(item.config)
    try:
        judged = history.judge(item, result)
    except Exception as err:  # noqa: BLE001 - the drill's report matters more
        history.error = history.error or f"judging {item.name} failed: {err!r}"
        return
    if judged is None:
        return
    result["history"] = judged
    regressions = judged["record"]["regressions"]
    if regressions and result["outcome"] == "passed":
        from chaosrec.reporting.history_text import regression_message

        item.stash[_REGRESSED_KEY] = regression_message(result)


class _DrillReports:
    """Collects every drill's record as reports arrive (on the xdist controller too, where
    the workers' reports are replayed) and writes the run's files at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        """Outermost wrapper: once every plugin (chaosrec's and the user's) has added its
        properties, redact them all, before pytest-xdist, --junitxml or Allure see them."""
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        report.user_properties[:] = redact(list(report.user_properties))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == "chaosrec_report":
                self.config.stash[_RESULTS_KEY].append(cast(dict[str, Any], value))
            elif name == "chaosrec_environment":
                self.config.stash[_ENV_KEY].update(cast(dict[str, str], value))

    @pytest.hookimpl(trylast=True)  # after allure-pytest wrote its files
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        _finish(self.config, session)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        _terminal_summary(terminalreporter, self.config)


def _report_dir(config: pytest.Config) -> Path | None:
    value = config.getoption("chaosrec_report_dir") or config.getini("chaosrec_report_dir")
    if value:
        return Path(str(value))
    allure_dir = getattr(config.option, "allure_report_dir", None)
    return Path(allure_dir) if allure_dir else None


def _finish(config: pytest.Config, session: pytest.Session) -> None:
    if hasattr(config, "workerinput"):  # xdist worker: the controller writes the files
        return
    # already redacted as they were recorded; again, since this is where they are written
    results = redact(config.stash[_RESULTS_KEY])
    environment = redact(config.stash[_ENV_KEY])
    from chaosrec.reporting.allure_results import allure_enabled
    from chaosrec.reporting.history import RunOutcome, session_history

    history = session_history(config)
    try:
        outcome = history.finish(results)
    except Exception as err:  # noqa: BLE001 - recording must never break the drill run
        history.outcome = outcome = RunOutcome(store=history.shown, error=repr(err))
    view = redact(outcome.view()) if outcome is not None else None
    if view is not None and view["score"] is not None:
        environment = {**environment, "resilience.score": f"{view['score']:.1f}/100"}
    allure_on = allure_enabled(config)
    if allure_on:
        from chaosrec.reporting.run_files import write_run_files

        write_run_files(Path(config.option.allure_report_dir), environment)
    try:
        _write_summary(config, results, environment, allure_on, view)
    finally:
        if allure_on:
            from chaosrec.reporting.allure_results import scrub_results

            scrub_results(Path(config.option.allure_report_dir))
    failed_history = view is not None and (view["regressions"] or view["error"])
    if history.fail_on_regression and failed_history and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _write_summary(
    config: pytest.Config,
    results: list[dict[str, Any]],
    environment: dict[str, str],
    allure_on: bool,
    history: dict[str, Any] | None = None,
) -> None:
    if not results:
        return
    from chaosrec.reporting.run_files import SUMMARY_HTML, SUMMARY_MD
    from chaosrec.reporting.summary import summary_html, summary_markdown

    markdown = summary_markdown(results, environment, history)
    html_text = summary_html(results, environment, history)
    files = [(SUMMARY_MD, markdown), (SUMMARY_HTML, html_text)]
    outcome = _history_outcome(config)
    if outcome is not None and outcome.run is not None:
        from chaosrec.reporting.history import score_file
        from chaosrec.reporting.run_files import SCORE_FILE

        files.append((SCORE_FILE, score_file(outcome)))  # `chaosrec report` copies it too
    out = _report_dir(config)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files:
            (out / name).write_text(text, encoding="utf-8")
            config.stash[_WRITTEN_KEY].append(out / name)
    if allure_on:
        from chaosrec.reporting.allure_results import publish_history, publish_summary

        publish_summary(markdown, html_text)
        if history is not None:
            publish_history(history)


def _history_outcome(config: pytest.Config) -> RunOutcome | None:
    """The history outcome of this session (None when off or nothing was recorded)."""
    from chaosrec.reporting.history import session_history

    return session_history(config).outcome


def _terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The drill-summary table: outcome, verdicts, availability, p99, MTTD, RTO, degraded
    share and faults of every drill, then where the summary files are."""
    results = [r for r in config.stash[_RESULTS_KEY] if r["verdicts"] or r["faults"] or r["runs"]]
    if not results:
        return
    from chaosrec.reporting.summary import terminal_rows

    terminalreporter.write_sep("=", "chaosrec drills")
    for line in terminal_rows(results):
        terminalreporter.write_line(line)
    outcome = _history_outcome(config)
    if outcome is not None:
        from chaosrec.reporting.history_text import history_lines

        for line in history_lines(redact(outcome.view())):
            terminalreporter.write_line(line)
    for path in config.stash[_WRITTEN_KEY]:
        what = "resilience score" if path.suffix == ".json" else "drill summary"
        terminalreporter.write_line(f"{what}: {path}")
