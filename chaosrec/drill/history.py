"""Drills compared over time: judge a drill against its own history, score a run, record it.

The history store (:mod:`chaosrec.adapters.history`) keeps every run; the regression rule
(:mod:`chaosrec.slo.regression`) says when a figure is worse than its history allows;
the score (:mod:`chaosrec.drill.score`) sums a run up. :class:`DrillHistory` puts them
together for every front (the pytest plugin, ``chaosrec history``):

* :meth:`DrillHistory.regressions`: the figures of one drill judged against the latest
  passed runs of the *same* drill: same ``drill_id``, same topology (by content, see
  :func:`topology_identity`), same target, same faults (:func:`fault_signature`). A
  drill whose faults differ from run to run (a fault-schedule search drawing new
  schedules) has no comparable history, so it is never flagged;
* :meth:`DrillHistory.record`: the run, scored, in one transaction;
* :meth:`DrillHistory.trend`: the scores of the latest runs against the same topology
  and target, oldest first.

Figures compared: availability, p50, p99, degraded share, RTO and MTTD of the run, and
what the fault added to p99 and p50 (fault phase minus baseline, see
:mod:`chaosrec.slo.effects`). A drill whose fault impaired nothing has no MTTD
("nothing to detect"); it counts as 0 s here, so a later run that does need detecting
is compared with that.

Example::

    history = DrillHistory(open_store(url))
    drill = replace(drill, regressions=history.regressions(drill))
    recorded = history.record(run)      # the run with its score
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from chaosrec.adapters.history.records import (
    FIGURE_COLUMNS,
    DrillRecord,
    FaultRecord,
    PastDrill,
    RunRecord,
    RunSummary,
)
from chaosrec.adapters.history.store import HistoryStore
from chaosrec.core.topology import Topology
from chaosrec.drill.score import WEIGHTS, Score, ScoredDrill, blast_radius, resilience_score
from chaosrec.slo.regression import Regression, RegressionRule

__all__ = [
    "DrillHistory",
    "Judgement",
    "drill_figures",
    "fault_signature",
    "score_of",
    "topology_identity",
    "weighted",
]


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def topology_identity(topology: Topology | None) -> tuple[str, str]:
    """``(name, hash)`` of a topology: the hash covers its regions, replica counts and
    home region, so two topologies of one name but another shape are not compared.
    ``("", "")`` without a topology."""
    if topology is None:
        return "", ""
    data = topology.to_dict()
    return str(data["name"]), _digest(data)


def fault_signature(faults: Sequence[FaultRecord]) -> str:
    """A short hash of the faults a drill injected, in order (kind, targets, parameters);
    ``""`` for none. Runs are compared only when their signatures match."""
    if not faults:
        return ""
    return _digest([[f.kind, list(f.targets), f.params] for f in faults])


#: fault-versus-baseline effects judged as figures of their own
_DELTAS = {"p99_ms": "p99_delta_ms", "p50_ms": "p50_delta_ms"}


def drill_figures(drill: DrillRecord) -> dict[str, float | None]:
    """The figures of ``drill`` the regression rule compares (see the module doc): its
    columns, and what the fault added to p99 and p50 (its effects)."""
    figures: dict[str, float | None] = {name: drill.figure(name) for name in FIGURE_COLUMNS}
    for name in _DELTAS.values():
        figures[name] = None
    for effect in drill.effects:
        if effect.metric in _DELTAS:
            figures[_DELTAS[effect.metric]] = effect.delta
    # an RTO is measured whenever a fault started during the run: then a missing MTTD
    # means the fault impaired nothing, so there was nothing to detect
    if figures["mttd_s"] is None and figures["rto_s"] is not None:
        figures["mttd_s"] = 0.0
    return figures


def weighted(drill: DrillRecord, topology: Topology | None) -> DrillRecord:
    """``drill`` with its blast radius and weight (:mod:`chaosrec.drill.score`)."""
    radius = blast_radius([f.targets for f in drill.faults if f.started_at is not None], topology)
    return replace(drill, blast_radius=radius, weight=WEIGHTS[radius])


def score_of(drills: Sequence[DrillRecord]) -> Score:
    """The resilience score of a run of ``drills`` (weights and regressions as recorded)."""
    return resilience_score(
        [
            ScoredDrill(d.name, d.outcome, d.blast_radius or "replica", bool(d.regressions))
            for d in drills
        ]
    )


@dataclass(frozen=True)
class Judgement:
    """A drill judged against its history: the figures that regressed, the runs it was
    compared with (newest first), and why it was not judged (None when it was)."""

    regressions: tuple[Regression, ...]
    past: list[PastDrill]
    not_judged: str | None = None


class DrillHistory:
    """A history store with the regression rule: judge, score and record runs."""

    def __init__(self, store: HistoryStore, rule: RegressionRule | None = None) -> None:
        self.store = store
        self.rule = rule or RegressionRule()

    def judge(self, drill: DrillRecord, *, before: float | None = None) -> Judgement:
        """The figures of ``drill`` that regressed against its latest passed runs (runs
        started before ``before`` when given), with the runs it was compared with, newest
        first. Only a drill that passed is judged (one that failed is a problem already,
        one that broke or was skipped measured nothing). A run on a machine too busy to
        judge (:meth:`RegressionRule.busy <chaosrec.slo.regression.RegressionRule.busy>`)
        is not judged, but its figures stay in the history of later runs: a busy machine
        only makes figures worse, so it can widen the baseline, never narrow it. With
        fewer than the rule's ``min_runs`` runs nothing is flagged.

        :raises HistoryError: the store cannot be read.
        """
        rule = self.rule
        past = self.store.recent(drill, limit=rule.runs, before=before, children=True)
        if drill.outcome != "passed":
            return Judgement((), past, f"not judged: the drill {drill.outcome}")
        if rule.busy(drill.send_lag_p99_ms):
            return Judgement(
                (),
                past,
                f"not judged: the machine was too busy (the load generator ran "
                f"{drill.send_lag_p99_ms:.0f} ms behind schedule at p99, over "
                f"{rule.busy_lag_ms:g} ms)",
            )
        if len(past) < rule.min_runs:
            return Judgement((), past, f"not judged yet: {len(past)} of {rule.min_runs} runs")
        history = [drill_figures(p.drill) for p in past]
        values = drill_figures(drill)
        found = rule.judge_all({name: [h[name] for h in history] for name in values}, values)
        return Judgement(tuple(found), past, None)

    def regressions(
        self, drill: DrillRecord, *, before: float | None = None
    ) -> tuple[Regression, ...]:
        """The figures of ``drill`` that regressed (see :meth:`judge`)."""
        return self.judge(drill, before=before).regressions

    def record(self, run: RunRecord) -> RunRecord:
        """Score ``run`` (:func:`score_of`) and write it in one transaction; the run as
        recorded."""
        scored = replace(run, score=score_of(run.drills).value, drill_count=len(run.drills))
        self.store.record(scored)
        return scored

    def trend(self, run: RunSummary, *, last: int = 10) -> list[RunSummary]:
        """The scores of the latest ``last`` runs against ``run``'s topology and target,
        ``run`` included if it was recorded, oldest first."""
        runs = self.store.runs(last=last, topology_hash=run.topology_hash, target=run.target)
        return runs[::-1]
