"""Ctrl-C and SIGTERM land between fault changes, never inside one (real signals, sent
to this process)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chaosrec.core.interrupts import signals_held
from chaosrec.faults.base import Fault, undo_each


@pytest.fixture(autouse=True)
def _main_thread() -> Iterator[None]:
    assert threading.current_thread() is threading.main_thread()  # handlers live there
    before = signal.getsignal(signal.SIGINT)
    yield
    assert signal.getsignal(signal.SIGINT) is before  # every block restored it


def test_a_ctrl_c_inside_the_block_is_raised_when_it_ends() -> None:
    steps = []
    with pytest.raises(KeyboardInterrupt), signals_held():
        steps.append("first change")
        signal.raise_signal(signal.SIGINT)
        steps.append("second change")  # reached: the interrupt waited
    assert steps == ["first change", "second change"]


def test_a_second_ctrl_c_interrupts_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    steps = []
    with pytest.raises(KeyboardInterrupt), signals_held():
        signal.raise_signal(signal.SIGINT)
        steps.append("after the first")
        signal.raise_signal(signal.SIGINT)
        steps.append("after the second")  # never reached
    assert steps == ["after the first"]
    assert "press it again to interrupt at once" in capsys.readouterr().err


def test_a_held_sigterm_goes_to_the_handler_installed_before() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with signals_held():
            signal.raise_signal(signal.SIGTERM)
            assert seen == []  # held
        assert seen == [signal.SIGTERM]  # delivered once, when the block ended
        signal.raise_signal(signal.SIGTERM)
        assert seen == [signal.SIGTERM, signal.SIGTERM]  # the handler is back in place
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_off_the_main_thread_the_block_runs_unguarded() -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with signals_held():
                pass
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == []


class _TwoStepFault(Fault):
    """Two changes, with Ctrl-C pressed between them (a list stands for the target)."""

    kind = "two-step"

    def __init__(self, target: list[str]) -> None:
        super().__init__("two-step(a, b)", ("a", "b"))
        self.target = target
        self.applied: list[str] = []

    def _inject(self) -> None:
        for item in ("a", "b"):
            self.target.append(item)
            self.applied.append(item)
            if item == "a":
                signal.raise_signal(signal.SIGINT)

    def _revert(self) -> None:
        undo_each(self.applied, self.target.remove)


def test_ctrl_c_during_an_injection_leaves_a_whole_fault_that_rollback_reverts() -> None:
    target: list[str] = []
    fault = _TwoStepFault(target)
    with pytest.raises(KeyboardInterrupt):
        fault.inject()
    assert target == ["a", "b"] and fault.active  # applied whole, and rollback knows it
    fault.revert()
    assert target == [] and not fault.active


def test_an_interrupted_undo_keeps_what_is_still_applied_for_a_retry() -> None:
    applied = ["a", "b", "c"]
    undone: list[str] = []

    def undo(item: Any) -> None:
        if item == "b" and "b" not in undone:
            undone.append(item)  # half-way through this item
            raise KeyboardInterrupt
        undone.append(item)

    with pytest.raises(KeyboardInterrupt):
        undo_each(applied, undo)
    assert applied == ["a", "b"]  # "c" is off; "b" may not be: retried
    undo_each(applied, undo)
    assert applied == [] and undone == ["c", "b", "b", "a"]


class _SlowChangeFault(_TwoStepFault):
    """A fault whose change waits on something slow (as a node drain): not held."""

    holds_signals = False


def test_a_fault_that_does_not_hold_signals_is_interrupted_at_once_and_undone() -> None:
    target: list[str] = []
    fault = _SlowChangeFault(target)
    with pytest.raises(KeyboardInterrupt):
        fault.inject()
    assert target == [] and not fault.active  # what it had applied, reverted on the way out
    assert fault.applied == []
