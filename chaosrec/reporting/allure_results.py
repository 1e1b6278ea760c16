"""Enrich the running test's allure-pytest result with a drill's story.

Called from chaosrec's pytest hooks while allure-pytest still holds the test open
(``pytest_runtest_makereport`` of the call phase). Uses allure's public API:
``allure.dynamic.*`` for labels, parameters and the description, ``allure.attach`` for
attachments, and allure_commons' reporter (``start_step``/``stop_step``) for the phase
steps, whose start and stop are the phases' real times, not the time of this call.

allure (the ``report`` extra) is imported only here, and only when ``--alluredir`` is on.

Everything attached or set here goes through :func:`chaosrec.core.redact.redact` first:
the result, parameters, the Chaos Toolkit journal (its configuration and secrets), the
request logs and the process log tails. :func:`scrub_results` then redacts what
allure-pytest wrote on its own (exception messages and traces, captured output,
parametrized tests' parameters) at the end of the run.
"""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

from chaosrec.core.redact import MARKER, is_secret_name, redact, redact_text
from chaosrec.reporting.summary import verdict_html
from chaosrec.slo.log import RequestLog

__all__ = [
    "CSV_GZIP_BYTES",
    "allure_enabled",
    "enrich_allure_result",
    "mark_regressed",
    "publish_history",
    "publish_summary",
    "scrub_results",
]

#: request logs bigger than this are attached gzip-compressed
CSV_GZIP_BYTES = 512 * 1024
_LOG_TAIL_BYTES = 64 * 1024


def allure_enabled(config: Any) -> bool:
    """True when allure-pytest is installed and writing results (``--alluredir``)."""
    if not getattr(config.option, "allure_report_dir", None):
        return False
    try:
        import allure  # noqa: F401
    except ImportError:
        return False
    return True


def _reporter() -> Any:
    """allure-pytest's reporter (the listener's ``allure_logger``), or None."""
    from allure_commons import plugin_manager

    for plugin in plugin_manager.get_plugins():
        reporter = getattr(plugin, "allure_logger", None)
        if reporter is not None and hasattr(reporter, "start_step"):
            return reporter
    return None


def _ms(epoch: float | None) -> int | None:
    return None if epoch is None else round(epoch * 1000)


def _phase_steps(result: dict[str, Any], status: str, status_message: str) -> None:
    from allure_commons.model2 import Parameter, StatusDetails, TestStepResult

    reporter = _reporter()
    if reporter is None:
        return
    test = reporter.get_test(None)
    if test is None:
        return
    phases = result["phases"]

    def within(ms: int | None) -> int | None:
        # the open last phase ends when pytest's call ended, a hair after allure's stop
        if ms is None or test.stop is None:
            return ms
        return min(ms, int(test.stop))

    for i, phase in enumerate(phases):
        last = i == len(phases) - 1
        step_id = str(uuid.uuid4())
        params = []
        inside = [
            f
            for f in result["faults"]
            if f.get("injecting_at") is not None
            and f["injecting_at"] < (phase["ended_at"] or float("inf"))
            and (f.get("ended_at") or float("inf")) >= phase["started_at"]
        ]
        if inside and phase["name"] in ("inject", "observe", "rollback"):
            params.append(Parameter(name="faults", value=", ".join(f["label"] for f in inside)))
        step = TestStepResult(
            name=f"{phase['name']}",
            start=_ms(phase["started_at"]),
            parameters=params,
        )
        reporter.start_step(test.uuid, step_id, step)
        if phase["name"] == "inject":
            for f in inside:
                sub_id = str(uuid.uuid4())
                sub = TestStepResult(
                    name=f"inject {f['label']}",
                    start=_ms(f["injecting_at"]),
                    parameters=[
                        Parameter(name=k, value=_parameter_value(k, v))
                        for k, v in f["params"].items()
                    ],
                )
                reporter.start_step(step_id, sub_id, sub)
                reporter.stop_step(
                    sub_id,
                    stop=_ms(f.get("started_at") or f["injecting_at"]),
                    status="passed" if f.get("started_at") else "broken",
                )
        failed_here = last and status != "passed"
        reporter.stop_step(
            step_id,
            stop=within(_ms(phase["ended_at"] or phase["started_at"])),
            status=status if failed_here else "passed",
            statusDetails=StatusDetails(message=status_message) if failed_here else None,
        )


def _parameter_value(name: str, value: Any) -> str:
    return MARKER if is_secret_name(name) else repr(redact(value))


def _csv_attachment(log: RequestLog, name: str) -> None:
    import allure

    body = redact_text(log.to_csv()).encode()  # error texts may quote a URL
    if len(body) > CSV_GZIP_BYTES:
        allure.attach(
            gzip.compress(body), name=f"{name}.csv.gz", attachment_type="application/gzip",
            extension="csv.gz",
        )  # fmt: skip
    else:
        allure.attach(body, name=f"{name}.csv", attachment_type=allure.attachment_type.CSV)


