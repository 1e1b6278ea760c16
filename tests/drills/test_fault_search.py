"""Property-based DR drill: Hypothesis searches the fault space for a schedule that
breaks the service's invariants, on the embedded 2 x 2 stack.

Green means the search found none. When it finds one, it shrinks it to the smallest
failing schedule, prints it (one line per fault), saves it under the pytest cache
(``.pytest_cache/d/chaosrec-schedules/``) so the next run replays it first, and puts it
in the drill's notes and the report's ``chaosrec_fault_search`` property.
``--chaosrec-search=thorough`` searches harder (more examples, longer schedules, Triton
kills and crashes).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest

from chaosrec.drill import Drill
from chaosrec.plugin_state import SETTINGS_KEY
from chaosrec.schedules import FaultSchedule, play_schedule, search_profile
from chaosrec.schedules.search import record_search, search_schedules

pytestmark = pytest.mark.drill


def schedule_file(config: pytest.Config, nodeid: str, tmp_path: Path) -> Path:
    """Where a test's minimal failing schedule is kept between runs."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid) + ".json"
    cache = getattr(config, "cache", None)
    folder = cache.mkdir("chaosrec-schedules") if cache is not None else tmp_path
    return Path(folder) / name


def test_no_fault_schedule_breaks_the_invariants(
    recsys: Any,
    chaos: Any,
    drill: Drill,
    pytestconfig: pytest.Config,
    request: Any,
    tmp_path: Path,
) -> None:
    """Seed practices: all of them at once (single-point, multi-node and region DR,
    network faults, GPU faults), combined and overlapping as real incidents are rather
    than one at a time. Proves: for every fault schedule Hypothesis draws (up to two
    overlapping faults within 3 s in the quick profile: latency, black holes, proxies
    down, region outages, GPU loss, slowdown and OOM, on any replica, region or all),
    under 100 req/s of open-loop load, the gateway loses no request, stays available
    with model answers (degraded share <= 5 %) whenever a region is healthy, and is back
    within 1.5 s of the last revert."""
    profile = search_profile(pytestconfig.stash[SETTINGS_KEY].search)
    saved = schedule_file(pytestconfig, request.node.nodeid, tmp_path)
    replay = [FaultSchedule.load(saved)] if saved.exists() else []
    play = functools.partial(
        play_schedule,
        target=recsys,
        chaos=chaos,
        rate_rps=profile.rate_rps,
        on_start=drill.on_run_start,
    )
    result = search_schedules(
        play, recsys.topology, profile, save_to=saved, replay=replay, log=print
    )
    record_search(result, drill.notes, request.node.user_properties)
    print(result.message())
    if replay and not result.failed:
        saved.unlink()  # the earlier failure is fixed: stop replaying it
    result.raise_if_failed()
    assert result.baseline is not None and not result.baseline.violated
    assert len(result.runs) >= profile.max_examples // 2  # the search really ran
