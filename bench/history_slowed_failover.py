"""pytest plugin for ``bench/bench_history.py --slowed``: one drill with a deliberately
slowed failover, the other drills of the session unchanged.

For the drill named by ``$CHAOSREC_BENCH_SLOWED`` (default: the black-holed region
outage) the gateway waits 120 ms instead of 50 ms before it fails a request over to
the other region (``hedge_after_s``): while the home region is black-holed and before
the breakers and health checks take it out of rotation, every request is answered that
much later. The drill's objectives (p99 <= 250 ms, availability >= 0.999, RTO <= 2 s)
leave room for that; the policy is restored after the drill. Load it with
``-p history_slowed_failover`` and ``bench/`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

#: the gateway policy while the slowed drill runs
SLOWED = {"hedge_after_s": 0.12}
_DRILL = os.environ.get("CHAOSREC_BENCH_SLOWED", "test_region_outage[black-holed]")


@pytest.fixture(autouse=True)
def _slowed_failover(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.name != _DRILL:
        yield
        return
    target: Any = request.getfixturevalue("recsys")
    with target.policy_changed(**SLOWED):
        print(f"\nbench: {_DRILL}: gateway failover slowed: {SLOWED}", flush=True)
        yield
