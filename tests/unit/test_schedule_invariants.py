"""The schedule invariants on hand-made request logs (no stack)."""

from __future__ import annotations

import numpy as np
import pytest

from chaosrec.core.topology import load_topology
from chaosrec.errors import ConfigError
from chaosrec.schedules import Invariants, check_invariants, healthy_region_mask
from chaosrec.slo.log import RequestLog
from chaosrec.slo.objectives import FaultWindow

TOPOLOGY = load_topology("default")
RATE = 100  # requests per second in these logs


def make_log(
    seconds: float = 6.0,
    *,
    degraded: tuple[float, float] | None = None,
    status_503: tuple[float, float] | None = None,
    drop: int = 0,
) -> RequestLog:
    """A log at RATE req/s; answers are 200 from region-a unless a span says otherwise."""
    rows = []
    for i in range(round(seconds * RATE) - drop):
        t = i / RATE
        status, deg, region = 200, False, "region-a"
        if degraded and degraded[0] <= t < degraded[1]:
            deg, region = True, None
        if status_503 and status_503[0] <= t < status_503[1]:
            status, region = 503, None
        replica = None if region is None else f"{region}.r0"
        rows.append((t, t, t + 0.01, status, region, replica, deg, None))
    return RequestLog.from_rows(0.0, rows)


def outage(region: str, start: float, end: float) -> FaultWindow:
    return FaultWindow(
        f"region_outage({region})",
        "region_outage",
        (f"{region}.r0", f"{region}.r1"),
        start,
        end,
    )


def by_name(results: list) -> dict:  # type: ignore[type-arg]
    return {r.name: r for r in results}


def test_a_clean_run_keeps_every_invariant() -> None:
    log = make_log()
    results = check_invariants(
        log,
        [outage("region-a", 1, 2)],
        TOPOLOGY,
        Invariants(),
        expected_requests=600,
        last_revert_s=2.0,
    )
    assert all(r.held for r in results), [r.line() for r in results]
    assert [r.name for r in results] == [
        "no request lost",
        "available while a region is healthy",
        "RTO bound",
    ]


def test_degraded_answers_while_the_other_region_is_healthy_break_availability() -> None:
    # failover off: the home region is out and every answer is the fallback's
    log = make_log(degraded=(1.0, 2.0))
    results = by_name(
        check_invariants(
            log,
            [outage("region-a", 1, 2)],
            TOPOLOGY,
            Invariants(),
            expected_requests=600,
            last_revert_s=2.0,
        )
    )
    avail = results["available while a region is healthy"]
    assert not avail.held
    assert "degraded_share measured 0.1667 (100/600) vs target <= 0.05" in avail.detail
    assert results["no request lost"].held  # degraded answers are answers
    assert results["RTO bound"].held


def test_degraded_answers_during_a_total_outage_are_not_judged() -> None:
    log = make_log(degraded=(1.0, 2.0))
    windows = [outage("region-a", 1, 2), outage("region-b", 1, 2)]
    results = by_name(
        check_invariants(
            log, windows, TOPOLOGY, Invariants(), expected_requests=600, last_revert_s=2.0
        )
    )
    avail = results["available while a region is healthy"]
    assert avail.held and avail.checked
    # requests from 1 s before the outage (lead) to 1 s after it (settle) are not judged
    assert "300 of 600 requests judged" in avail.detail


def test_unanswered_and_missing_requests_are_lost_but_503s_are_answers() -> None:
    log = make_log(status_503=(1.0, 1.05), drop=3)
    extra = [
        (5.99 + i / 1000, 5.99, 6.0, status, None, None, False, error)
        for i, (status, error) in enumerate([(0, "TimeoutError"), (-1, "dropped")] * 2)
    ]
    log = RequestLog.from_rows(0.0, [*_rows(log), *extra])
    results = by_name(
        check_invariants(log, [], TOPOLOGY, Invariants(), expected_requests=602, last_revert_s=None)
    )
    lost = results["no request lost"]
    assert not lost.held
    assert lost.detail == (
        "5 of 602 lost (TimeoutError: 2, dropped: 2), 1 of them missing from the log; target <= 0"
    )
    # the five 503s (shed load) are answers, judged by availability instead
    avail = results["available while a region is healthy"]
    assert not avail.held
    assert "availability measured 0.9850 (592/601)" in avail.detail
    assert not results["RTO bound"].checked
    only_503 = check_invariants(
        make_log(status_503=(1.0, 1.05)),
        [],
        TOPOLOGY,
        Invariants(),
        expected_requests=600,
        last_revert_s=None,
    )
    assert by_name(only_503)["no request lost"].held


