"""The load run's row recorder: snapshots from any thread, sorted, copies, consistent."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaosrec.load.recorder import RowRecorder
from chaosrec.slo.log import COLUMNS, RequestLog, Row

T0_EPOCH = 1_700_000_000.0


def row(i: int, rate_rps: float = 100.0) -> Row:
    scheduled = i / rate_rps
    status = (200, 503, 0, -1)[i % 4]
    region = None if status <= 0 else f"r{i % 3}"
    replica = None if region is None else f"{region}.{i % 2}"
    error = None if status == 200 else f"status {status}"
    return (scheduled, scheduled + 0.001, scheduled + 0.01 + i % 7 / 1000, status, region,
            replica, i % 5 == 0 and status == 200, error)  # fmt: skip


def assert_same_log(got: RequestLog, expected: RequestLog) -> None:
    assert got.t0_epoch == expected.t0_epoch
    for name, dtype in COLUMNS:
        column = getattr(got, name)
        assert column.dtype == dtype, name
        np.testing.assert_array_equal(column, getattr(expected, name), err_msg=name)


@settings(max_examples=100, deadline=None)
@given(
    order=st.permutations(list(range(60))),
    cuts=st.lists(st.integers(0, 60), max_size=5),
)
def test_snapshots_equal_the_log_of_the_rows_recorded_so_far(
    order: list[int], cuts: list[int]
) -> None:
    """Rows arrive in any order (answers complete out of schedule order); every snapshot
    is the sorted log of exactly the rows recorded before it."""
    recorder = RowRecorder()
    done = 0
    for cut in [*sorted(cuts), len(order)]:
        for i in order[done:cut]:
            recorder.record(i, row(i))
        done = max(done, cut)
        expected = RequestLog.from_rows(T0_EPOCH, [row(i) for i in order[:done]])
        assert_same_log(recorder.snapshot(T0_EPOCH), expected)
        assert len(recorder) == done


def test_a_snapshot_is_a_copy_later_rows_leave_alone() -> None:
    recorder = RowRecorder()
    for i in (0, 2):
        recorder.record(i, row(i))
    first = recorder.snapshot(T0_EPOCH)
    for i in range(1, 3000, 2):  # fills the hole at 1 and grows past the first capacity
        recorder.record(i, row(i))
    second = recorder.snapshot(T0_EPOCH)
    assert first.scheduled_s.tolist() == [0.0, 0.02]
    assert first.status.tolist() == [200, 0]
    assert len(second) == 2 + 1500
    assert recorder.snapshot(T0_EPOCH) is second  # nothing new: the same log, no work


def test_the_run_clock_can_be_set_after_the_first_snapshot() -> None:
    recorder = RowRecorder()
    assert len(recorder.snapshot(0.0)) == 0  # before the run started
    recorder.record(0, row(0))
    assert recorder.snapshot(T0_EPOCH).t0_epoch == T0_EPOCH


def test_snapshots_while_another_thread_records() -> None:
    """The loop thread records 20,000 rows while this thread snapshots: every snapshot is
    well formed, sorted and no smaller than the previous one; the last holds them all."""
    n = 20_000
    recorder = RowRecorder()
    order = list(range(n))
    rng = random.Random(7)
    for start in range(0, n, 50):  # answers arrive out of order within short spans
        chunk = order[start : start + 50]
        rng.shuffle(chunk)
        order[start : start + 50] = chunk
    finished = threading.Event()

    def loop() -> None:
        for i in order:
            recorder.record(i, row(i, rate_rps=2000))
        finished.set()

    writer = threading.Thread(target=loop)
    writer.start()
    sizes = []
    while not finished.is_set():
        log = recorder.snapshot(T0_EPOCH)
        assert (np.diff(log.scheduled_s) > 0).all()
        assert len({len(getattr(log, name)) for name, _ in COLUMNS}) == 1
        sizes.append(len(log))
    writer.join()
    final = recorder.snapshot(T0_EPOCH)
    assert sizes == sorted(sizes)
    assert_same_log(final, RequestLog.from_rows(T0_EPOCH, [row(i, 2000) for i in range(n)]))


def test_from_columns_checks_the_number_of_columns() -> None:
    with pytest.raises(ValueError, match="got 2 columns; a request log has 8"):
        RequestLog.from_columns(0.0, [[], []])
