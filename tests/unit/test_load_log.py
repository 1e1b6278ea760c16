"""RequestLog: the columns a load run leaves behind, and the arithmetic on them."""

from __future__ import annotations

import csv
import io
import itertools
from typing import Any

import numpy as np
import pytest

from chaosrec.slo.log import STATUS_CLIENT_DROPPED, STATUS_TRANSPORT_ERROR, RequestLog

# (scheduled_s, sent_s, done_s, status, region, replica, degraded, error), deliberately unsorted
ROWS: list[tuple[Any, ...]] = [
    (0.02, 0.021, 0.050, 503, "r2", "r2.0", False, "HTTP 503"),
    (0.00, 0.001, 0.011, 200, "r1", "r1.0", False, None),
    (0.03, 0.030, 0.030, STATUS_CLIENT_DROPPED, None, None, False, "dropped"),
    (0.01, 0.012, 0.112, 200, "r1", "r1.1", True, None),
    (0.04, 0.041, 5.041, STATUS_TRANSPORT_ERROR, None, None, False, "ServerTimeoutError"),
    (0.05, 0.050, 0.060, 299, "r1", "r1.0", False, None),
    (0.06, 0.060, 0.070, 302, "r1", "r1.0", False, None),
    (0.07, 0.070, 0.080, 199, "r1", "r1.0", False, None),
]


@pytest.fixture
def log() -> RequestLog:
    return RequestLog.from_rows(1_700_000_000.0, ROWS)


def test_from_rows_sorts_every_column_by_scheduled_time(log: RequestLog) -> None:
    assert len(log) == len(ROWS)
    assert log.t0_epoch == 1_700_000_000.0
    np.testing.assert_array_equal(log.scheduled_s, sorted(r[0] for r in ROWS))
    # the other columns moved with their row, not independently
    by_time = {r[0]: r for r in ROWS}
    for i, scheduled in enumerate(log.scheduled_s):
        row = by_time[float(scheduled)]
        assert log.sent_s[i] == row[1]
        assert log.done_s[i] == row[2]
        assert log.status[i] == row[3]
        assert log.region[i] == row[4]
        assert log.replica[i] == row[5]
        assert log.degraded[i] == row[6]
        assert log.error[i] == row[7]


def test_from_rows_column_dtypes(log: RequestLog) -> None:
    assert log.scheduled_s.dtype == np.float64
    assert log.sent_s.dtype == np.float64
    assert log.done_s.dtype == np.float64
    assert log.status.dtype == np.int32
    assert log.degraded.dtype == np.bool_
    assert log.region.dtype == object
    assert log.replica.dtype == object
    assert log.error.dtype == object


def test_from_rows_does_not_mutate_its_input() -> None:
    rows = list(ROWS)
    RequestLog.from_rows(0.0, rows)
    assert rows == ROWS


def test_from_rows_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError):
        RequestLog.from_rows(0.0, [ROWS[0], ROWS[1][:-1]])


def test_ok_is_2xx_only(log: RequestLog) -> None:
    ok_statuses = sorted(int(s) for s in log.status[log.ok])
    assert ok_statuses == [200, 200, 299]
    # 199, 302, 503, transport errors (0) and client drops (-1) are not OK
    assert sorted(int(s) for s in log.status[~log.ok]) == [-1, 0, 199, 302, 503]


def test_ok_includes_degraded_answers(log: RequestLog) -> None:
    assert log.degraded.any()
    assert log.ok[log.degraded].all()


def test_latency_counts_from_schedule_service_from_send() -> None:
    # sent 100 ms late (e.g. the generator was stalled), answered 10 ms after sending
    log = RequestLog.from_rows(0.0, [(1.0, 1.1, 1.11, 200, None, None, False, None)])
    np.testing.assert_allclose(log.latency_ms, [110.0])
    np.testing.assert_allclose(log.service_ms, [10.0])


