"""The resilience score: one number from 0 to 100 per run, from its drills' outcomes,
weighted by how much of the service each drill's faults took away.

**Weight (blast radius).** The widest reach of a drill's faults on the topology:

============  ======  ==========================================================
blast radius  weight  faults that reach
============  ======  ==========================================================
service       4       every replica, or every region (``"all"``, a total outage)
region        3       a whole region (a region outage, a region's links degraded)
replicas      2       several replicas, not a whole region (all but one lost)
replica       1       one replica, or one proxy or link outside the topology
none          1       nothing: no fault injected (a load spike, hostile requests)
============  ======  ==========================================================

So losing a region's drill counts three times losing one replica's: a region DR failure
takes out more of the service, more rarely, and is the one a team can least afford to
find in production.

**Credit.** ``passed`` 1, passed but **regressed** (a figure worse than its history, see
:mod:`chaosrec.slo.regression`) 0.5, ``failed`` 0 (an SLO breached, a steady state
deviated, a guardrail aborted the drill). ``broken`` (an infrastructure error),
``inconclusive`` and ``skipped`` drills say nothing about resilience: they are not
scored, and the score lists them.

**Score** = 100 x sum(weight x credit) / sum(weight) over the scored drills; None when
no drill was scored. Example: a passed region outage (3), a failed replica loss (1) and
a passed but regressed total outage (4) score 100 x (3 + 0 + 2) / 8 = 62.5.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chaosrec.core.topology import Replica, Topology
from chaosrec.errors import UnknownTargetError

__all__ = [
    "BLAST_RADII",
    "CREDIT",
    "REGRESSED_CREDIT",
    "WEIGHTS",
    "Score",
    "ScoredDrill",
    "blast_radius",
    "resilience_score",
]

#: blast radius -> weight (see the module doc)
WEIGHTS: dict[str, float] = {"service": 4.0, "region": 3.0, "replicas": 2.0, "replica": 1.0,
                             "none": 1.0}  # fmt: skip
BLAST_RADII = tuple(WEIGHTS)
#: outcome -> credit; outcomes not listed are not scored
CREDIT: dict[str, float] = {"passed": 1.0, "failed": 0.0}
#: credit of a passed drill with at least one regressed figure
REGRESSED_CREDIT = 0.5


def blast_radius(faults: Iterable[Sequence[str]], topology: Topology | None) -> str:
    """The widest reach of a drill's faults: each item is one fault's targets (replica
    ids, region names, ``"all"`` or proxy names). Without a topology, ``"all"`` is the
    service and anything else one link."""
    targets = [t for fault in faults for t in fault]
    if not targets:
        return "none"
    if "all" in targets:
        return "service"
    if topology is None:
        return "replica"
    hit: set[Replica] = set()
    for target in targets:
        try:
            hit.update(topology.resolve(target))
        except UnknownTargetError:
            continue  # a proxy outside the topology: one link
    if not hit:
        return "replica"
    if hit == set(topology.replicas):
        return "service"
    if any(set(topology.region_replicas(r)) <= hit for r in topology.regions):
        return "region"
    return "replicas" if len(hit) > 1 else "replica"


@dataclass(frozen=True)
class ScoredDrill:
    """What the score needs of one drill."""

    name: str
    outcome: str
    blast_radius: str = "replica"
    regressed: bool = False

    @property
    def weight(self) -> float:
        return WEIGHTS.get(self.blast_radius, 1.0)

    @property
    def credit(self) -> float | None:
        """The drill's credit in [0, 1], or None when it is not scored."""
        if self.outcome not in CREDIT:
            return None
        if self.outcome == "passed" and self.regressed:
            return REGRESSED_CREDIT
        return CREDIT[self.outcome]


@dataclass(frozen=True)
class Score:
    """A run's resilience score and what it rests on."""

    value: float | None  # 0-100, None when nothing was scored
    points: float  # sum of weight x credit
    weight: float  # sum of weights of the scored drills
    scored: int
    unscored: tuple[str, ...]  # "name (outcome)" of the drills left out

    def basis(self) -> str:
        """``7 drills scored; not scored: test_x (broken)``."""
        text = f"{self.scored} drill{'s' if self.scored != 1 else ''} scored"
        if self.unscored:
            text += f"; not scored: {', '.join(self.unscored)}"
        return text

    def describe(self) -> str:
        """``87.5/100 (7 drills scored; not scored: test_x (broken))``."""
        if self.value is None:
            return f"no score ({self.basis()})"
        return f"{self.value:.1f}/100 ({self.basis()})"


def resilience_score(drills: Sequence[ScoredDrill]) -> Score:
    """The run's score from its drills (see the module doc)."""
    points = weight = 0.0
    scored = 0
    unscored = []
    for drill in drills:
        credit = drill.credit
        if credit is None:
            unscored.append(f"{drill.name} ({drill.outcome})")
            continue
        points += drill.weight * credit
        weight += drill.weight
        scored += 1
    value = 100.0 * points / weight if weight else None
    return Score(value, points, weight, scored, tuple(unscored))
