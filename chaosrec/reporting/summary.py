"""Text renderings of drill results: the SLO verdict table (HTML) and the drill summary.

The drill summary follows the seeds' drill report: purpose, scope (targets), scenarios,
timeline, results per scenario (availability, p99, MTTD, RTO, degraded share), problems
found and suggested improvements. It is rendered as Markdown, as a standalone HTML page
and as rows for the pytest terminal summary, from the dicts of
:func:`chaosrec.reporting.results.drill_result` only (no allure, no matplotlib).
The Markdown and HTML renderers redact their input first (credentials in URLs and
messages, see :mod:`chaosrec.core.redact`): these are the files a team passes around.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from chaosrec.core.redact import redact
from chaosrec.reporting.history_text import (
    history_html,
    history_markdown,
    regressed_figures,
    regression_problems,
)
from chaosrec.reporting.results import main_run

__all__ = [
    "improvements",
    "problems",
    "summary_html",
    "summary_markdown",
    "terminal_rows",
    "verdict_html",
]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px}
th{background:#f3f3f3}
td.pass{background:#e3f6e3;color:#185c18;font-weight:bold}
td.fail{background:#fbe3e3;color:#8a1010;font-weight:bold}
td.inconclusive{background:#fff4d6;color:#7a5500;font-weight:bold}
""".strip()

# what to look at when an objective fails, by objective
_ADVICE = {
    "availability": "requests failed outright: add retry on another replica or region, or "
    "capacity so the survivors carry the load",
    "error_rate": "requests failed outright: add retry on another replica or region, or "
    "capacity so the survivors carry the load",
    "lost": "requests got no answer: check that failover retries before the client times out "
    "and that the degraded fallback answers when nothing else can",
    "p50_ms": "latency rose for most requests: shorten per-attempt timeouts or detect the "
    "fault sooner (health-check interval, breaker thresholds)",
    "p95_ms": "tail latency rose: shorten per-attempt timeouts, hedge slow requests or detect "
    "the fault sooner (health-check interval, breaker thresholds)",
    "p99_ms": "tail latency rose: shorten per-attempt timeouts, hedge slow requests or detect "
    "the fault sooner (health-check interval, breaker thresholds)",
    "degraded_share": "too many fallback answers: keep more healthy capacity in the other "
    "region, or fail over before falling back",
    "rto_s": "recovery took too long: check health-check interval, breaker half-open timing "
    "and replica restart time",
    "mttd_s": "detection took too long: health checks or breakers notice the fault too late",
    "recall_at_10": "answer quality dropped: guard model rollouts with a quality gate and a "
    "fast rollback",
}


def _e(text: object) -> str:
    return html.escape(str(text))


def _num(value: Any, fmt: str, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:{fmt}}{unit}"


