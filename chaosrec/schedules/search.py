"""Search the fault space with Hypothesis for the smallest schedule that breaks an invariant.

:func:`search_schedules` lets Hypothesis draw schedules (:mod:`chaosrec.schedules.strategies`),
plays each one for real (``play``: a schedule in, a judged
:class:`~chaosrec.schedules.runner.ScheduleRun` out), and, when a run violates an
invariant, lets Hypothesis shrink it to the smallest schedule that still does. That
minimal schedule is saved as JSON (replay it with :func:`replay_schedule`, or pass it
back through ``replay=`` so the next search tries it first) and returned in a
:class:`SearchResult`; :meth:`SearchResult.raise_if_failed` turns it into a readable
:class:`ScheduleViolation`.

Hypothesis settings come from the loaded profile (so ``derandomize`` in CI applies)
with ``deadline=None``, the too-slow health checks off, and no example database: the
saved JSON file is the replay mechanism, and a database would carry a failure found
under a weakened policy into the healthy drill.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosrec.core.topology import Topology
from chaosrec.errors import (
    ConfigError,
    MissingExtraError,
    ScheduleViolation,
    SteadyStateDeviated,
)
from chaosrec.schedules.profiles import SearchProfile
from chaosrec.schedules.runner import ScheduleRun
from chaosrec.schedules.schedule import FaultSchedule
from chaosrec.schedules.strategies import fault_schedules

try:
    from hypothesis import HealthCheck, Phase, example, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis.errors import Flaky
except ImportError as err:  # pragma: no cover - hypothesis ships with chaosrec[search]
    raise MissingExtraError("the fault-schedule search", "search", "hypothesis") from err

__all__ = [
    "ScheduleViolation",
    "SearchResult",
    "record_search",
    "replay_schedule",
    "search_schedules",
]

Play = Callable[[FaultSchedule], ScheduleRun]


class _Violated(Exception):
    def __init__(self, run: ScheduleRun) -> None:
        super().__init__("\n".join(r.line() for r in run.violated))
        self.run = run


@dataclass
class SearchResult:
    """What the search did: every run played, and the minimal failing one if any."""

    profile: SearchProfile
    runs: list[ScheduleRun] = field(default_factory=list)
    minimal: ScheduleRun | None = None
    path: Path | None = None
    seconds: float = 0.0
    #: set when the minimal failure did not fail again on Hypothesis' final replay
    unreliable: bool = False
    #: faults dropped after Hypothesis' shrinking because the failure did not need them
    pruned: int = 0
    #: runs spent shrinking (counted from the first failure) and whether the budget ran out
    shrink_runs: int = 0
    shrink_budget_hit: bool = False
    #: violations that did not happen again on replay (noise, not counted as failures)
    unconfirmed: int = 0
    #: the steady-state run played before the search (None: not played)
    baseline: ScheduleRun | None = None

    @property
    def failed(self) -> bool:
        return self.minimal is not None

    def message(self) -> str:
        """The minimal failing schedule, one line per fault, then what it broke."""
        if self.minimal is None:
            noise = (
                f"; {self.unconfirmed} violation(s) did not reproduce on replay"
                if self.unconfirmed
                else ""
            )
            return (
                f"no invariant broken by {len(self.runs)} fault schedule run(s) "
                f"(profile {self.profile.name}, {self.seconds:.0f} s{noise})"
            )
        run = self.minimal
        lines = [
            f"minimal failing fault schedule (found by Hypothesis in {len(self.runs)} "
            f"schedule runs, {self.seconds:.0f} s, profile {self.profile.name}):",
            run.schedule.describe(),
            "broken invariants:",
            *(f"  - {r.line()}" for r in run.violated),
        ]
        if self.shrink_budget_hit:
            lines.append(
                f"(shrinking stopped after its budget of {self.profile.shrink_runs} runs; "
                "a longer search may find a smaller schedule)"
            )
        if self.pruned:
            lines.append(
                f"({self.pruned} fault(s) that the failure did not need were dropped after "
                "Hypothesis' shrinking)"
            )
        if self.unreliable:
            lines.append(
                "note: this schedule did not fail again when Hypothesis replayed it; "
                "the failure is timing-dependent"
            )
        if self.path is not None:
            lines.append(f"saved to {self.path}; replay it with replay_schedule(path, play)")
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise :class:`ScheduleViolation` with :meth:`message` if a schedule failed."""
        if self.minimal is not None:
            run = self.minimal
            raise ScheduleViolation(
                "fault-schedule search broke an invariant: " + self.message(),
                [r.verdict for r in run.results if r.verdict is not None],
                run=run,
                path=self.path,
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile.name,
            "schedules_run": len(self.runs),
            "seconds": round(self.seconds, 1),
            "failed": self.failed,
            "unreliable": self.unreliable,
            "pruned": self.pruned,
            "shrink_runs": self.shrink_runs,
            "shrink_budget_hit": self.shrink_budget_hit,
            "unconfirmed": self.unconfirmed,
            "minimal": self.minimal.to_dict() if self.minimal is not None else None,
            "path": str(self.path) if self.path is not None else None,
        }


