"""The regression rule (chaosrec.slo.regression): median and MAD of a drill's last runs,
a margin no smaller than the figure's floors, and which way is worse."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaosrec.errors import ConfigError
from chaosrec.slo.regression import (
    FIGURES,
    MAD_TO_SIGMA,
    Regression,
    RegressionRule,
    false_alarms,
    format_figure,
)

RULE = RegressionRule(runs=10, min_runs=5, k=4.0)
STEADY_RTO = [0.0, 0.5, 0.0, 0.0, 0.5, 0.0]  # RTO is measured in 0.5 s windows


@pytest.mark.parametrize(
    ("figure", "history", "value", "regressed"),
    [
        ("rto_s", STEADY_RTO, 1.0, False),  # two windows: the measurement's resolution x 2
        ("rto_s", STEADY_RTO, 1.5, True),  # past median 0 + floor 1.0
        ("rto_s", STEADY_RTO, math.inf, True),  # never recovered
        ("rto_s", [math.inf] * 6, math.inf, False),  # it never did
        ("rto_s", STEADY_RTO[:4], 5.0, False),  # 4 runs < min_runs 5: not judged
        ("rto_s", [None, None, *STEADY_RTO[:4]], 5.0, False),  # None is no run
        ("p99_ms", [30.0, 32.0, 29.0, 31.0, 30.0], 70.0, False),  # within the 40 ms floor
        ("p99_ms", [30.0, 32.0, 29.0, 31.0, 30.0], 71.0, True),
        ("p99_ms", [300.0, 320.0, 290.0, 310.0, 300.0], 450.0, False),  # relative floor 150
        ("p99_ms", [300.0, 320.0, 290.0, 310.0, 300.0], 451.0, True),
        ("p99_ms", [30.0, 80.0, 20.0, 90.0, 25.0, 60.0], 170.0, False),  # noisy: 4 spreads
        ("availability", [1.0] * 5, 0.997, False),  # floor 0.4 percentage points
        ("availability", [1.0] * 5, 0.995, True),  # lower is worse
        ("availability", [0.99] * 5, 1.0, False),  # better is never a regression
        ("degraded_share", [0.0] * 5, 0.03, True),
        ("mttd_s", [0.05, 0.1, 0.05, 0.08, 0.06], 0.5, False),  # floor 0.5 s
        ("mttd_s", [0.05, 0.1, 0.05, 0.08, 0.06], 1.6, True),
    ],
)
def test_the_rule(figure: str, history: list[Any], value: float, regressed: bool) -> None:
    found = RULE.judge(figure, history[::-1], value)
    assert (found is not None) == regressed, found


def test_the_regression_says_what_it_was_compared_with() -> None:
    found = RULE.judge("rto_s", [0.0, 0.5, 0.0, 0.0, 0.5], 1.5)
    assert found == Regression("rto_s", 1.5, 0.0, 0.0, 1.0, 5)
    assert found.describe() == (
        "rto_s 1.50 s: median of the last 5 runs 0.00 s, regressed past 1.00 s"
    )
    assert Regression.from_dict(found.to_dict()) == found


def test_only_the_latest_runs_count() -> None:
    newest_first = [10.0] * 10 + [1000.0] * 10  # long ago the p99 was awful
    base = RULE.baseline("p99_ms", newest_first)
    assert base is not None and base.median == 10.0 and base.runs == 10
    assert RULE.judge("p99_ms", newest_first, 55.0) is not None


def test_the_baseline_is_median_and_scaled_mad() -> None:
    history = [12.0, 15.0, 11.0, 40.0, 13.0, 14.0]
    base = RULE.baseline("p99_ms", history)
    assert base is not None
    median = statistics.median(history)
    spread = MAD_TO_SIGMA * statistics.median(abs(v - median) for v in history)
    assert (base.median, base.spread) == pytest.approx((median, spread))
    assert base.threshold == pytest.approx(median + max(4 * spread, 40.0, 0.5 * median))


finite = st.floats(0.0, 10_000.0, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(history=st.lists(finite, min_size=5, max_size=12), value=finite, more=finite)
def test_worse_values_stay_regressed_and_the_median_never_is(
    history: list[float], value: float, more: float
) -> None:
    if RULE.judge("p99_ms", history, value) is not None:
        assert RULE.judge("p99_ms", history, value + more) is not None
    assert RULE.judge("p99_ms", history, statistics.median(history[:10])) is None


@settings(max_examples=100, deadline=None)
@given(history=st.lists(st.floats(0.9, 1.0), min_size=5, max_size=10), drop=finite)
def test_availability_regresses_downwards_only(history: list[float], drop: float) -> None:
    best = max(history)
    assert RULE.judge("availability", history, best) is None
    if RULE.judge("availability", history, best - drop / 10_000) is not None:
        assert best - drop / 10_000 < statistics.median(history[:10])


def test_false_alarms_replays_each_run_against_the_runs_before_it() -> None:
    steady = [30.0, 31.0, 29.0, 30.0, 32.0, 30.0, 31.0, 90.0, 30.0]
    flags, judged = false_alarms([steady, [1.0, 2.0]], "p99_ms", RULE)
    assert judged == 4  # runs 6-9 of the first series have >= 5 runs before them
    assert flags == 1  # the 90 ms run


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"runs": 0}, "runs=0 must be an integer >= 1"),
        ({"runs": 5, "min_runs": 6}, "min_runs=6 is above the maximum of 5"),
        ({"k": 0}, "k=0 must be > 0"),
        ({"k": -1.0}, "k=-1.0 must be >= 0"),
        ({"busy_lag_ms": -1.0}, "busy_lag_ms=-1.0 must be >= 0"),
    ],
    ids=["no-runs", "min-above-runs", "k-zero", "k-negative", "negative-lag"],
)
def test_bad_rules_fail_with_one_line(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        RegressionRule(**kwargs)
    assert message in str(info.value)


def test_a_run_whose_load_generator_lagged_is_busy() -> None:
    assert RULE.busy(5.5) and not RULE.busy(5.0) and not RULE.busy(None)
    assert not RegressionRule(busy_lag_ms=None).busy(1e6)


def test_an_unknown_figure_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="figure='p98_ms'"):
        RULE.judge("p98_ms", [1.0] * 5, 2.0)


@pytest.mark.parametrize(
    ("figure", "value", "shown"),
    [
        ("rto_s", 1.5, "1.50 s"),
        ("rto_s", math.inf, "never"),
        ("p99_ms", 14.24, "14.2 ms"),
        ("availability", 0.99901, "0.9990"),
        ("mttd_s", None, "-"),
    ],
)
def test_figures_are_shown_in_their_units(figure: str, value: Any, shown: str) -> None:
    assert format_figure(figure, value) == shown
    assert figure in FIGURES
