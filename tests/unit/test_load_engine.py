"""The open-loop engine with stand-in fronts (no process, no socket): overflow is
recorded as dropped, a front's failure stops the run with the request named."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest

from chaosrec.errors import ConfigError
from chaosrec.load.fronts import Outcome
from chaosrec.load.generator import LoadRun
from chaosrec.slo.log import STATUS_CLIENT_DROPPED


class Instant:
    """Answers every request at once; ``stall_at`` blocks the loop once (a stand-in for
    the generator's own CPU running out); ``fail_at`` raises like a broken builder."""

    url = "fake://instant"

    def __init__(self, stall_at: int | None = None, stall_s: float = 0.0, fail_at: int = -1):
        self.stall_at = stall_at
        self.stall_s = stall_s
        self.fail_at = fail_at

    async def open(self, *, max_inflight: int, timeout_s: float) -> None:
        pass

    def send(self, i: int, done: Callable[[Outcome], None]) -> None:
        if i == self.fail_at:
            raise KeyError("no such user")
        if i == self.stall_at:
            time.sleep(self.stall_s)  # holds the loop: every send after it is late
        done((200, "r", "r.0", False, None))

    async def close(self) -> None:
        pass


def test_every_scheduled_request_is_recorded_once() -> None:
    with LoadRun(Instant(), rate_rps=200, duration_s=0.5) as run:
        pass
    assert len(run.log) == 100 and run.log.ok.all()
    np.testing.assert_array_equal(run.log.scheduled_s, np.arange(100) / 200)


def test_requests_that_cannot_leave_within_the_timeout_are_dropped_not_sent() -> None:
    with LoadRun(
        Instant(stall_at=10, stall_s=0.5), rate_rps=100, duration_s=1.0, timeout_s=0.2
    ) as run:
        pass
    log = run.log
    assert len(log) == 100
    late = log.select(log.status == STATUS_CLIENT_DROPPED)
    assert set(late.error) == {"late"}
    # the 0.5 s stall leaves at least 0.3 s of requests more than 0.2 s behind: those,
    # and only those, are dropped; every other request was sent
    assert len(late) >= 25, len(late)
    assert ((late.sent_s - late.scheduled_s) > 0.2).all()
    sent = log.select(log.status != STATUS_CLIENT_DROPPED)
    assert ((sent.sent_s - sent.scheduled_s) <= 0.2).all() and sent.ok.all()


def test_a_failing_front_stops_the_run_naming_the_request() -> None:
    run = LoadRun(Instant(fail_at=7), rate_rps=100, duration_s=1.0)
    with pytest.raises(ConfigError, match=r"building request 7 failed: KeyError"), run:
        pass
    assert len(run.log) == 7


def test_request_shape_arguments_need_an_http_url() -> None:
    with pytest.raises(ConfigError, match=r"json arguments apply to HTTP URLs; Instant"):
        LoadRun(Instant(), rate_rps=10, duration_s=1, json={"a": 1})
    with pytest.raises(ConfigError, match=r"give schedule= or rate_rps= and duration_s="):
        from chaosrec.load.schedule import constant

        LoadRun(Instant(), rate_rps=10, duration_s=1, schedule=constant(5, duration_s=1))