def _tail(path: Path) -> bytes:
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - _LOG_TAIL_BYTES))
        return redact(fh.read())


def enrich_allure_result(
    result: dict[str, Any],
    runs: list[Any],
    *,
    journal: dict[str, Any] | None = None,
    process_logs: list[tuple[str, Path]] = (),  # type: ignore[assignment]
    charts: list[bytes] = (),  # type: ignore[assignment]
    regions: frozenset[str] = frozenset(),
    history_chart: bytes | None = None,
) -> None:
    """Add labels, parameters, phase steps and attachments to the current Allure test.

    Credentials in any of them are redacted before anything is attached.

    :param result: :func:`chaosrec.reporting.results.drill_result`.
    :param runs: the load runs (their request logs are attached as CSV).
    :param journal: a Chaos Toolkit journal (experiment-based drills), attached as JSON.
    :param process_logs: ``(name, path)`` of logs whose tails are attached (pass them
        only when a drill failed).
    :param charts: one timeline PNG per run.
    :param regions: the recommender's regions, to tell region and replica targets from
        other proxies.
    :param history_chart: the drill's figures over its recent runs (PNG), attached as
        ``history.png`` when the drill has a history.
    """
    import allure

    result = redact(result)
    dynamic: Any = allure.dynamic  # allure's functions are untyped
    kinds = sorted({f["kind"] for f in result["faults"]}) or ["no fault"]
    dynamic.epic("DR drill")
    dynamic.feature(*kinds)
    dynamic.story(result["scenario"])
    dynamic.severity(allure.severity_level(result["severity"]))
    tags = _target_tags(result, regions)
    if tags:
        dynamic.tag(*tags)
    if result["category"]:
        dynamic.label("chaosrec_category", result["category"])
    regressed = [
        r["figure"]
        for r in ((result.get("history") or {}).get("record") or {}).get("regressions", [])
    ]
    if regressed:
        dynamic.label("chaosrec_regressed", ", ".join(regressed))
    # excluded: parameters that would otherwise change Allure's history id (and break trends)
    for i, run in enumerate(result["runs"]):
        suffix = "" if len(result["runs"]) == 1 else f" (run {i + 1})"
        dynamic.parameter(f"rate_rps{suffix}", run["rate_rps"], excluded=True)
        dynamic.parameter(f"duration_s{suffix}", run["duration_s"], excluded=True)
    for f in result["faults"]:
        for key, value in f["params"].items():
            shown = MARKER if is_secret_name(key) else redact(value)
            dynamic.parameter(f"{f['kind']}.{key}", shown, excluded=True)
    dynamic.description_html(_description(result, charts))

    status = {"passed": "passed", "skipped": "skipped", "broken": "broken"}.get(
        result["outcome"], "failed"
    )
    _phase_steps(result, status, result["message"].splitlines()[0] if result["message"] else "")

    for i, png in enumerate(charts):
        name = "timeline" if len(charts) == 1 else f"timeline (run {i + 1})"
        allure.attach(png, name=f"{name}.png", attachment_type=allure.attachment_type.PNG)
    if history_chart is not None:
        allure.attach(history_chart, name="history.png", attachment_type=allure.attachment_type.PNG)
    allure.attach(
        verdict_html(result["verdicts"], title=f"SLO verdict: {result['scenario']}"),
        name="SLO verdict",
        attachment_type=allure.attachment_type.HTML,
    )
    for i, run in enumerate(runs):
        _csv_attachment(run.log, "request log" if len(runs) == 1 else f"request log (run {i + 1})")
    if journal is not None:
        allure.attach(
            json.dumps(redact(journal), indent=2, default=str),
            name="chaostoolkit journal.json",
            attachment_type=allure.attachment_type.JSON,
        )
    for name, path in process_logs:
        try:
            body = _tail(path)
        except OSError:
            continue
        allure.attach(body, name=f"log {name}", attachment_type=allure.attachment_type.TEXT)


def _target_tags(result: dict[str, Any], regions: frozenset[str]) -> list[str]:
    """``region:R`` and ``replica:R.N`` tags for recommender targets, ``target:X`` else."""
    tags = set()
    for f in result["faults"]:
        for target in f["targets"]:
            region = target.split(".", 1)[0]
            if target == "all":
                tags.add("region:all")
            elif target in regions:
                tags.add(f"region:{target}")
            elif region in regions:
                tags.update((f"region:{region}", f"replica:{target}"))
            else:
                tags.add(f"target:{target}")
    return sorted(tags)