def test_latency_is_never_below_service_time_when_sends_are_not_early(log: RequestLog) -> None:
    assert (log.sent_s >= log.scheduled_s).all()
    assert (log.latency_ms >= log.service_ms).all()
    np.testing.assert_allclose(
        log.latency_ms - log.service_ms, (log.sent_s - log.scheduled_s) * 1000.0
    )


def test_dropped_request_has_no_service_time(log: RequestLog) -> None:
    dropped = log.select(log.status == STATUS_CLIENT_DROPPED)
    assert len(dropped) == 1
    np.testing.assert_array_equal(dropped.service_ms, [0.0])


@pytest.mark.parametrize(
    ("start_s", "end_s", "expected"),
    [
        pytest.param(0.0, 0.02, [0.00, 0.01], id="start-inclusive-end-exclusive"),
        pytest.param(0.01, 0.03, [0.01, 0.02], id="interior"),
        pytest.param(0.07, 0.08, [0.07], id="last-row"),
        pytest.param(0.005, 0.006, [], id="between-rows"),
        pytest.param(0.03, 0.03, [], id="empty-interval"),
        pytest.param(0.05, 0.01, [], id="reversed-interval"),
        pytest.param(-1.0, 10.0, [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07], id="all"),
    ],
)
def test_window_is_half_open(
    log: RequestLog, start_s: float, end_s: float, expected: list[float]
) -> None:
    window = log.window(start_s, end_s)
    np.testing.assert_array_equal(window.scheduled_s, expected)
    assert window.t0_epoch == log.t0_epoch


def test_adjacent_windows_partition_the_log(log: RequestLog) -> None:
    edges = [0.0, 0.02, 0.05, 1.0]
    sizes = [len(log.window(a, b)) for a, b in itertools.pairwise(edges)]
    assert sizes == [2, 3, 3]
    assert sum(sizes) == len(log)


def test_select_keeps_columns_aligned(log: RequestLog) -> None:
    failed = log.select(log.status == 503)
    assert len(failed) == 1
    assert failed.region[0] == "r2"
    assert failed.replica[0] == "r2.0"
    assert failed.error[0] == "HTTP 503"
    np.testing.assert_allclose(failed.latency_ms, [30.0])


def test_to_csv_header_and_rows(log: RequestLog) -> None:
    text = log.to_csv()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "scheduled_s",
        "sent_s",
        "latency_ms",
        "status",
        "region",
        "replica",
        "degraded",
        "error",
    ]
    assert len(rows) == 1 + len(log)
    assert rows[1] == ["0.000000", "0.001000", "11.000", "200", "r1", "r1.0", "0", ""]
    assert rows[2] == ["0.010000", "0.012000", "102.000", "200", "r1", "r1.1", "1", ""]
    assert rows[3] == ["0.020000", "0.021000", "30.000", "503", "r2", "r2.0", "0", "HTTP 503"]
    # missing region / replica / error are empty cells, not "None"
    assert rows[4] == ["0.030000", "0.030000", "0.000", "-1", "", "", "0", "dropped"]
    assert rows[5][3:] == ["0", "", "", "0", "ServerTimeoutError"]


def test_empty_log() -> None:
    log = RequestLog.from_rows(0.0, [])
    assert len(log) == 0
    assert log.latency_ms.shape == (0,)
    assert log.service_ms.shape == (0,)
    assert log.ok.shape == (0,)
    assert log.status.dtype == np.int32
    assert len(log.window(0.0, 1.0)) == 0
    assert len(log.select(log.ok)) == 0
    assert list(csv.reader(io.StringIO(log.to_csv()))) == [
        ["scheduled_s", "sent_s", "latency_ms", "status", "region", "replica", "degraded", "error"]
    ]


def test_window_of_empty_selection_is_empty_but_well_typed(log: RequestLog) -> None:
    nothing = log.window(100.0, 200.0)
    assert len(nothing) == 0
    assert nothing.scheduled_s.dtype == np.float64
    assert nothing.status.dtype == np.int32
    assert nothing.to_csv().count("\n") == 1
