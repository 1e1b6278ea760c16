"""The drill history in a pytest run (part of the reporting sub-plugin,
:mod:`chaosrec.reporting.pytest_reporting`).

Every test marked ``drill`` that used the drill recorder is a drill of the run:

* when the session has drills, the store (``--chaosrec-history``) is opened and migrated
  after collection, so a wrong URL or an unreachable server stops the run before any
  drill (exit code 4, one line);
* as each drill's report is made (on its pytest-xdist worker too), its record
  (:func:`drill_record`) is judged against its history
  (:meth:`~chaosrec.drill.history.DrillHistory.judge`) and the judgement travels in the
  drill's report dict under ``"history"``: the record, its regressions, its recent runs;
* at the end of the session (on the controller) :meth:`HistorySession.finish` records
  the run, every drill in it, in one transaction, scores it and reads the score's trend,
  for the terminal, the drill summary and the Allure results.

Recording never breaks a drill run: a store that fails at the end is reported on the
terminal (and fails the run under ``--chaosrec-fail-on-regression``, since regressions
could not be judged).
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from chaosrec.adapters.history.records import (
    DrillRecord,
    FaultRecord,
    ObjectiveRecord,
    RunRecord,
    RunSummary,
)
from chaosrec.adapters.history.url import HistoryURL
from chaosrec.drill.history import (
    DrillHistory,
    drill_figures,
    fault_signature,
    score_of,
    topology_identity,
    weighted,
)
from chaosrec.drill.score import Score
from chaosrec.errors import ChaosrecError, HistoryError
from chaosrec.plugin_state import JOURNAL_KEY, SETTINGS_KEY
from chaosrec.reporting.results import main_run
from chaosrec.slo.effects import Effect
from chaosrec.slo.regression import Regression, RegressionRule

__all__ = [
    "HistorySession",
    "RunOutcome",
    "check_store",
    "drill_record",
    "score_file",
    "session_history",
]

#: runs of the score's trend shown in reports
TREND_RUNS = 10

_SESSION_KEY = pytest.StashKey["HistorySession"]()
_WORST = ("fail", "inconclusive", "pass")


def _figure(value: Any) -> float | None:
    """A figure of a report dict: None, a number, or ``"never"`` (infinity)."""
    if value is None:
        return None
    if value == "never":
        return float("inf")
    return float(value)


def _verdict(verdicts: list[dict[str, Any]]) -> str | None:
    statuses = {v.get("status") for v in verdicts}
    return next((s for s in _WORST if s in statuses), None)


def _plain(value: Any) -> Any:
    """A pytest parameter as plain JSON data (objects become their repr)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return repr(value)


def drill_record(
    result: dict[str, Any],
    *,
    name: str | None = None,
    kind: str = "pytest",
    params: dict[str, Any] | None = None,
    topology: Any = None,
    target: str = "",
) -> DrillRecord:
    """The history record of a drill from its report dict
    (:func:`chaosrec.reporting.results.drill_result`): figures of its main run, its
    objectives, faults and fault-versus-baseline effects, weighted by blast radius.

    :param topology: the recommender's :class:`~chaosrec.core.topology.Topology`, if any.
    :param target: what the drill ran against, redacted (``"embedded stack"``, ...).
    """
    run = main_run(result)
    faults = tuple(
        FaultRecord(
            label=str(f["label"]),
            kind=str(f["kind"]),
            targets=tuple(str(t) for t in f.get("targets", ())),
            params=_plain(dict(f.get("params") or {})),
            injecting_at=f.get("injecting_at"),
            started_at=f.get("started_at"),
            ended_at=f.get("ended_at"),
            touched=f.get("touched"),
        )
        for f in result.get("faults", [])
    )
    objectives = tuple(
        ObjectiveRecord(
            name=str(r["name"]),
            target=str(r["target"]),
            status=str(r["status"]),
            value=_figure(r.get("value")),
            measured=str(r.get("measured", "")),
            span=str(r.get("window", "")),
        )
        for v in result.get("verdicts", [])
        for r in v.get("results", [])
    )
    started, ended = result.get("started_at"), result.get("ended_at")
    topology_name, topology_hash = topology_identity(topology)
    record = DrillRecord(
        drill_id=str(result["nodeid"]),
        name=name or str(result["scenario"]),
        kind=kind,
        params=params or {},
        topology=topology_name,
        topology_hash=topology_hash,
        target=target,
        signature=fault_signature(faults),
        outcome=str(result["outcome"]),
        verdict=_verdict(result.get("verdicts", [])),
        category=result.get("category"),
        started_at=started,
        duration_s=(ended - started) if started is not None and ended is not None else None,
        requests=run.get("requests"),
        answered=run.get("answered_2xx"),
        availability=_figure(run.get("availability")),
        p50_ms=_figure(run.get("p50_ms")),
        p99_ms=_figure(run.get("p99_ms")),
        degraded_share=_figure(run.get("degraded_share")),
        rto_s=_figure(run.get("rto_s")),
        mttd_s=_figure(run.get("mttd_s")),
        send_lag_p99_ms=_figure(run.get("send_lag_p99_ms")),
        objectives=objectives,
        faults=faults,
        effects=tuple(Effect.from_dict(e) for e in run.get("effects", [])),
    )
    return weighted(record, topology)


