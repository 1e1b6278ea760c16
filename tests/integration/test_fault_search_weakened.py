"""With failover switched off by gateway policy, the Hypothesis fault-schedule search
finds a failing schedule, shrinks it to the one fault that matters, prints and saves it,
and the saved file replays the failure (and passes once failover is back on)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from chaosrec.errors import SLOViolation
from chaosrec.schedules import FaultSchedule, SearchProfile, play_schedule
from chaosrec.schedules.search import (
    ScheduleViolation,
    record_search,
    replay_schedule,
    search_schedules,
)

pytestmark = pytest.mark.integration

# the quick drill profile with a shorter horizon (each schedule is a real run of ~5 s)
WEAKENED = SearchProfile("weakened-failover", max_examples=20, horizon_s=2.0, max_faults=2)
# a fixed seed: the same schedules every run, the third of which already cuts off the
# home region (found with a stand-in player), so finding a failure is not left to luck
SEED = 1


def test_search_shrinks_to_a_minimal_failing_schedule_without_failover(
    recsys: Any, chaos: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    play = functools.partial(play_schedule, target=recsys, chaos=chaos, rate_rps=100)
    saved = tmp_path / "schedules" / "minimal.json"
    with recsys.policy_changed(failover=False):
        result = search_schedules(
            play, recsys.topology, WEAKENED, save_to=saved, log=print, seed=SEED
        )
        print(result.message())
        assert result.failed, result.message()
        assert result.minimal is not None and result.path == saved

        # minimal: one fault, on the home region, over the shortest window, at t=0
        (fault,) = result.minimal.schedule.faults
        assert fault.target == "region-a", result.message()
        assert (fault.start_s, fault.stop_s) == (0.0, 0.5), result.message()
        broken = {r.name for r in result.minimal.violated}
        assert "available while a region is healthy" in broken, result.message()

        # printed, readable: one line per fault with its window, then what broke
        out = capsys.readouterr().out
        assert "minimal failing fault schedule" in out
        assert f"  1. t=0.00-0.50 s  {fault.label()}" in out
        assert "available while a region is healthy: VIOLATED (degraded_share measured" in out
        assert f"saved to {saved}" in out

        # saved: the JSON file is the schedule, and replaying it fails again
        assert FaultSchedule.load(saved) == result.minimal.schedule
        assert json.loads(saved.read_text())["faults"][0]["target"] == "region-a"
        again = replay_schedule(saved, play)
        assert again.violated, again.report()

        # reported: the drill notes / user properties carry the schedule and its path
        notes: list[str] = []
        props: list[tuple[str, object]] = []
        record_search(result, notes, props)
        assert fault.label() in notes[0]
        data = dict(props)["chaosrec_fault_search"]
        assert isinstance(data, dict) and data["path"] == str(saved)
        assert data["minimal"]["schedule"] == result.minimal.schedule.to_dict()

        with pytest.raises(ScheduleViolation, match=r"fault-schedule search broke an invariant"):
            result.raise_if_failed()
        assert issubclass(ScheduleViolation, SLOViolation)

    # the same schedule passes with failover back on: the policy, not the fault, broke it
    assert recsys.policy()["failover"] is True
    healthy = replay_schedule(saved, play)
    assert not healthy.violated, healthy.report()
    with capsys.disabled():  # show the minimal schedule in the run's output too
        print("\n" + result.message())
