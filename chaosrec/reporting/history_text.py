"""Text renderings of the drill history: the resilience score and its trend, the
fault-versus-baseline effects, and the regressions, for the terminal, the drill summary
(Markdown and HTML) and the Allure results.

Inputs are plain data: a drill's report dict (:func:`chaosrec.reporting.results.drill_result`,
with ``"history"`` when it was judged, see :mod:`chaosrec.reporting.history`) and the
session's history view (:meth:`chaosrec.reporting.history.RunOutcome.view`). No
matplotlib here: the HTML trend is an inline SVG.
"""

from __future__ import annotations

import datetime as dt
import html
import statistics
from typing import Any

from chaosrec.adapters.history.records import DrillRecord
from chaosrec.drill.history import drill_figures
from chaosrec.drill.score import WEIGHTS
from chaosrec.reporting.results import main_run
from chaosrec.slo.regression import FIGURES, format_figure

__all__ = [
    "REGRESSED_PREFIX",
    "compared_rows",
    "compared_text",
    "effect_sentence",
    "effect_sentences",
    "history_html",
    "history_lines",
    "history_markdown",
    "regressed_figures",
    "regression_message",
    "regression_problems",
    "sparkline_svg",
    "trend_text",
]

#: how the Allure message of a drill that passed but regressed starts (its category,
#: :data:`chaosrec.reporting.results.CATEGORY_REGRESSED`, matches on it)
REGRESSED_PREFIX = "drill regressed:"

_METRIC_NAMES = {
    "p99_ms": "p99",
    "p50_ms": "p50",
    "availability": "availability",
    "degraded_share": "the degraded share",
}
#: figures shown when a drill is compared with its history, in order
_COMPARED = ("rto_s", "mttd_s", "p99_ms", "p50_ms", "p99_delta_ms", "p50_delta_ms",
             "availability", "degraded_share")  # fmt: skip


def _e(text: object) -> str:
    return html.escape(str(text))


def _utc(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


def _faults_of(result: dict[str, Any]) -> str:
    labels = [f["label"] for f in result.get("faults", []) if f.get("started_at") is not None]
    if not labels:
        return "the fault"
    return labels[0] if len(labels) == 1 else f"the {len(labels)} faults"


def effect_sentence(effect: dict[str, Any], faults: str = "the fault") -> str:
    """``region_outage(region-a, mode=refuse) added 3.1 ms to p99 (95 % CI 2.4 to 3.9)``;
    shares in percentage points (pp); ``, within noise`` when the interval holds 0. With
    ``faults=""`` the sentence has no subject (``added 3.1 ms to p99 ...``), to follow
    another one."""
    metric = effect["metric"]
    name = _METRIC_NAMES.get(metric, metric)
    delta, low, high = effect["delta"], effect["ci_low"], effect["ci_high"]
    subject = f"{faults} " if faults else ""
    if delta == 0 and low == 0 and high == 0:
        return f"{subject}left {name} unchanged"
    ci = f"{round(100 * effect['confidence'])} % CI"
    if metric.endswith("_ms"):
        amount = f"{abs(delta):.1f} ms"
        text = f"added {amount} to {name}" if delta >= 0 else f"took {amount} off {name}"
        text += f" ({ci} {low:.1f} to {high:.1f})"
    else:
        points = 100 * delta
        verb = "raised" if points >= 0 else "lowered"
        text = f"{verb} {name} by {abs(points):.2f} pp ({ci} {100 * low:+.2f} to {100 * high:+.2f})"
    if low <= 0 <= high:
        text += ", within noise"
    return subject + text


def effect_sentences(result: dict[str, Any]) -> list[str]:
    """The effects of the drill's main run (see :func:`effect_sentence`), the faults named
    in the first only."""
    faults = _faults_of(result)
    effects = main_run(result).get("effects", [])
    return [effect_sentence(e, faults if i == 0 else "") for i, e in enumerate(effects)]


def _regressions(result: dict[str, Any]) -> list[dict[str, Any]]:
    judged = result.get("history") or {}
    found: list[dict[str, Any]] = (judged.get("record") or {}).get("regressions") or []
    return found


def _describe(regression: dict[str, Any]) -> str:
    figure = regression["figure"]
    return (
        f"{figure} {format_figure(figure, regression['value'])}: median of the last "
        f"{regression['runs']} runs {format_figure(figure, regression['median'])}, "
        f"regressed past {format_figure(figure, regression['threshold'])}"
    )


def regression_message(result: dict[str, Any]) -> str:
    """The Allure message of a drill that passed but regressed (its category matches
    :data:`REGRESSED_PREFIX`)."""
    return f"{REGRESSED_PREFIX} " + "; ".join(_describe(r) for r in _regressions(result))


def regression_problems(results: list[dict[str, Any]]) -> list[str]:
    """One "Problems found" line per regressed figure."""
    lines = []
    for result in results:
        for regression in _regressions(result):  # only passed drills are judged
            lines.append(
                f"{result['scenario']}: [Regressed, SLO still met] {_describe(regression)}"
            )
    return lines


def regressed_figures(results: list[dict[str, Any]]) -> list[str]:
    """The figures that regressed in any drill, in the order found, once each."""
    seen: list[str] = []
    for result in results:
        for regression in _regressions(result):
            if regression["figure"] not in seen:
                seen.append(regression["figure"])
    return seen


def trend_text(view: dict[str, Any]) -> str:
    """``72.5 → 80.0 → 87.5 (this run)``, oldest first; ``-`` for an unscored run."""
    points = view.get("trend") or []
    if not points:
        return "-"
    parts = ["-" if p["score"] is None else f"{p['score']:.1f}" for p in points]
    if view.get("run_id") and points[-1].get("run_id") == view["run_id"]:
        parts[-1] += " (this run)"
    return " → ".join(parts)


def sparkline_svg(values: list[float | None], *, width: int = 240, height: int = 48) -> str:
    """An inline SVG line of ``values`` (0-100), the last point marked; no axes."""
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    if not known:
        return ""
    step = width / max(1, len(values) - 1)

    def xy(i: int, v: float) -> str:
        return f"{i * step:.1f},{height - 4 - (height - 8) * v / 100:.1f}"

    points = " ".join(xy(i, v) for i, v in known)
    last_i, last_v = known[-1]
    x, y = xy(last_i, last_v).split(",")
    return (
        f"<svg class='trend' role='img' aria-label='resilience score trend' width='{width}' "
        f"height='{height}' viewBox='0 0 {width} {height}'>"
        f"<rect width='{width}' height='{height}' fill='#f7f7f7'/>"
        f"<polyline fill='none' stroke='#1f6feb' stroke-width='2' points='{points}'/>"
        f"<circle cx='{x}' cy='{y}' r='3.5' fill='#1f6feb'/></svg>"
    )


def compared_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]] | None:
    """``(figure, this run, median of the history, status)`` per compared figure of a
    judged drill; None when it has no history to be compared with."""
    judged = result.get("history")
    if not judged or not judged.get("recent"):
        return None
    record = judged["record"]
    regressed = {r["figure"]: r for r in record.get("regressions") or []}
    current = drill_figures(DrillRecord.from_dict(record))
    rows = []
    for figure in _COMPARED:
        known = [
            p["figures"][figure] for p in judged["recent"] if p["figures"].get(figure) is not None
        ]
        median = statistics.median(known) if known else None
        now = current[figure]
        if now is None and median is None:
            continue
        if figure in regressed:
            status = f"REGRESSED (past {format_figure(figure, regressed[figure]['threshold'])})"
        elif judged.get("not_judged"):
            status = "not judged"
        else:
            status = "ok"
        rows.append((FIGURES[figure].label, format_figure(figure, now),
                     format_figure(figure, median), status))  # fmt: skip
    return rows


