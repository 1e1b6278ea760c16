"""Arrival schedules: the arithmetic (property-tested) and the argument checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaosrec.errors import ConfigError
from chaosrec.load.schedule import Arrivals, Schedule, constant, diurnal, ramp, spike, steps


def test_constant_is_exactly_i_over_rate() -> None:
    np.testing.assert_array_equal(constant(200, duration_s=1.5).times(), np.arange(300) / 200.0)


def _check_times(shape: Schedule) -> None:
    times = shape.times()
    assert times.shape == (shape.n_requests,)
    assert times[0] == 0.0
    assert (np.diff(times) >= 0).all()
    assert (times < shape.duration_s).all()
    # request i is due where the rate's integral passes i (to a microsecond)
    counts = shape.count(times[1:])
    np.testing.assert_allclose(counts, np.arange(1, shape.n_requests), atol=1e-3)


@given(
    start=st.floats(0, 500),
    end=st.floats(1, 500),
    duration=st.floats(0.5, 20),
)
def test_ramp_times_invert_its_integral(start: float, end: float, duration: float) -> None:
    _check_times(ramp(start, end, duration_s=duration))


@given(
    levels=st.lists(st.tuples(st.floats(0, 300), st.floats(0.1, 3)), min_size=1, max_size=5).filter(
        lambda ls: sum(r * s for r, s in ls) >= 2
    )
)
def test_steps_times_invert_their_integral(levels: list[tuple[float, float]]) -> None:
    _check_times(steps(levels))


@given(
    mean=st.floats(5, 300),
    amplitude=st.floats(0, 1),
    period=st.floats(0.5, 30),
    phase=st.floats(0, 10),
)
def test_diurnal_times_invert_its_integral(
    mean: float, amplitude: float, period: float, phase: float
) -> None:
    _check_times(diurnal(mean, amplitude=amplitude, period_s=period, duration_s=5, phase_s=phase))


def test_a_pause_sends_nothing_and_the_next_step_starts_on_time() -> None:
    times = steps([(10, 1), (0, 1), (10, 1)]).times()
    assert len(times) == 20
    assert not ((times >= 1.0) & (times < 2.0)).any()
    assert times[10] == pytest.approx(2.0, abs=1e-6)


def test_a_spike_sends_its_surge_inside_its_window() -> None:
    shape = spike(100, peak_rps=500, at_s=2, for_s=1, duration_s=5)
    times = shape.times()
    assert len(times) == 100 * 4 + 500
    assert ((times >= 2) & (times < 3)).sum() == 500
    np.testing.assert_array_equal(shape.rate(np.array([1.0, 2.5, 4.0])), [100, 500, 100])


def test_diurnal_starts_at_its_trough_and_peaks_half_a_period_later() -> None:
    shape = diurnal(100, amplitude=0.5, period_s=10, duration_s=10)
    np.testing.assert_allclose(shape.rate(np.array([0.0, 5.0])), [50, 150])
    assert shape.n_requests == 1000


def test_sums_add_curves_and_counts() -> None:
    base = diurnal(100, amplitude=0.5, period_s=10, duration_s=10)
    surge = spike(0, peak_rps=400, at_s=4, for_s=1, duration_s=10)
    both = base + surge
    assert both.n_requests == base.n_requests + surge.n_requests
    t = np.linspace(0, 9.99, 50)
    np.testing.assert_allclose(both.rate(t), base.rate(t) + surge.rate(t))
    _check_times(both)
    assert "diurnal" in both.describe() and "spike" in both.describe()


def test_arrivals_play_given_times() -> None:
    shape = Arrivals([0.0, 0.1, 0.1, 2.0])
    assert shape.n_requests == 4
    assert shape.duration_s == pytest.approx(2.001)
    np.testing.assert_array_equal(shape.times(), [0.0, 0.1, 0.1, 2.0])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda: constant(0, duration_s=1), r"rate_rps=0 must be > 0", id="zero"),
        pytest.param(
            lambda: constant(10, duration_s=4000),
            r"duration_s=4000 is above the maximum 3600",
            id="too-long",
        ),
        pytest.param(
            lambda: ramp(0, 0, duration_s=1), r"ramp\(from_rps=0, to_rps=0\) sends", id="ramp0"
        ),
        pytest.param(lambda: steps([]), r"non-empty list", id="steps-empty"),
        pytest.param(lambda: steps([(1, 2, 3)]), r"levels\[0\]=\(1, 2, 3\) must be", id="triple"),
        pytest.param(lambda: steps([(0, 1)]), r"every rate is 0", id="all-zero"),
        pytest.param(
            lambda: spike(10, peak_rps=50, at_s=4, for_s=2, duration_s=5),
            r"spike at_s=4 \+ for_s=2 ends after duration_s=5",
            id="spike-outside",
        ),
        pytest.param(
            lambda: diurnal(10, amplitude=1.5, period_s=5, duration_s=5),
            r"amplitude=1.5 is above the maximum 1",
            id="amplitude",
        ),
        pytest.param(
            lambda: diurnal(90_000, amplitude=0.5, period_s=5, duration_s=5),
            r"peaks at .* 135000/s, above the maximum",
            id="diurnal-peak",
        ),
        pytest.param(lambda: Arrivals([1.0, 0.5]), r"ascending", id="arrivals-order"),
    ],
)
def test_bad_arguments(make: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()
