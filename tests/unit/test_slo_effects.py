"""Fault versus baseline (chaosrec.slo.effects): the groups, the point differences
(measured by chaosrec.slo.measures), and the bootstrap intervals."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaosrec.errors import ConfigError
from chaosrec.slo.effects import (
    EFFECT_METRICS,
    bootstrap_measures,
    fault_effects,
    fault_phases,
)
from chaosrec.slo.log import RequestLog
from chaosrec.slo.measures import measure
from chaosrec.slo.objectives import FaultWindow


def window(start_s: float, end_s: float | None) -> FaultWindow:
    return FaultWindow("latency(region-a, ms=10)", "latency", ("region-a",), start_s, end_s)


def build_log(
    n: int,
    *,
    rate_rps: float = 100.0,
    latency_ms: Any = 10.0,
    status: Any = 200,
    degraded: Any = False,
) -> RequestLog:
    """``n`` requests at ``rate_rps``; each argument a value or ``f(t_s) -> value``."""
    rows = []
    for i in range(n):
        t = i / rate_rps

        def at(value: Any, t: float = t) -> Any:
            return value(t) if callable(value) else value

        rows.append((t, t, t + at(latency_ms) / 1000.0, at(status), "r", "r0", at(degraded), None))
    return RequestLog.from_rows(1_700_000_000.0, rows)


def test_the_groups_are_before_the_first_fault_and_inside_any_fault() -> None:
    log = build_log(1000)  # 0 .. 9.99 s
    baseline, fault = fault_phases(log, [window(3.0, 5.0), window(6.0, 7.0)]) or (None, None)
    assert baseline is not None and fault is not None
    assert float(baseline.scheduled_s.max()) < 3.0 and len(baseline) == 300
    assert len(fault) == 300  # 3-5 s and 6-7 s; 5-6 s (between faults) and after are neither
    inside = (fault.scheduled_s >= 3.0) & (fault.scheduled_s < 5.0)
    inside |= (fault.scheduled_s >= 6.0) & (fault.scheduled_s < 7.0)
    assert bool(inside.all())


def test_a_fault_still_on_lasts_until_the_end_and_no_fault_gives_none() -> None:
    log = build_log(500)
    groups = fault_phases(log, [window(2.0, None)])
    assert groups is not None and len(groups[1]) == 300
    assert fault_phases(log, []) is None
    assert fault_phases(log, [window(9.0, None)], run_end_s=5.0) is None  # after the run
    assert fault_effects(log, []) == []


def test_a_constant_shift_gives_its_exact_delta_and_a_zero_width_interval() -> None:
    log = build_log(1000, latency_ms=lambda t: 30.0 if 4.0 <= t < 8.0 else 10.0)
    effects = {e.metric: e for e in fault_effects(log, [window(4.0, 8.0)])}
    assert set(effects) == set(EFFECT_METRICS)
    for metric in ("p50_ms", "p99_ms"):
        e = effects[metric]
        assert (e.baseline, e.fault, e.delta) == pytest.approx((10.0, 30.0, 20.0))
        assert (e.ci_low, e.ci_high) == pytest.approx((20.0, 20.0))
        assert e.clear and e.n_baseline == 400 and e.n_fault == 400
    assert effects["availability"].delta == 0 and not effects["availability"].clear


def test_point_estimates_are_the_measures_of_each_group() -> None:
    rng = np.random.default_rng(7)
    lat = rng.gamma(2.0, 6.0, size=1200)
    log = build_log(
        1200,
        latency_ms=lambda t: float(lat[round(t * 100)]) + (25.0 if 5.0 <= t < 9.0 else 0.0),
        status=lambda t: 503 if 5.0 <= t < 9.0 and round(t * 100) % 20 == 0 else 200,
        degraded=lambda t: 5.0 <= t < 9.0 and round(t * 100) % 7 == 0,
    )
    baseline, fault = measure(log.window(0, 5.0)), measure(log.window(5.0, 9.0))
    effects = {e.metric: e for e in fault_effects(log, [window(5.0, 9.0)], resamples=400)}
    for metric, e in effects.items():
        before, after = baseline.value(metric), fault.value(metric)
        assert before is not None and after is not None
        assert (e.baseline, e.fault) == (before, after)
        assert e.delta == pytest.approx(after - before)
        assert e.ci_low <= e.delta <= e.ci_high, metric
    assert effects["availability"].delta == pytest.approx(-0.05)
    assert effects["availability"].clear and effects["p50_ms"].clear


def test_the_same_log_gives_the_same_interval() -> None:
    rng = np.random.default_rng(3)
    lat = rng.exponential(12.0, size=800)
    log = build_log(800, latency_ms=lambda t: float(lat[round(t * 100)]) * (2 if t >= 4 else 1))
    first = fault_effects(log, [window(4.0, None)], resamples=200)
    assert first == fault_effects(log, [window(4.0, None)], resamples=200)
    assert first != fault_effects(log, [window(4.0, None)], resamples=200, seed=1)


def test_figures_with_too_few_requests_are_left_out() -> None:
    log = build_log(400)  # baseline 0-1 s: 100 requests, fault 1-1.5 s: 50 requests
    metrics = {e.metric for e in fault_effects(log, [window(1.0, 1.5)])}
    assert metrics == {"p50_ms", "availability", "degraded_share"}  # no p99 of 50 answers
    nothing_answered = build_log(400, status=lambda t: 503 if t >= 1.0 else 200)
    metrics = {e.metric for e in fault_effects(nothing_answered, [window(1.0, None)])}
    assert metrics == {"availability"}  # no latency nor degraded share without answers


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(1, 300),
    error_every=st.integers(1, 10),
)
def test_bootstrap_resamples_are_measured_like_a_log(seed: int, n: int, error_every: int) -> None:
    rng = np.random.default_rng(seed)
    lat = rng.gamma(2.0, 5.0, size=n)
    log = build_log(
        n,
        latency_ms=lambda t: float(lat[round(t * 100)]),
        status=lambda t: 500 if round(t * 100) % error_every == 0 else 200,
        degraded=lambda t: round(t * 100) % 3 == 0,
    )
    idx_rng = np.random.default_rng(seed)
    samples = bootstrap_measures(log, 5, np.random.default_rng(seed))
    for sample in samples:
        picked = log.select(idx_rng.integers(0, n, size=n))  # the same draws, one by one
        assert sample == measure(picked)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": ("p98_ms",)}, "metric='p98_ms'"),
        ({"confidence": 1.0}, "confidence=1.0 must be in (0, 1)"),
        ({"confidence": 0}, "confidence=0 must be in (0, 1)"),
        ({"resamples": 5}, "resamples=5 is too few"),
        ({"resamples": 0}, "resamples=0 must be an integer >= 1"),
    ],
    ids=["unknown-metric", "confidence-1", "confidence-0", "too-few-resamples", "no-resamples"],
)
def test_bad_arguments_fail_with_one_line(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        fault_effects(build_log(10), [window(0.05, None)], **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_effects_round_trip_as_plain_data() -> None:
    log = build_log(600, latency_ms=lambda t: 20.0 if t >= 3 else 10.0)
    for effect in fault_effects(log, [window(3.0, None)], resamples=50):
        assert type(effect).from_dict(effect.to_dict()) == effect
        assert not math.isnan(effect.ci_low)