def _compared_note(result: dict[str, Any]) -> str:
    judged = result["history"]
    why = judged.get("not_judged")
    text = f"median of its last {judged['compared_runs']} passed run(s)"
    return f"{text}; {why}" if why else text


def _weights_text() -> str:
    return ", ".join(f"{name} {weight:g}" for name, weight in WEIGHTS.items())


def compared_text(view: dict[str, Any]) -> str:
    """``compared with history: 21 of 29 drills (not judged: 5 machine too busy, 3 too
    few earlier runs)``, so "regressions: none" says how much was looked at; empty when
    the view has no counts."""
    judged = view.get("judged")
    reasons: dict[str, int] = view.get("not_judged") or {}
    if judged is None:
        return ""
    total = judged + sum(reasons.values())
    text = f"compared with history: {judged} of {total} drill{'s' if total != 1 else ''}"
    if reasons:
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        text += f" (not judged: {why})"
    return text


def history_lines(view: dict[str, Any]) -> list[str]:
    """The terminal lines: the score with its trend, the regressions, where it is kept."""
    if view.get("error"):
        return [f"chaosrec: the drill history was not recorded: {view['error']}"]
    lines = []
    score = view.get("score")
    lines.append(
        f"resilience score: {'-' if score is None else f'{score:.1f}'}"
        f"/100 (trend: {trend_text(view)})"
    )
    regressions = view.get("regressions") or []
    if regressions:
        lines.append(f"regressions: {len(regressions)} (SLOs may still pass)")
        lines += [f"  regressed: {r['drill']}: {r['text']}" for r in regressions]
    else:
        lines.append("regressions: none")
    compared = compared_text(view)
    if compared:
        lines.append(compared)
    if view.get("run_id"):
        lines.append(f"drill history: run {view['run_id'][:12]} recorded in {view['store']}")
    return lines