def _describe_item(item: pytest.Item) -> tuple[str, str, dict[str, Any]]:
    """``(name, kind, params)`` of a drill's test item."""
    journal = item.stash.get(JOURNAL_KEY, None)
    if journal is not None:
        title = (journal.get("experiment") or {}).get("title")
        return str(title or item.name), "experiment", {}
    kind = "pytest"
    if any(name == "chaosrec_fault_search" for name, _ in getattr(item, "user_properties", [])):
        kind = "schedule-search"
    callspec = getattr(item, "callspec", None)
    params = {str(k): _plain(v) for k, v in callspec.params.items()} if callspec else {}
    return item.name, kind, params


@dataclass
class RunOutcome:
    """What recording the session gave: the run as recorded, its score and trend, and
    the regressions found; or why it could not be recorded."""

    store: str
    run: RunRecord | None = None
    score: Score | None = None
    trend: list[RunSummary] = field(default_factory=list)
    regressions: list[tuple[str, Regression]] = field(default_factory=list)
    error: str | None = None
    #: drills judged against their history, and why the others were not (reason: count)
    judged: int = 0
    not_judged: dict[str, int] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        """Plain data for the renderers (the drill summary, the score file)."""
        trend = [
            {
                "run_id": r.run_id,
                "started_at": r.started_at,
                "commit": r.commit,
                "dirty": r.dirty,
                "score": r.score,
                "drills": r.drill_count,
            }
            for r in self.trend
        ]
        return {
            "store": self.store,
            "run_id": self.run.run_id if self.run else None,
            "commit": self.run.commit if self.run else None,
            "dirty": self.run.dirty if self.run else None,
            "score": self.score.value if self.score else None,
            "score_text": self.score.describe() if self.score else None,
            "score_basis": self.score.basis() if self.score else None,
            "trend": trend,
            "regressions": [
                {"drill": drill, "figure": r.figure, "text": r.describe()}
                for drill, r in self.regressions
            ],
            "error": self.error,
            "judged": self.judged,
            "not_judged": dict(self.not_judged),
        }


def not_judged_reason(why: str) -> str:
    """A short reason for counting: ``machine too busy``, ``too few earlier runs``, or
    ``drill failed`` (from a :class:`~chaosrec.drill.history.Judgement`'s sentence)."""
    if "too busy" in why:
        return "machine too busy"
    if why.startswith("not judged yet"):
        return "too few earlier runs"
    prefix = "not judged: the drill "
    return f"drill {why[len(prefix) :]}" if why.startswith(prefix) else why