def _description(result: dict[str, Any], charts: list[bytes]) -> str:
    """The drill's purpose, every objective (measured vs target) and the timeline chart,
    on the result page itself: nothing to open to see what happened."""
    import base64
    import html

    parts = []
    if result["purpose"]:
        parts.append(f"<p>{html.escape(result['purpose'])}</p>")
    if result["category"]:
        parts.append(f"<p><b>{html.escape(result['category'])}</b></p>")
    rows = [r for v in result["verdicts"] for r in v["results"]]  # every objective of every verdict
    if rows:
        parts.append(
            "<table><tr><th>objective</th><th>target</th><th>measured</th><th>window</th>"
            "<th>status</th></tr>"
        )
        for r in rows:
            parts.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(r[k]))}</td>"
                    for k in ("name", "target", "measured", "window")
                )
                + f"<td><b>{html.escape(r['status'].upper())}</b></td></tr>"
            )
        parts.append("</table>")
    parts += _history_description(result)
    for png in charts:
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f"<p><img alt='timeline chart' style='max-width:100%' "
            f"src='data:image/png;base64,{data}'></p>"
        )
    return "\n".join(parts)


def _history_description(result: dict[str, Any]) -> list[str]:
    """Fault versus baseline and the comparison with the drill's history, as HTML."""
    import html

    from chaosrec.reporting.history_text import compared_rows, effect_sentences

    parts = []
    sentences = effect_sentences(result)
    if sentences:
        parts.append("<h4>Fault versus baseline</h4><ul>")
        parts += [f"<li>{html.escape(s)}</li>" for s in sentences]
        parts.append("</ul>")
    rows = compared_rows(result)
    if rows is not None:
        judged = result["history"]
        why = judged.get("not_judged")
        parts.append(
            f"<h4>Compared with its history</h4><p>{judged['compared_runs']} earlier passed "
            "run(s) of this drill on the same topology, target and faults"
            + (f"; {html.escape(why)}" if why else "")
            + "</p>"
        )
        parts.append(
            "<table><tr><th>figure</th><th>this run</th><th>history (median)</th>"
            "<th>status</th></tr>"
        )
        for figure, now, median, status in rows:
            parts.append(
                "<tr>"
                + "".join(f"<td>{html.escape(c)}</td>" for c in (figure, now, median))
                + f"<td><b>{html.escape(status)}</b></td></tr>"
            )
        parts.append("</table>")
    return parts


def mark_regressed(message: str) -> None:
    """Give the current Allure test, if it passed, ``message`` (``drill regressed: ...``),
    which puts it in the regressed category. Call it after the call phase (from the
    teardown report), when allure-pytest has set the call's status for good."""
    from allure_commons.model2 import StatusDetails

    reporter = _reporter()
    test = reporter.get_test(None) if reporter is not None else None
    if test is None or test.status != "passed":
        return
    test.statusDetails = StatusDetails(message=redact_text(message))


def publish_history(view: dict[str, Any]) -> None:
    """Attach the resilience score's trend chart to the Allure report (a global
    attachment, next to the drill summary that states the score)."""
    import allure

    trend = view.get("trend") or []
    if view.get("error") or not trend:
        return
    from chaosrec.reporting.history_charts import score_trend_png

    allure.global_attach(
        score_trend_png(trend),
        name="resilience-score.png",
        attachment_type=allure.attachment_type.PNG,
    )


def publish_summary(markdown: str, html_text: str) -> None:
    """Attach the run's drill summary to the Allure report as global attachments (rendered
    from redacted results)."""
    import allure

    allure.global_attach(markdown, name="drill-summary.md", attachment_type="text/markdown",
                         extension="md")  # fmt: skip
    allure.global_attach(
        html_text, name="drill-summary.html", attachment_type=allure.attachment_type.HTML
    )


# what allure-pytest writes as text: results, containers and text attachments
_TEXT_SUFFIXES = (".json", ".txt", ".csv", ".html", ".htm", ".md", ".properties", ".log", ".xml")


def scrub_results(results_dir: Path) -> list[Path]:
    """Redact every text file of an Allure results folder in place; the files changed.

    chaosrec redacts what it attaches before writing it; this catches what allure-pytest
    writes itself: exception messages and traces (a ``StackError`` naming a gateway URL),
    captured stdout, stderr and log, and the parameters of parametrized tests. JSON files
    are redacted as data (an Allure parameter named ``api_key`` loses its value), the
    others as text. Binary attachments (PNG, gzip) are left alone.
    """
    changed = []
    for path in sorted(Path(results_dir).glob("*")):
        if not path.is_file() or not path.name.lower().endswith(_TEXT_SUFFIXES):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        done = redact_text(text)
        if path.suffix == ".json":
            try:
                data = json.loads(text)
            except ValueError:
                pass
            else:
                shown = redact(data)
                done = text if shown == data else json.dumps(shown, ensure_ascii=False)
        if done != text:
            path.write_text(done, encoding="utf-8")
            changed.append(path)
    return changed