def _score_paragraph(view: dict[str, Any]) -> str:
    if view.get("error"):
        return f"The drill history was not recorded: {view['error']}"
    text = (
        f"**{view['score_text'] or 'no score'}**. Trend over the latest runs: {trend_text(view)}."
    )
    compared = compared_text(view)
    if compared:
        text += f" {compared[0].upper()}{compared[1:]}."
    return text


def history_markdown(results: list[dict[str, Any]], view: dict[str, Any] | None) -> list[str]:
    """The summary's Markdown sections: resilience score, fault versus baseline, and the
    comparison with history (empty without history or effects)."""
    lines: list[str] = []
    if view is not None:
        lines += ["", "## Resilience score", "", _score_paragraph(view), ""]
        lines.append(
            "Each drill counts by blast radius (" + _weights_text() + "): passed 1, passed "
            "but regressed 0.5, failed 0; broken, inconclusive and skipped drills are not "
            f"scored. History: {view['store']}."
        )
    with_effects = [r for r in results if main_run(r).get("effects")]
    if with_effects:
        lines += ["", "## Fault versus baseline", ""]
        lines.append(
            "Requests while the faults were on against those before the first fault, same "
            "run; 95 % bootstrap intervals over requests."
        )
        lines.append("")
        for r in with_effects:
            lines.append(f"- **{r['scenario']}**: " + "; ".join(effect_sentences(r)))
    judged = [r for r in results if compared_rows(r) is not None]
    if judged:
        lines += ["", "## Compared with history", ""]
        lines.append("| drill | figure | this run | history | status |")
        lines.append("|---|---|---|---|---|")
        for r in judged:
            for figure, now, median, status in compared_rows(r) or []:
                lines.append(f"| {r['scenario']} | {figure} | {now} | {median} | {status} |")
        lines.append("")
        lines.append(
            "History: " + "; ".join(f"{r['scenario']}: {_compared_note(r)}" for r in judged)
        )
    return lines


def history_html(results: list[dict[str, Any]], view: dict[str, Any] | None) -> list[str]:
    """The summary's HTML sections (see :func:`history_markdown`)."""
    out: list[str] = []
    if view is not None:
        out.append("<h2>Resilience score</h2>")
        if view.get("error"):
            out.append(f"<p>The drill history was not recorded: {_e(view['error'])}</p>")
        else:
            score = view.get("score")
            out.append(
                f"<p class='score'><b>{_e('-' if score is None else f'{score:.1f}')}</b>/100 "
                f"({_e(view.get('score_basis') or '')})</p>"
            )
            trend = view.get("trend") or []
            out.append(f"<p>Trend: {_e(trend_text(view))}</p>")
            out.append(sparkline_svg([t["score"] for t in trend]))
            if trend:
                out.append("<table><tr><th>run</th><th>started (UTC)</th><th>commit</th>"
                           "<th>drills</th><th>score</th></tr>")  # fmt: skip
                for t in trend:
                    commit = (t["commit"] or "-")[:10] + ("*" if t.get("dirty") else "")
                    shown = "-" if t["score"] is None else f"{t['score']:.1f}"
                    out.append(
                        f"<tr><td>{_e(t['run_id'][:12])}</td><td>{_e(_utc(t['started_at']))}</td>"
                        f"<td>{_e(commit)}</td><td>{_e(t['drills'])}</td><td>{_e(shown)}</td></tr>"
                    )
                out.append("</table>")
        out.append(
            "<p>Each drill counts by blast radius (" + _e(_weights_text()) + "): passed 1, "
            "passed but regressed 0.5, failed 0; broken, inconclusive and skipped drills are "
            f"not scored. History: {_e(view['store'])}.</p>"
        )
    with_effects = [r for r in results if main_run(r).get("effects")]
    if with_effects:
        out.append("<h2>Fault versus baseline</h2>")
        out.append(
            "<p>Requests while the faults were on against those before the first fault, same "
            "run; 95 % bootstrap intervals over requests.</p><ul>"
        )
        for r in with_effects:
            out.append(f"<li><b>{_e(r['scenario'])}</b>: {_e('; '.join(effect_sentences(r)))}</li>")
        out.append("</ul>")
    judged = [r for r in results if compared_rows(r) is not None]
    if judged:
        out.append("<h2>Compared with history</h2><table><tr><th>drill</th><th>figure</th>"
                   "<th>this run</th><th>history</th><th>status</th></tr>")  # fmt: skip
        for r in judged:
            for figure, now, median, status in compared_rows(r) or []:
                css = " class='fail'" if status.startswith("REGRESSED") else ""
                out.append(
                    f"<tr><td>{_e(r['scenario'])}</td><td>{_e(figure)}</td><td>{_e(now)}</td>"
                    f"<td>{_e(median)}</td><td{css}>{_e(status)}</td></tr>"
                )
        out.append("</table><p>History: ")
        out.append(_e("; ".join(f"{r['scenario']}: {_compared_note(r)}" for r in judged)))
        out.append("</p>")
    return out
