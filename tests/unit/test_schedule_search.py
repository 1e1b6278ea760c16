"""The Hypothesis strategies and the search loop, with a stand-in ``play`` (no stack).

The stand-in judges a schedule by a rule instead of a load run, so these tests check
the search mechanics (generation within the budget, shrinking direction, saving,
replay, the readable failure) in milliseconds; the drills play schedules for real.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import find, given, settings

from chaosrec.core.topology import load_topology
from chaosrec.errors import ConfigError, SLOViolation, SteadyStateDeviated
from chaosrec.schedules import (
    SEARCH_PROFILES,
    FaultSchedule,
    InvariantResult,
    ScheduledFault,
    ScheduleRun,
    SearchProfile,
)
from chaosrec.schedules.search import ScheduleViolation, replay_schedule, search_schedules
from chaosrec.schedules.strategies import fault_schedules, targets_for
from chaosrec.slo.log import RequestLog

TOPOLOGY = load_topology("default")
QUICK = SEARCH_PROFILES["quick"]
HOME = {"region-a.r0", "region-a.r1"}
OUTAGE_KINDS = ("blackhole", "down", "region_outage")


def takes_out_home(schedule: FaultSchedule) -> bool:
    """What failover=False cannot survive: both home replicas cut off at once."""
    return any(
        f.kind in OUTAGE_KINDS and {r.id for r in TOPOLOGY.resolve(f.target)} >= HOME
        for f in schedule.faults
    )


def fake_play(schedule: FaultSchedule) -> ScheduleRun:
    run = ScheduleRun(schedule, RequestLog.from_rows(0.0, []), (), 0, schedule.last_stop_s)
    broken = takes_out_home(schedule)
    run.results = [
        InvariantResult(
            "available while a region is healthy",
            not broken,
            "degraded_share measured 0.2 vs target <= 0.05" if broken else "fine",
        )
    ]
    return run


@settings(max_examples=200)
@given(fault_schedules(TOPOLOGY, SEARCH_PROFILES["thorough"]))
def test_drawn_schedules_stay_within_the_profile(schedule: FaultSchedule) -> None:
    profile = SEARCH_PROFILES["thorough"]
    assert 1 <= len(schedule) <= profile.max_faults
    assert schedule.horizon_s == profile.horizon_s
    for fault in schedule.faults:
        assert fault.kind in profile.kinds
        assert fault.target in targets_for(fault.kind, TOPOLOGY)
        assert 0 <= fault.start_s < fault.stop_s <= profile.horizon_s
        assert fault.duration_s >= profile.min_duration_s
        for t in (fault.start_s, fault.stop_s):
            assert (t / profile.step_s) == pytest.approx(round(t / profile.step_s))
        assert FaultSchedule.from_json(schedule.to_json()) == schedule


def test_targets_are_ordered_healthy_side_first() -> None:
    assert targets_for("latency", TOPOLOGY) == [
        "region-b.r1",
        "region-b.r0",
        "region-b",
        "region-a.r1",
        "region-a.r0",
        "region-a",
        "all",
    ]
    assert targets_for("region_outage", TOPOLOGY) == ["region-b", "region-a"]
    assert targets_for("crash", TOPOLOGY)[0] == "region-b.r1"


def test_shrinking_moves_to_short_early_windows_mild_kinds_and_the_healthy_side() -> None:
    minimal = find(
        fault_schedules(TOPOLOGY, QUICK),
        takes_out_home,
        settings=settings(database=None, derandomize=True, max_examples=500),
    )
    assert all((f.start_s, f.stop_s) == (0.0, 0.5) for f in minimal.faults)
    # the fault that matters, in its mildest form; Hypothesis may leave a harmless
    # fault drawn before it, lowered to the mildest kind on the healthy side (the
    # search prunes those by replay)
    *harmless, culprit = minimal.faults
    assert culprit == ScheduledFault("blackhole", "region-a", {}, 0.0, 0.5)
    for fault in harmless:
        assert fault.target.startswith("region-b") and fault.kind not in OUTAGE_KINDS


def test_search_finds_shrinks_saves_and_explains(tmp_path: Path) -> None:
    profile = SearchProfile("t", max_examples=50, horizon_s=3.0, max_faults=3, shrink_runs=1000)
    lines: list[str] = []
    result = search_schedules(
        fake_play, TOPOLOGY, profile, save_to=tmp_path / "min.json", log=lines.append
    )
    assert result.failed and result.path == tmp_path / "min.json"
    assert result.minimal is not None
    (fault,) = result.minimal.schedule.faults  # shrunk (and pruned) to the one that matters
    assert (fault.target, fault.start_s, fault.stop_s) == ("region-a", 0.0, 0.5)
    assert fault.kind in OUTAGE_KINDS
    assert FaultSchedule.load(result.path) == result.minimal.schedule
    assert lines[0].startswith("[baseline 1] ok: no fault")
    assert len(lines) == len(result.runs) + 1 and any("VIOLATED" in line for line in lines)
    with pytest.raises(ScheduleViolation) as info:
        result.raise_if_failed()
    message = str(info.value)
    assert "minimal failing fault schedule" in message
    assert f"1. t=0.00-0.50 s  {fault.label()}" in message
    assert "available while a region is healthy: VIOLATED (degraded_share measured" in message
    assert f"saved to {result.path}" in message
    assert isinstance(info.value, SLOViolation) and isinstance(info.value, AssertionError)
    assert replay_schedule(result.path, fake_play).violated


def test_a_clean_search_plays_max_examples_and_passes() -> None:
    profile = SearchProfile("t", max_examples=7, horizon_s=3.0, max_faults=2, kinds=("latency",))
    result = search_schedules(fake_play, TOPOLOGY, profile)
    assert not result.failed and len(result.runs) == 7
    result.raise_if_failed()  # no error
    assert "no invariant broken by 7 fault schedule run(s)" in result.message()


def test_replayed_schedules_are_tried_first(tmp_path: Path) -> None:
    saved = FaultSchedule((ScheduledFault("down", "all", {}, 1.0, 2.0),), 3.0)
    profile = SearchProfile("t", max_examples=3, horizon_s=3.0, max_faults=1, kinds=("latency",))
    result = search_schedules(fake_play, TOPOLOGY, profile, replay=[saved])
    assert result.runs[0].schedule == saved
    assert result.minimal is not None and result.minimal.schedule == saved


def test_errors_other_than_violations_propagate() -> None:
    def broken_play(schedule: FaultSchedule) -> ScheduleRun:
        raise RuntimeError("stack gone")

    with pytest.raises(RuntimeError, match="stack gone"):
        search_schedules(broken_play, TOPOLOGY, QUICK)


def test_a_steady_state_that_already_fails_stops_the_search_before_any_fault() -> None:
    played: list[FaultSchedule] = []

    def always_broken(schedule: FaultSchedule) -> ScheduleRun:
        played.append(schedule)
        run = fake_play(FaultSchedule((ScheduledFault("down", "region-a"),), 3.0))
        run.schedule = schedule
        return run

    with pytest.raises(SteadyStateDeviated, match=r"the steady state \(no fault at all\)"):
        search_schedules(always_broken, TOPOLOGY, QUICK)
    assert played == [FaultSchedule((), QUICK.horizon_s)] * 2  # baseline, its retry, no fault


def test_a_cold_first_baseline_is_forgiven_once() -> None:
    calls: list[int] = []

    def cold_then_fine(schedule: FaultSchedule) -> ScheduleRun:
        calls.append(1)
        run = fake_play(schedule)
        if len(calls) == 1:
            run.results[0] = InvariantResult("available while a region is healthy", False, "cold")
        return run

    result = search_schedules(cold_then_fine, TOPOLOGY, SEARCH_PROFILES["quick"])
    assert result.baseline is not None and not result.baseline.violated
    assert len(calls) == 2 + len(result.runs)


def test_a_violation_that_does_not_reproduce_is_noise() -> None:
    flips: list[int] = []

    def noisy(schedule: FaultSchedule) -> ScheduleRun:
        run = fake_play(FaultSchedule((), 3.0))
        run.schedule = schedule
        flips.append(1)
        if schedule.faults and len(flips) % 2 == 0:  # every other faulted run fails
            run.results[0] = InvariantResult("available while a region is healthy", False, "x")
        return run

    profile = SearchProfile("t", max_examples=5, horizon_s=3.0, max_faults=1, kinds=("latency",))
    result = search_schedules(noisy, TOPOLOGY, profile)
    assert not result.failed and result.unconfirmed >= 1
    assert "did not reproduce on replay" in result.message()
    with pytest.raises(ConfigError, match=r"confirm=-1 must be an integer >= 0"):
        search_schedules(noisy, TOPOLOGY, profile, confirm=-1)


def test_shrinking_stops_at_its_budget_and_reports_the_best_failure_so_far() -> None:
    profile = SearchProfile("t", max_examples=50, horizon_s=3.0, max_faults=3, shrink_runs=2)
    result = search_schedules(fake_play, TOPOLOGY, profile)
    assert result.failed and result.shrink_budget_hit
    assert result.minimal is not None and takes_out_home(result.minimal.schedule)
    assert result.shrink_runs <= 2 + 1  # the last counted play may be a confirmed failure
    assert "shrinking stopped after its budget of 2 runs" in result.message()


def test_a_seeded_search_draws_the_same_schedules_every_time() -> None:
    def drawn() -> list[FaultSchedule]:
        result = search_schedules(fake_play, TOPOLOGY, QUICK, seed=1, baseline=False)
        return [r.schedule for r in result.runs]

    assert drawn() == drawn()