class HistorySession:
    """The history of one pytest session: the store (opened once, lazily), the rule."""

    def __init__(self, config: pytest.Config, rule: RegressionRule | None = None) -> None:
        settings = config.stash[SETTINGS_KEY]
        self.config = config
        self.url: HistoryURL | None = settings.history
        self.fail_on_regression = settings.fail_on_regression
        self.rule = rule or settings.regression
        self.started_at = time.time()
        self.error: str | None = None
        self.outcome: RunOutcome | None = None
        self._history: DrillHistory | None = None

    @property
    def enabled(self) -> bool:
        return self.url is not None

    @property
    def shown(self) -> str:
        return self.url.shown if self.url is not None else "off"

    def open(self) -> DrillHistory | None:
        """The store, opened (and migrated) on first use; None when off or broken (the
        reason in :attr:`error`)."""
        if self._history is not None or self.url is None or self.error is not None:
            return self._history
        from chaosrec.adapters.history.store import open_store

        try:
            self._history = DrillHistory(open_store(self.url), self.rule)
        except ChaosrecError as err:
            self.error = str(err)
        return self._history

    def close(self) -> None:
        if self._history is not None:
            self._history.store.close()
            self._history = None

    def judge(self, item: pytest.Item, result: dict[str, Any]) -> dict[str, Any] | None:
        """The history part of a drill's report dict: its record with regressions and its
        recent passed runs (oldest first); None for a test that is not a drill."""
        if not self.enabled or item.get_closest_marker("drill") is None:
            return None
        history = self.open()
        if history is None:
            return None
        target = item.funcargs.get("recsys") if hasattr(item, "funcargs") else None
        name, kind, params = _describe_item(item)
        environment_target = ""
        if target is not None:
            from chaosrec.reporting.run_files import environment_of

            environment_target = environment_of(target).get("target", "")
        record = drill_record(
            result,
            name=name,
            kind=kind,
            params=params,
            topology=getattr(target, "topology", None),
            target=environment_target,
        )
        try:
            judgement = history.judge(record)
        except HistoryError as err:
            self.error = str(err)
            return None
        past = judgement.past
        record = replace(record, regressions=judgement.regressions)
        return {
            "record": record.to_dict(),
            "not_judged": judgement.not_judged,
            "compared_runs": len(past),
            "recent": [
                {
                    "started_at": p.run.started_at,
                    "commit": p.run.commit,
                    "dirty": p.run.dirty,
                    "figures": drill_figures(p.drill),
                }
                for p in reversed(past)
            ],
            "rule": {
                "runs": self.rule.runs,
                "min_runs": self.rule.min_runs,
                "k": self.rule.k,
                "busy_lag_ms": self.rule.busy_lag_ms,
            },
        }

    def finish(self, results: list[dict[str, Any]]) -> RunOutcome | None:
        """Record the session's drills as one run (one transaction), score it and read
        the score's trend; None when history is off or the session had no drill."""
        if not self.enabled:
            return None
        records = [
            DrillRecord.from_dict(r["history"]["record"]) for r in results if r.get("history")
        ]
        if not records and self.error is None:
            return None
        outcome = RunOutcome(store=self.shown)
        for result in results:
            judged = result.get("history")
            if not judged:
                continue
            if judged.get("not_judged"):
                reason = not_judged_reason(judged["not_judged"])
                outcome.not_judged[reason] = outcome.not_judged.get(reason, 0) + 1
            else:
                outcome.judged += 1
        history = self.open()
        if history is None or not records:
            outcome.error = self.error or "no drill could be judged"
            self.outcome = outcome
            return outcome
        from chaosrec.adapters.tools.git import git_revision

        revision = git_revision(Path(self.config.rootpath))
        with_topology = next((r for r in records if r.topology_hash), records[0])
        run = RunRecord(
            run_id=uuid.uuid4().hex,
            started_at=self.started_at,
            ended_at=time.time(),
            commit=revision.commit if revision else None,
            dirty=revision.dirty if revision else None,
            branch=revision.branch if revision else None,
            chaosrec_version=_version(),
            host=socket.gethostname(),
            front="pytest",
            topology=with_topology.topology,
            topology_hash=with_topology.topology_hash,
            target=with_topology.target,
            drills=tuple(records),
        )
        outcome.regressions = [(d.name, r) for d in records for r in d.regressions]
        try:
            outcome.run = history.record(run)
            outcome.score = score_of(outcome.run.drills)
            outcome.trend = history.trend(outcome.run, last=TREND_RUNS)
        except HistoryError as err:
            outcome.error = str(err)
        if self.error is not None and outcome.error is None:
            outcome.error = self.error
        self.outcome = outcome
        return outcome


def _version() -> str:
    from chaosrec import __version__

    return __version__


def session_history(config: pytest.Config) -> HistorySession:
    """This session's :class:`HistorySession` (made on first use)."""
    session = config.stash.get(_SESSION_KEY, None)
    if session is None:
        session = config.stash[_SESSION_KEY] = HistorySession(config)
    return session


def check_store(session: pytest.Session) -> None:
    """After collection: open the store now if the session holds a drill, so a bad URL or
    an unreachable server stops the run before any drill does. (A pytest-xdist controller
    collects nothing: its workers check.)"""
    history = session_history(session.config)
    if not history.enabled or session.config.option.collectonly:
        return
    if not any(item.get_closest_marker("drill") for item in session.items):
        return
    if history.open() is None:
        raise pytest.UsageError(f"--chaosrec-history={history.shown}: {history.error}")


def score_file(outcome: RunOutcome) -> str:
    """The score file's content: the score, its trend and the regressions, as JSON."""
    view = outcome.view()
    data = {
        "score": view["score"],
        "run_id": view["run_id"],
        "commit": view["commit"],
        "store": view["store"],
        "trend": [{"started_at": t["started_at"], "score": t["score"]} for t in view["trend"]],
        "regressions": view["regressions"],
        "judged": view["judged"],
        "not_judged": view["not_judged"],
        "error": view["error"],
    }
    return json.dumps(data, indent=2) + "\n"
