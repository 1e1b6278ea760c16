"""The measurements every front shares (chaosrec.slo.measures), against brute force."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaosrec.errors import ConfigError
from chaosrec.slo.histogram import LatencyHistogram
from chaosrec.slo.log import RequestLog
from chaosrec.slo.measures import (
    METRICS,
    Measures,
    lost_mask,
    measure,
    measure_groups,
    nearest_rank,
    percentile,
)

QS = [0.0, 0.1, 1.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0]


def brute_nearest_rank(values: list[float], q: float) -> float:
    """The smallest value v with at least q % of the values <= v, counted exactly."""
    ordered = sorted(values)
    n = len(ordered)
    wanted = Fraction(str(q)) * n / 100  # q as written, not its binary approximation
    for k in range(1, n + 1):
        if k >= wanted:
            return ordered[k - 1]
    raise AssertionError("unreachable")


finite_ms = st.floats(0.0, 100_000, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(finite_ms, min_size=1, max_size=300), q=st.sampled_from(QS))
def test_percentile_is_the_nearest_rank(values: list[float], q: float) -> None:
    got = percentile(values, q)
    assert got == brute_nearest_rank(values, q)
    # never under-reports: at least q % at or below, fewer than q % strictly below
    n = len(values)
    assert sum(v <= got for v in values) * 100 >= Fraction(str(q)) * n
    assert sum(v < got for v in values) * 100 < max(Fraction(str(q)) * n, 1)


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(st.tuples(finite_ms, st.integers(0, 50)), min_size=1, max_size=60),
    q=st.sampled_from(QS),
)
def test_weighted_nearest_rank_equals_the_expanded_values(
    pairs: list[tuple[float, int]], q: float
) -> None:
    pairs = sorted(pairs)
    values = [v for v, _ in pairs]
    counts = [c for _, c in pairs]
    expanded = [v for v, c in pairs for _ in range(c)]
    got = nearest_rank(values, counts, q)
    if not expanded:
        assert math.isnan(got)
    else:
        assert got == brute_nearest_rank(expanded, q)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(0.001, 100_000, allow_nan=False), min_size=1, max_size=500),
    q=st.sampled_from([50.0, 95.0, 99.0, 99.9]),
)
def test_histogram_agrees_with_the_exact_percentile(values: list[float], q: float) -> None:
    exact = percentile(np.round(np.array(values) * 1000) / 1000, q)  # recorded in whole us
    got = LatencyHistogram(values).percentile_ms(q)
    # the same nearest rank over buckets of 3 significant digits (plus the 1 us floor)
    assert got <= exact + 1e-9
    assert exact - got <= max(exact * 1e-3, 0.001) + 1e-9


def test_nearest_rank_hand_checked() -> None:
    assert nearest_rank([10.0, 20.0, 30.0, 40.0], None, 50) == 20.0
    assert nearest_rank([10.0, 20.0, 30.0, 40.0], None, 51) == 30.0
    assert nearest_rank([10.0, 20.0, 30.0, 40.0], None, 0) == 10.0
    assert nearest_rank([10.0, 20.0, 30.0, 40.0], None, 100) == 40.0
    # 100 values 1..100: p99 is the 99th, p99.9 the 100th (np.percentile would give 99.01)
    hundred = [float(i) for i in range(1, 101)]
    assert percentile(hundred, 99) == 99.0
    assert percentile(hundred, 99.9) == 100.0
    assert math.isnan(percentile([], 99))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: nearest_rank([1.0], None, 101), r"q=101 is above the maximum 100"),
        (lambda: nearest_rank([1.0], None, -1), r"q=-1 must be >= 0"),
        (lambda: nearest_rank([1.0, 2.0], [1], 50), r"counts has 1 entries for 2 values"),
    ],
    ids=["q>100", "q<0", "counts-mismatch"],
)
def test_nearest_rank_rejects_bad_arguments(call: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call()


# -- over a request log -------------------------------------------------------------------

STATUSES = [200, 200, 200, 204, 299, 199, 302, 404, 429, 500, 503, 0, -1]

log_rows = st.lists(
    st.tuples(
        st.floats(0, 20, allow_nan=False).map(lambda x: round(x, 3)),  # scheduled
        st.floats(0, 50, allow_nan=False),  # send lag, ms
        st.floats(0.1, 500, allow_nan=False),  # service time, ms
        st.sampled_from(STATUSES),
        st.booleans(),  # degraded header (on any status)
    ),
    max_size=150,
)


def make_log(rows: list[tuple[float, float, float, int, bool]]) -> RequestLog:
    return RequestLog.from_rows(
        1_700_000_000.0,
        [
            (t, t + lag / 1000, t + (lag + svc) / 1000, status, "r", "r.0", deg, None)
            for t, lag, svc, status, deg in rows
        ],
    )


@settings(max_examples=300, deadline=None)
@given(rows=log_rows)
def test_measure_matches_brute_force(rows: list[tuple[float, float, float, int, bool]]) -> None:
    log = make_log(rows)
    m = measure(log)
    answered = [i for i in range(len(log)) if 200 <= log.status[i] < 300]
    degraded = [i for i in answered if log.degraded[i]]
    assert (m.requests, m.answered, m.degraded) == (len(rows), len(answered), len(degraded))
    assert m.errors == len(rows) - len(answered)
    if rows:
        assert m.availability == len(answered) / len(rows)
        assert m.error_rate == (len(rows) - len(answered)) / len(rows)
    else:
        assert m.availability is None and m.error_rate is None
    assert m.degraded_share == (len(degraded) / len(answered) if answered else 0.0)
    # latency from the scheduled time, over 2xx answers only
    latencies = [(log.done_s[i] - log.scheduled_s[i]) * 1000 for i in answered]
    for name, q in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99)):
        expected = brute_nearest_rank(latencies, q) if latencies else None
        assert getattr(m, name) == expected
        assert m.value(name) == expected
    assert int(lost_mask(log).sum()) == sum(1 for s in log.status if s <= 0 or s >= 500)


@settings(max_examples=200, deadline=None)
@given(rows=log_rows, width=st.sampled_from([0.5, 1.0, 5.0]))
def test_measure_groups_equals_measuring_each_group(
    rows: list[tuple[float, float, float, int, bool]], width: float
) -> None:
    log = make_log(rows)
    n = int(20 // width) + 1
    group = (log.scheduled_s // width).astype(np.int64)
    grouped = measure_groups(log, group, n)
    assert len(grouped) == n
    for g, m in enumerate(grouped):
        assert m == measure(log.select(group == g))


def test_measure_groups_rejects_bad_groups() -> None:
    log = make_log([(0.0, 0.0, 1.0, 200, False), (1.0, 0.0, 1.0, 200, False)])
    with pytest.raises(ConfigError, match="one group per request"):
        measure_groups(log, np.array([0]), 2)
    with pytest.raises(ConfigError, match=r"group ids must be in \[0, 1\)"):
        measure_groups(log, np.array([0, 1]), 1)


def test_an_empty_log() -> None:
    m = measure(RequestLog.from_rows(0.0, []))
    assert (m.requests, m.answered, m.degraded, m.p99_ms) == (0, 0, 0, None)
    assert {name: m.value(name) for name in METRICS} == {
        "availability": None,
        "error_rate": None,
        "degraded_share": 0.0,
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
    }


# -- over plain counts ----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_counts_give_the_shares_a_log_gives(data: st.DataObject) -> None:
    rows = data.draw(log_rows)
    log = make_log(rows)
    from_log = measure(log)
    from_counts = Measures(
        requests=from_log.requests, answered=from_log.answered, degraded=from_log.degraded
    )
    for name in ("availability", "error_rate", "degraded_share"):
        assert from_counts.value(name) == from_log.value(name)
    assert from_counts.p99_ms is None  # counts carry no latency


def test_counts_hand_checked() -> None:
    m = Measures(requests=200, answered=180, degraded=90)
    assert (m.errors, m.availability, m.error_rate, m.degraded_share) == (20, 0.9, 0.1, 0.5)
    assert Measures(requests=3, answered=0).degraded_share == 0.0
    counted = Measures(requests=np.int64(4), answered=np.int64(2))  # numpy counts
    assert type(counted.requests) is int and counted.availability == 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"requests": -1, "answered": 0}, r"requests=-1 must be an integer >= 0"),
        ({"requests": 1.5, "answered": 0}, r"requests=1.5 must be an integer >= 0"),
        ({"requests": True, "answered": 0}, r"requests=True must be an integer >= 0"),
        ({"requests": 2, "answered": 3}, r"answered=3 > requests=2"),
        ({"requests": 3, "answered": 2, "degraded": 3}, r"degraded=3 > answered=2"),
    ],
    ids=["negative", "float", "bool", "answered>requests", "degraded>answered"],
)
def test_inconsistent_counts_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Measures(**kwargs)


def test_counts_are_keyword_only() -> None:
    # positional (requests, errors, degraded) was the old guardrail Measurement's order;
    # keyword-only makes such a call fail instead of silently meaning (requests, answered)
    with pytest.raises(TypeError):
        Measures(100, 50, 0)  # type: ignore[misc]


def test_an_unknown_metric_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"metric='p98_ms' is not one of \['availability'"):
        Measures(requests=1, answered=1).value("p98_ms")