def search_schedules(
    play: Play,
    topology: Topology,
    profile: SearchProfile,
    *,
    save_to: Path | None = None,
    replay: Sequence[FaultSchedule] = (),
    log: Callable[[str], None] | None = None,
    baseline: bool = True,
    confirm: int = 1,
    seed: int | None = None,
) -> SearchResult:
    """Search for a schedule that breaks an invariant; shrink and save the first found.

    :param play: plays one schedule and judges it (e.g. a partial of
        :func:`~chaosrec.schedules.runner.play_schedule`).
    :param save_to: where the minimal failing schedule is written as JSON.
    :param replay: schedules tried first, as explicit examples (earlier failures).
    :param log: called with one line per schedule played (e.g. ``print``).
    :param baseline: first play the empty schedule (no fault): a service that breaks the
        invariants without any fault would make every schedule look guilty.
    :param confirm: replays a violating schedule must also fail before it counts
        (0: believe the first run).
    :param seed: Hypothesis' random seed, for a search that draws the same schedules
        every run (None: the loaded Hypothesis profile decides, e.g. derandomized in CI).
    :raises SteadyStateDeviated: the baseline broke an invariant twice in a row.
    """
    if isinstance(confirm, bool) or not isinstance(confirm, int) or confirm < 0:
        raise ConfigError(f"confirm={confirm!r} must be an integer >= 0")
    result = SearchResult(profile)
    started = time.monotonic()
    if baseline:
        result.baseline = _check_baseline(play, profile, log)

    def confirmed(schedule: FaultSchedule, note: str = "") -> ScheduleRun:
        """Play; a violation counts only if it happens again on each of ``confirm`` replays
        (a busy CPU can stall one run; a real weakness fails every time)."""
        for attempt in range(confirm + 1):
            run = play(schedule)
            result.runs.append(run)
            if log is not None:
                verdict = "VIOLATED" if run.violated else "ok"
                again = f" (replay {attempt})" if attempt else ""
                faults = "; ".join(
                    f"{f.label()} {f.start_s:.2f}-{f.stop_s:.2f}s" for f in schedule.faults
                )
                log(f"[{len(result.runs)}]{note} {verdict}{again}: {faults}\n    {run.measured()}")
            if not run.violated:
                if attempt:
                    result.unconfirmed += 1
                return run
        return run

    seen: dict[str, ScheduleRun] = {}  # each distinct schedule is played once

    def judge(schedule: FaultSchedule) -> None:
        key = schedule.to_json()
        if key not in seen:
            if result.shrink_runs >= profile.shrink_runs:
                # budget spent: stop shrinking by calling every new candidate a pass; the
                # best failure so far stays in `seen` and fails again on the final replay
                result.shrink_budget_hit = True
                return
            before = len(result.runs)
            seen[key] = confirmed(schedule)
            if any(r.violated for r in seen.values()):  # shrinking has started
                result.shrink_runs += len(result.runs) - before
        if seen[key].violated:
            raise _Violated(seen[key])

    test: Callable[..., None] = given(fault_schedules(topology, profile))(judge)
    for schedule in replay:
        test = example(schedule)(test)
    if seed is not None:
        test = hypothesis_seed(seed)(test)
    test = settings(
        max_examples=profile.max_examples,
        deadline=None,
        database=None,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
        report_multiple_bugs=False,
        print_blob=False,
    )(test)
    try:
        test()
    except _Violated as err:
        result.minimal = err.run
    except Flaky:
        # the shrunk failure passed on replay: report the smallest failure actually seen
        failing = [r for r in result.runs if r.violated]
        if not failing:
            raise
        result.minimal = min(failing, key=_size)
        result.unreliable = True

    def judged_play(schedule: FaultSchedule) -> ScheduleRun:
        return confirmed(schedule, " prune:")

    if result.minimal is not None:
        result.minimal = _prune(result.minimal, judged_play, result)
    result.seconds = time.monotonic() - started
    if result.minimal is not None and save_to is not None:
        result.path = result.minimal.schedule.save(save_to)
    return result


def _check_baseline(
    play: Play, profile: SearchProfile, log: Callable[[str], None] | None
) -> ScheduleRun:
    """The steady state must keep the invariants; a second try forgives a cold start
    (the first requests after the stack started, or after another drill's faults)."""
    steady = FaultSchedule((), profile.horizon_s)
    run = play(steady)
    for attempt in (1, 2):
        if log is not None:
            verdict = "VIOLATED" if run.violated else "ok"
            log(f"[baseline {attempt}] {verdict}: no fault\n    {run.measured()}")
        if not run.violated:
            return run
        if attempt == 1:
            run = play(steady)
    raise SteadyStateDeviated(
        "the steady state (no fault at all) already breaks the fault-search invariants, "
        "so any schedule would look guilty; fix the service or the invariants first:\n"
        + run.report()
    )


def _prune(run: ScheduleRun, play: Play, result: SearchResult) -> ScheduleRun:
    """Drop faults that do not matter, one at a time, keeping each drop that still fails.

    Hypothesis' shrinker does not always delete a harmless fault drawn *before* the one
    that matters (it lowers it to the mildest kind instead); this pass, one extra run per
    remaining fault, finishes the job."""
    i = 0
    while len(run.schedule) > 1 and i < len(run.schedule):
        faults = run.schedule.faults
        candidate = FaultSchedule(faults[:i] + faults[i + 1 :], run.schedule.horizon_s)
        trial = play(candidate)
        if trial.violated:
            run = trial
            result.pruned += 1
        else:
            i += 1
    return run


def _size(run: ScheduleRun) -> tuple[int, float]:
    schedule = run.schedule
    return (len(schedule), sum(f.duration_s for f in schedule.faults))


def record_search(
    result: SearchResult, notes: list[str], user_properties: list[tuple[str, object]]
) -> None:
    """Put the search's outcome where reports find it: the drill recorder's ``notes``
    (its readable message, with the minimal schedule) and the test's ``user_properties``
    (``chaosrec_fault_search``: :meth:`SearchResult.to_dict`, with the schedule's JSON
    and the path of its file)."""
    notes.append(result.message())
    user_properties.append(("chaosrec_fault_search", result.to_dict()))


def replay_schedule(path: Path, play: Play) -> ScheduleRun:
    """Play the schedule saved at ``path`` once more and return the judged run."""
    return play(FaultSchedule.load(path))
