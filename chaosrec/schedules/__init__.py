"""Fault schedules: typed, validated, JSON-saved plans of faults over time, played for real.

Public, Hypothesis-free parts (importing this package never imports Hypothesis):

* :class:`FaultSchedule` / :class:`ScheduledFault`: the data, with JSON round trips;
* :func:`play_schedule`: plays one under open-loop load against a
  :class:`~chaosrec.drill.target.RecsysTarget` with the ``Chaos`` injector, always reverting;
* :class:`Invariants` / :func:`check_invariants`: no request lost, available while a
  region is healthy, RTO bound (built on :mod:`chaosrec.slo`);
* :data:`SEARCH_PROFILES`: ``quick`` (the drill) and ``thorough`` (on demand).

The search itself (:mod:`chaosrec.schedules.search`) and the strategies
(:mod:`chaosrec.schedules.strategies`) import Hypothesis; import them explicitly.
"""

from __future__ import annotations

from chaosrec.schedules.invariants import (
    InvariantResult,
    Invariants,
    check_invariants,
    healthy_region_mask,
)
from chaosrec.schedules.profiles import SEARCH_PROFILES, SearchProfile, search_profile
from chaosrec.schedules.runner import ScheduleRun, check_schedule, play_schedule, wait_settled
from chaosrec.schedules.schedule import FAULT_KINDS, FaultSchedule, ScheduledFault

__all__ = [
    "FAULT_KINDS",
    "SEARCH_PROFILES",
    "FaultSchedule",
    "InvariantResult",
    "Invariants",
    "ScheduleRun",
    "ScheduledFault",
    "SearchProfile",
    "check_invariants",
    "check_schedule",
    "healthy_region_mask",
    "play_schedule",
    "search_profile",
    "wait_settled",
]