def _utc(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def verdict_html(verdicts: list[dict[str, Any]], title: str = "") -> str:
    """The SLO verdict table(s) as a standalone HTML page: objective, target, measured,
    window, pass/fail, one table per verdict."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><style>{_STYLE}</style>"]
    parts.append(f"<title>{_e(title or 'SLO verdict')}</title></head><body>")
    if title:
        parts.append(f"<h2>{_e(title)}</h2>")
    if not verdicts:
        parts.append("<p>No SLO was evaluated in this drill.</p>")
    for i, verdict in enumerate(verdicts, 1):
        status = verdict.get("status", "?")
        parts.append(f"<h3>Verdict {i}: {_e(status.upper())}</h3>")
        parts.append(
            "<table><tr><th>objective</th><th>target</th><th>measured</th><th>window</th>"
            "<th>status</th><th>note</th></tr>"
        )
        for r in verdict.get("results", []):
            parts.append(
                f"<tr><td>{_e(r['name'])}</td><td>{_e(r['target'])}</td>"
                f"<td>{_e(r['measured'])}</td><td>{_e(r['window'])}</td>"
                f"<td class='{_e(r['status'])}'>{_e(r['status'].upper())}</td>"
                f"<td>{_e(r.get('note', ''))}</td></tr>"
            )
        parts.append("</table>")
        for reason in verdict.get("inconclusive_reasons", []):
            parts.append(f"<p><b>inconclusive:</b> {_e(reason)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _metric_cells(result: dict[str, Any]) -> list[str]:
    run = main_run(result)
    return [
        _num(run.get("availability"), ".4f"),
        _num(run.get("p99_ms"), ".1f", " ms"),
        _num(run.get("mttd_s"), ".2f", " s"),
        _num(run.get("rto_s"), ".2f", " s"),
        _num(run.get("degraded_share"), ".3f"),
    ]


def _faults_text(result: dict[str, Any]) -> str:
    return ", ".join(f["label"] for f in result.get("faults", [])) or "-"


def _verdicts_text(result: dict[str, Any]) -> str:
    return ", ".join(v["status"] for v in result.get("verdicts", [])) or "-"


def _phase_line(result: dict[str, Any]) -> str:
    phases = result.get("phases", [])
    if not phases:
        return "-"
    t0 = phases[0]["started_at"]
    return " → ".join(f"{p['name']} +{p['started_at'] - t0:.1f} s" for p in phases)


def problems(results: list[dict[str, Any]]) -> list[str]:
    """One line per problem: each failed objective (measured vs target) or other failure,
    then each figure that regressed against the drill's history (SLO met or not)."""
    found = []
    for result in results:
        if result["outcome"] in ("passed", "skipped"):
            continue
        failed = [
            r for v in result.get("verdicts", []) for r in v["results"] if r["status"] == "fail"
        ]
        label = result["category"] or result["outcome"]
        if failed:
            for r in failed:
                found.append(
                    f"{result['scenario']}: [{label}] {r['name']} measured {r['measured']} "
                    f"vs target {r['target']} ({r['window']})"
                )
        else:
            first = (result.get("message") or "").strip().splitlines()
            found.append(f"{result['scenario']}: [{label}] {first[0] if first else '-'}")
    return found + regression_problems(results)


def improvements(results: list[dict[str, Any]]) -> list[str]:
    """Suggested actions, one per kind of problem found, in the order they were found."""
    actions: list[str] = []

    def add(text: str) -> None:
        if text not in actions:
            actions.append(text)

    for result in results:
        if result["outcome"] in ("passed", "skipped"):
            continue
        for v in result.get("verdicts", []):
            for r in v["results"]:
                if r["status"] == "fail" and r["name"] in _ADVICE:
                    add(f"{r['name']}: {_ADVICE[r['name']]}")
        category = result.get("category")
        if category == "Drill aborted by a guardrail":
            add(
                "guardrail: find why the stop condition tripped before re-running the drill; "
                "the service left its safe envelope"
            )
        elif category == "Drill inconclusive":
            add(
                "inconclusive: make the fault meet traffic (right target, longer fault, more "
                "load) so the drill proves something"
            )
        elif category == "Infrastructure error":
            add(
                "infrastructure: fix the error that broke the drill (see its process logs) "
                "and run it again"
            )
    for figure in regressed_figures(results):
        advice = _ADVICE.get(figure, "compare this run's changes with the last good run's")
        add(
            f"{figure} regressed: {advice}; compare the commits in `chaosrec history` to find "
            "the change that made it worse"
        )
    if not actions and results:
        add(
            "none required by these drills: every objective held; raise the bar next time "
            "(a stricter SLO profile, a larger fault, or a new scenario from the catalog)"
        )
    return actions


def _scope(results: list[dict[str, Any]], environment: dict[str, str]) -> list[str]:
    targets = sorted({t for r in results for f in r.get("faults", []) for t in f["targets"]})
    lines = [f"targets: {', '.join(targets) or '-'}"]
    for key in ("topology", "model.version", "device", "triton.version", "toxiproxy.version"):
        if key in environment:
            lines.append(f"{key}: {environment[key]}")
    return lines


_HEADERS = ("scenario", "outcome", "availability", "p99", "MTTD", "RTO", "degraded", "faults")


def summary_markdown(
    results: list[dict[str, Any]],
    environment: dict[str, str] | None = None,
    history: dict[str, Any] | None = None,
) -> str:
    """The drill summary as Markdown (credentials redacted); with ``history`` (the
    session's :meth:`~chaosrec.reporting.history.RunOutcome.view`) also the resilience
    score and its trend, the fault-versus-baseline effects and the comparison with
    history."""
    results = redact(results)
    env = redact(environment or {})
    history = redact(history)
    started = min((r["started_at"] for r in results if r.get("started_at")), default=None)
    lines = ["# DR drill summary", ""]
    lines.append(f"Run started {_utc(started)} UTC; {len(results)} drill(s).")
    lines += ["", "## Purpose", ""]
    lines.append(
        "Check that the recommender keeps its service-level objectives while the faults "
        "below are injected, and how fast it detects them and recovers."
    )
    for r in results:
        if r.get("purpose"):
            lines.append(f"- **{r['scenario']}**: {r['purpose']}")
    lines += ["", "## Scope", ""]
    lines += [f"- {line}" for line in _scope(results, env)]
    lines += ["", "## Scenarios", ""]
    for r in results:
        lines.append(f"- **{r['scenario']}**: faults {_faults_text(r)}")
    lines += ["", "## Timeline", ""]
    for r in results:
        lines.append(f"- **{r['scenario']}** ({_utc(r.get('started_at'))} UTC): {_phase_line(r)}")
    lines += ["", "## Results", ""]
    lines.append("| " + " | ".join(_HEADERS) + " |")
    lines.append("|" + "---|" * len(_HEADERS))
    for r in results:
        cells = [r["scenario"], r["outcome"].upper(), *_metric_cells(r), _faults_text(r)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += history_markdown(results, history)
    lines += ["", "## Problems found", ""]
    lines += [f"- {p}" for p in problems(results)] or ["- none"]
    lines += ["", "## Suggested improvements", ""]
    lines += [f"- {a}" for a in improvements(results)]
    return "\n".join(lines) + "\n"


def summary_html(
    results: list[dict[str, Any]],
    environment: dict[str, str] | None = None,
    history: dict[str, Any] | None = None,
) -> str:
    """The drill summary as a standalone HTML page (credentials redacted; ``history`` as
    for :func:`summary_markdown`)."""
    results = redact(results)
    env = redact(environment or {})
    history = redact(history)
    started = min((r["started_at"] for r in results if r.get("started_at")), default=None)
    out = [f"<!doctype html><html><head><meta charset='utf-8'><style>{_STYLE}</style>"]
    out.append("<title>DR drill summary</title></head><body><h1>DR drill summary</h1>")
    out.append(f"<p>Run started {_e(_utc(started))} UTC; {len(results)} drill(s).</p>")
    out.append("<h2>Purpose</h2><p>Check that the recommender keeps its service-level ")
    out.append("objectives while the faults below are injected, and how fast it detects them ")
    out.append("and recovers.</p><ul>")
    out += [
        f"<li><b>{_e(r['scenario'])}</b>: {_e(r['purpose'])}</li>"
        for r in results
        if r.get("purpose")
    ]
    out.append("</ul><h2>Scope</h2><ul>")
    out += [f"<li>{_e(line)}</li>" for line in _scope(results, env)]
    out.append("</ul><h2>Scenarios and timeline</h2><ul>")
    out += [
        f"<li><b>{_e(r['scenario'])}</b>: faults {_e(_faults_text(r))}; "
        f"{_e(_utc(r.get('started_at')))} UTC: {_e(_phase_line(r))}</li>"
        for r in results
    ]
    out.append("</ul><h2>Results</h2><table><tr>")
    out += [f"<th>{_e(h)}</th>" for h in _HEADERS]
    out.append("</tr>")
    for r in results:
        css = {"passed": "pass", "failed": "fail", "broken": "fail"}.get(
            r["outcome"], "inconclusive"
        )
        out.append(f"<tr><td>{_e(r['scenario'])}</td>")
        out.append(f"<td class='{css}'>{_e(r['outcome'].upper())}</td>")
        out += [f"<td>{_e(c)}</td>" for c in [*_metric_cells(r), _faults_text(r)]]
        out.append("</tr>")
    out.append("</table>")
    out += history_html(results, history)
    out.append("<h2>Problems found</h2><ul>")
    out += [f"<li>{_e(p)}</li>" for p in problems(results)] or ["<li>none</li>"]
    out.append("</ul><h2>Suggested improvements</h2><ul>")
    out += [f"<li>{_e(a)}</li>" for a in improvements(results)]
    out.append("</ul></body></html>")
    return "\n".join(out)


def terminal_rows(results: list[dict[str, Any]]) -> list[str]:
    """The drill-summary table for the pytest terminal, header first."""
    rows = [("drill", "outcome", "verdicts", "avail", "p99", "MTTD", "RTO", "degr", "faults")]
    for r in results:
        a, p99, mttd, rto, degraded = _metric_cells(r)
        rows.append(
            (
                r["scenario"],
                r["outcome"].upper(),
                _verdicts_text(r),
                a,
                p99,
                mttd,
                rto,
                degraded,
                _faults_text(r),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ]
