"""Hold interrupting signals while a fault changes a target, so Ctrl-C or a CI job's
SIGTERM lands between changes, never inside one.

Python runs a signal's handler between two bytecodes of the main thread: a
``KeyboardInterrupt`` (or chaoslib's ``InterruptExecution`` on SIGTERM) can surface in
the middle of an HTTP call to Toxiproxy, between a change and the bookkeeping that lets
rollback find it, or inside a connection pool's lock that the rollback then waits on for
ever. :func:`signals_held` records those signals during the block and hands each to the
handler that was installed before, once, when the block ends. A second delivery of the
same signal while held runs its handler at once: an injection that hangs can still be
interrupted by pressing Ctrl-C twice.

Only the main thread can install signal handlers; elsewhere the block runs unguarded
(signals are delivered to the main thread anyway).

Example::

    with signals_held():
        client.set_enabled("region-a", False)
        applied.append("region-a")
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["HELD_SIGNALS", "signals_held"]

#: the signals that interrupt a session: Ctrl-C, a CI job's cancellation, a closed
#: terminal, chaoslib's graceful exits (SIGUSR1/2)
HELD_SIGNALS: tuple[str, ...] = ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2")


def _deliver(signum: int, handler: Any, frame: FrameType | None) -> None:
    """Give a held signal to the handler that was there before."""
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:  # the default action (terminate): let the OS do it
        os.kill(os.getpid(), signum)
    # SIG_IGN, or None (installed outside Python): nothing to do


@contextmanager
def signals_held(hold: bool = True) -> Iterator[None]:
    """Run the block with :data:`HELD_SIGNALS` held (see the module docstring); with
    ``hold=False``, as it is."""
    if not hold or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    pending: list[tuple[int, FrameType | None]] = []

    def held(signum: int, frame: FrameType | None) -> None:
        if any(s == signum for s, _ in pending):  # the second one: don't wait any longer
            pending[:] = [(s, f) for s, f in pending if s != signum]
            _deliver(signum, previous[signum], frame)
            return
        pending.append((signum, frame))
        if signum == signal.SIGINT:  # someone at a terminal: say why nothing happened yet
            sys.stderr.write(
                "chaosrec: Ctrl-C held until the fault change in progress completes "
                "(press it again to interrupt at once)\n"
            )

    for name in HELD_SIGNALS:
        number = getattr(signal, name, None)
        if number is None:
            continue
        try:
            previous[number] = signal.signal(number, held)
        except (ValueError, OSError):  # not settable here
            continue
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for signum, frame in pending:
            _deliver(signum, previous[signum], frame)
