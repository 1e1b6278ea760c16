"""What every fault is: injected once, reverted exactly once, whatever happens.

A :class:`Fault` is injected when it is created by the injector and reverted by
``__exit__``, by :meth:`Fault.revert`, or by the injector's teardown, whichever
comes first; later calls do nothing. A revert that fails is never swallowed: it
raises :class:`~chaosrec.errors.RollbackError` after trying every step.

Listeners (the drill recorder, reports) hear ``"injecting"`` (before), ``"inject"``
(after: the fault is on), ``"reverting"`` and ``"revert"`` (after: it is off).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, Self

from chaosrec.core.interrupts import signals_held
from chaosrec.errors import RollbackError

__all__ = ["Fault", "FaultListener", "TrafficCounter", "undo_each"]

FaultListener = Callable[[str, "Fault"], None]
#: returns a monotonically increasing count of traffic through the given targets,
#: or None when it cannot tell
TrafficCounter = Callable[[tuple[str, ...]], int | None]


def undo_each(items: list[str], undo: Callable[[str], object]) -> None:
    """Undo every item (newest first) even if some fail, then raise one error naming
    each failure; ``items`` is emptied."""
    errors: list[str] = []
    while items:  # an item leaves the list once undone (or failed): an interrupted undo
        item = items[-1]  # (Ctrl-C, SIGTERM) leaves what is still applied for a retry
        try:
            undo(item)
        except Exception as err:  # noqa: BLE001 - undo the rest, then report them all
            errors.append(f"{item}: {err}")
        items.pop()
    if errors:
        raise RuntimeError("; ".join(errors))


class Fault:
    """Base class: subclasses implement :meth:`_inject` and :meth:`_revert`."""

    kind: str = "fault"
    #: hold Ctrl-C/SIGTERM while the fault changes its targets (quick API calls); a fault
    #: whose change waits on something slow (a node drain) sets False, so an interrupt
    #: reaches it at once, and must then record each step before the next
    holds_signals: ClassVar[bool] = True

    def __init__(
        self,
        label: str,
        targets: tuple[str, ...],
        *,
        params: dict[str, Any] | None = None,
        traffic: TrafficCounter | None = None,
    ) -> None:
        self.label = label
        self.targets = targets
        self.params = dict(params or {})
        self.started_at: float | None = None  # time.monotonic()
        self.ended_at: float | None = None
        self._traffic = traffic
        self._traffic_before: int | None = None
        self._traffic_after: int | None = None
        self._listeners: list[FaultListener] = []
        self._lock = threading.Lock()
        self._active = False

    # -- lifecycle ------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._active

    def add_listener(self, listener: FaultListener) -> None:
        self._listeners.append(listener)

    def inject(self) -> Self:
        """Apply the fault (idempotent). If applying fails part-way, what was applied is
        reverted before the error propagates. Interrupting signals (Ctrl-C, SIGTERM) are
        held until the fault is on and known to rollback (:mod:`chaosrec.core.interrupts`),
        unless the class says otherwise (:attr:`holds_signals`)."""
        with signals_held(self.holds_signals), self._lock:
            if self._active or self.ended_at is not None:
                return self
            self._traffic_before = self._count()
            self._notify("injecting")
            # active before anything is applied: an interrupt (Ctrl-C, SIGTERM) landing
            # between the last change and the bookkeeping leaves a fault rollback reverts
            self._active = True
            try:
                self._inject()
            except BaseException:
                try:
                    self._revert()
                except Exception as err:
                    raise RollbackError(
                        f"{self.label}: injection failed and its partial rollback failed too: "
                        f"{err}; check the targets by hand"
                    ) from err
                self._active = False
                raise
            self.started_at = time.monotonic()
        self._notify("inject")
        return self

    def revert(self) -> None:
        """Undo the fault (idempotent). Raises :class:`RollbackError` if undoing failed.
        Interrupting signals are held until the fault is off, as for :meth:`inject`."""
        with signals_held(self.holds_signals), self._lock:
            if not self._active:
                return
            self._notify("reverting")
            self.ended_at = time.monotonic()
            try:
                self._revert()
            except Exception as err:
                self._active = False
                raise RollbackError(
                    f"{self.label}: rollback failed: {err}; the fault may still be in place"
                ) from err
            except BaseException:
                raise  # interrupted (Ctrl-C, SIGTERM): still active, so a retry reverts the rest
            else:
                self._active = False
            finally:
                self._traffic_after = self._count()
                self._notify("revert")

    def __enter__(self) -> Self:
        return self.inject()

    def __exit__(self, *exc: object) -> None:
        self.revert()

    # -- evidence -------------------------------------------------------------------

    def touched(self) -> bool | None:
        """Did traffic go through the targets while the fault was on? None: can't tell."""
        if self._traffic_before is None:
            return None
        after = self._traffic_after if self._traffic_after is not None else self._count()
        if after is None:
            return None
        return after > self._traffic_before

    def _count(self) -> int | None:
        if self._traffic is None:
            return None
        try:
            return self._traffic(self.targets)
        except Exception:  # noqa: BLE001 - evidence is best-effort, never breaks a drill
            return None

    def _notify(self, event: str) -> None:
        for listener in list(self._listeners):
            listener(event, self)

    # -- for subclasses ---------------------------------------------------------------

    def _inject(self) -> None:
        raise NotImplementedError

    def _revert(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        state = "active" if self._active else ("reverted" if self.ended_at else "pending")
        return f"<{type(self).__name__} {self.label} {state}>"
