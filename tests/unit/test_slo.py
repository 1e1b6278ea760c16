"""SLO arithmetic: windows, recovery (RTO), detection (MTTD), percentiles and verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaosrec.errors import ConfigError
from chaosrec.slo.histogram import LatencyHistogram
from chaosrec.slo.log import RequestLog
from chaosrec.slo.objectives import FaultWindow, Objectives, evaluate
from chaosrec.slo.windows import detection_time, good_mask, recovery_time, window_stats


def make_log(rows: list[tuple[float, float, int, str | None, bool]]) -> RequestLog:
    """rows: (scheduled_s, latency_ms, status, replica, degraded)."""
    return RequestLog.from_rows(
        0.0,
        [
            (t, t, t + lat / 1000.0, status, (rep or "").split(".")[0] or None, rep, deg, None)
            for t, lat, status, rep, deg in rows
        ],
    )


def steady(
    n: int, rate: float = 100.0, **kw: object
) -> list[tuple[float, float, int, str | None, bool]]:
    return [(i / rate, 5.0, 200, "b.r0", False) for i in range(n)]


# -- brute-force references -------------------------------------------------------------


def brute_recovery(log: RequestLog, ref: float, target: float, width: float) -> float:
    """Try every window start from the reference: the first from which all windows meet."""
    after = [i for i in range(len(log)) if log.scheduled_s[i] >= ref]
    if not after:
        return math.inf
    last = max(log.scheduled_s[i] for i in after) - ref
    n = int(last // width) + 1
    good = good_mask(log)
    buckets: list[list[bool]] = [[] for _ in range(n)]
    for i in after:
        buckets[min(int((log.scheduled_s[i] - ref) // width), n - 1)].append(bool(good[i]))
    meets = [(not b) or (sum(b) / len(b) >= target - 1e-12) for b in buckets]
    for start in range(n):
        if all(meets[start:]) and any(buckets[j] for j in range(start, n)):
            # recovery is at the first non-empty meeting window from `start`
            j = next(j for j in range(start, n) if buckets[j])
            return 0.0 if all(meets) else j * width
    return math.inf


request_rows = st.lists(
    st.tuples(
        st.floats(0, 20, allow_nan=False).map(lambda x: round(x, 3)),
        st.floats(0.1, 500, allow_nan=False),
        st.sampled_from([200, 200, 200, 503, 0]),
        st.sampled_from(["a.r0", "b.r0", None]),
        st.booleans(),
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(
    rows=request_rows,
    ref=st.floats(0, 15),
    target=st.sampled_from([0.5, 0.9, 1.0]),
    width=st.sampled_from([0.25, 0.5, 1.0]),
)
def test_recovery_matches_brute_force(
    rows: list[tuple[float, float, int, str | None, bool]], ref: float, target: float, width: float
) -> None:
    log = make_log(rows)
    got = recovery_time(log, ref, target=target, width_s=width)
    assert got == pytest.approx(brute_recovery(log, ref, target, width))


@settings(max_examples=200, deadline=None)
@given(rows=request_rows, width=st.sampled_from([0.25, 0.5, 1.0]))
def test_window_counts_partition_the_log(
    rows: list[tuple[float, float, int, str | None, bool]], width: float
) -> None:
    log = make_log(rows)
    stats = window_stats(log, width)
    assert stats.total.sum() == len(log)
    assert stats.good.sum() == good_mask(log).sum()
    assert (stats.good <= stats.ok).all() and (stats.ok <= stats.total).all()


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(0.001, 100_000, allow_nan=False), min_size=1, max_size=500),
    pct=st.sampled_from([50.0, 95.0, 99.0, 99.9]),
)
def test_histogram_percentile_within_hdr_precision(values: list[float], pct: float) -> None:
    hist = LatencyHistogram(values)
    exact = float(
        np.percentile(np.round(np.array(values) * 1000) / 1000, pct, method="inverted_cdf")
    )
    got = hist.percentile_ms(pct)
    # 3 significant digits (plus the 1 us recording floor)
    assert abs(got - exact) <= max(exact * 2e-3, 0.002)


def test_histograms_merge() -> None:
    a, b = LatencyHistogram([1, 2, 3]), LatencyHistogram([100, 200])
    a.merge(b)
    assert a.count == 5 and a.max_ms() == pytest.approx(200, rel=1e-3)
    assert LatencyHistogram.decode(a.encode()).count == 5


# -- hand-checked cases ---------------------------------------------------------------


def test_recovery_outage_then_clean() -> None:
    rows = steady(200)  # 0 .. 1.99 s at 100 rps
    rows = [(t, lat, 503 if 0.5 <= t < 1.2 else s, r, d) for t, lat, s, r, d in rows]
    log = make_log(rows)
    assert recovery_time(log, 0.5, target=0.99, width_s=0.25) == pytest.approx(0.75)
    assert recovery_time(log, 1.2, target=0.99, width_s=0.25) == 0.0


def test_recovery_never() -> None:
    rows = [(t, lat, 503 if t >= 1.0 else s, r, d) for t, lat, s, r, d in steady(200)]
    assert math.isinf(recovery_time(make_log(rows), 1.0, target=0.99))


def test_detection_time_first_clean_failover_answer() -> None:
    rows = []
    for i in range(300):
        t = i / 100
        if t < 1.0:
            rows.append((t, 5.0, 200, "a.r0", False))
        elif t < 1.3:
            rows.append((t, 400.0, 200, "b.r0", False))  # slow failovers while undetected
        else:
            rows.append((t, 5.0, 200, "b.r0", False))
    log = make_log(rows)
    got = detection_time(log, 1.0, {"a.r0"}, latency_ms=250, fault_end_s=3.0)
    assert got == pytest.approx(0.3, abs=1e-6)


def test_detection_none_when_nothing_impaired() -> None:
    log = make_log(steady(100))
    assert detection_time(log, 0.2, {"a.r0"}, latency_ms=250) is None


# -- verdicts -------------------------------------------------------------------------


def test_verdict_pass_and_table() -> None:
    log = make_log(steady(300))
    fault = FaultWindow("down(a)", "down", ("a.r0",), 1.0, 2.0, touched=True)
    verdict = evaluate(log, Objectives(availability=0.999, p99_ms=50, rto_s=1.0), [fault])
    assert verdict.status == "pass"
    table = verdict.table()
    assert "availability" in table and ">= 0.999" in table and "1.0000 (300/300)" in table


def test_p99_on_too_few_samples_is_inconclusive() -> None:
    verdict = evaluate(make_log(steady(50)), Objectives(p99_ms=50))
    assert verdict.status == "inconclusive"
    assert "only 50 answered requests; a p99 needs at least 100" in verdict.table()


def test_fault_that_never_met_traffic_is_inconclusive() -> None:
    log = make_log(steady(300))
    fault = FaultWindow("down(a)", "down", ("a.r0",), 1.0, 2.0, touched=False)
    verdict = evaluate(log, Objectives(availability=0.99), [fault])
    assert verdict.status == "inconclusive"
    assert "no request went through a faulted target" in verdict.table()


def test_fault_outside_the_run_window_is_inconclusive() -> None:
    log = make_log(steady(100))  # 0 .. 0.99 s
    fault = FaultWindow("down(a)", "down", ("a.r0",), 5.0, 6.0)
    assert evaluate(log, Objectives(availability=0.99), [fault]).status == "inconclusive"


def test_failure_beats_inconclusive() -> None:
    rows = [(t, lat, 503, r, d) for t, lat, s, r, d in steady(50)]
    verdict = evaluate(make_log(rows), Objectives(availability=0.99, p99_ms=10))
    assert verdict.status == "fail"
    assert verdict.failed[0].measured == "0.0000 (0/50)"


def test_empty_log_cannot_be_evaluated() -> None:
    with pytest.raises(ConfigError, match="the run recorded no requests"):
        evaluate(RequestLog.from_rows(0.0, []), Objectives(availability=0.9))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"availability": 1.5}, r"availability=1.5 is outside \[0, 1\]"),
        ({"p99_ms": -3}, r"p99_ms=-3 must be > 0"),
        ({"rto_s": "2"}, r"rto_s='2' must be a number"),
        ({"lost": -1}, r"lost=-1 must be an integer >= 0"),
    ],
    ids=["availability>1", "negative-p99", "string-rto", "negative-lost"],
)
def test_invalid_objectives(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Objectives(**kwargs)  # type: ignore[arg-type]


def test_unknown_objective_lists_allowed() -> None:
    with pytest.raises(ConfigError, match=r"unknown objective\(s\) \['p98_ms'\]; allowed"):
        Objectives().merged(p98_ms=3)