def _rows(log: RequestLog) -> list[tuple[object, ...]]:
    return [
        (
            log.scheduled_s[i],
            log.sent_s[i],
            log.done_s[i],
            int(log.status[i]),
            log.region[i],
            log.replica[i],
            bool(log.degraded[i]),
            log.error[i],
        )
        for i in range(len(log))
    ]


def test_rto_counts_from_the_last_revert() -> None:
    # bad (degraded) until 4.0 s although the fault was reverted at 2.0 s
    log = make_log(degraded=(1.0, 4.0))
    windows = [outage("region-a", 1, 2), outage("region-b", 1, 2)]
    results = by_name(
        check_invariants(
            log,
            windows,
            TOPOLOGY,
            Invariants(rto_s=1.5),
            expected_requests=600,
            last_revert_s=2.0,
        )
    )
    rto = results["RTO bound"]
    assert not rto.held
    assert rto.detail.startswith("recovered 2.00 s after the last revert at t=2.00 s")
    ok = check_invariants(
        log, windows, TOPOLOGY, Invariants(rto_s=2.5), expected_requests=600, last_revert_s=2.0
    )
    assert by_name(ok)["RTO bound"].held


def test_never_recovering_is_reported_as_never() -> None:
    log = make_log(degraded=(1.0, 6.0))
    rto = by_name(
        check_invariants(
            log,
            [outage("region-a", 1, 2), outage("region-b", 1, 2)],
            TOPOLOGY,
            Invariants(),
            expected_requests=600,
            last_revert_s=2.0,
        )
    )["RTO bound"]
    assert not rto.held and rto.detail.startswith("recovered never")


def test_healthy_region_mask_uses_lead_and_settle_and_longer_restarts() -> None:
    log = make_log(seconds=10)
    inv = Invariants(lead_s=0.5, settle_s=1.0, restart_settle_s=3.0)
    a = outage("region-a", 2, 3)
    crash_b = FaultWindow("crash(region-b.r1)", "crash", ("region-b.r1",), 2.5, 2.6)
    mask = healthy_region_mask(log, [a, crash_b], TOPOLOGY, inv)
    t = log.scheduled_s
    # region-a impaired [1.5, 4.0); region-b impaired [2.0, 5.6): nobody healthy [2.0, 4.0)
    assert not mask[(t >= 2.0) & (t < 4.0)].any()
    assert mask[(t < 2.0) | (t >= 4.0)].all()


def test_too_few_judged_requests_leaves_availability_unchecked() -> None:
    log = make_log(seconds=1)
    windows = [FaultWindow("down(all)", "down", tuple(TOPOLOGY.replica_ids()), 0.0, 1.0)]
    avail = by_name(
        check_invariants(
            log, windows, TOPOLOGY, Invariants(), expected_requests=100, last_revert_s=1.0
        )
    )["available while a region is healthy"]
    assert avail.held and not avail.checked
    assert "only 0 request(s)" in avail.detail


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lost": -1}, r"lost=-1 must be an integer >= 0"),
        ({"availability": 1.5}, r"availability=1\.5 is outside \[0, 1\]"),
        ({"rto_s": -1}, r"rto_s=-1 must be >= 0"),
        ({"window_s": 0}, r"window_s=0 must be > 0"),
        ({"min_requests": 0}, r"min_requests=0 must be an integer >= 1"),
    ],
    ids=["lost", "availability", "rto", "window", "min-requests"],
)
def test_bad_invariants_are_refused(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message):
        Invariants(**kwargs)


def test_an_empty_log_cannot_be_judged() -> None:
    with pytest.raises(ConfigError, match="the run recorded no requests"):
        check_invariants(
            RequestLog.from_rows(0.0, []),
            [],
            TOPOLOGY,
            Invariants(),
            expected_requests=1,
            last_revert_s=None,
        )


def test_mask_is_all_true_without_faults() -> None:
    log = make_log(seconds=1)
    assert np.all(healthy_region_mask(log, [], TOPOLOGY, Invariants()))


def test_a_follow_up_run_is_joined_onto_the_first_runs_clock() -> None:
    from chaosrec.schedules.runner import _joined

    first, second = make_log(seconds=1), make_log(seconds=0.5, degraded=(0.0, 0.1))
    joined = _joined(first, second, offset_s=3.0)
    assert len(joined) == 150 and joined.t0_epoch == first.t0_epoch
    assert joined.scheduled_s[100] == 3.0 and joined.done_s[-1] == pytest.approx(3.5)
    assert int(joined.degraded.sum()) == 10
