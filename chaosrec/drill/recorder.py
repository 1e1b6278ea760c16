"""The drill recorder: phases, faults, load runs and verdicts of one drill, timestamped.

Phases follow the drill's life: ``baseline`` (load starts) → ``inject`` (a fault is
being applied) → ``observe`` (the fault is on) → ``rollback`` (it is being
reverted) → ``recover`` (after the last revert) → ``verify`` (SLOs checked). The
pytest fixtures move between them automatically; :meth:`Drill.phase` marks one by
hand. Reports render :meth:`Drill.to_dict`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from chaosrec.faults.base import Fault
from chaosrec.slo.objectives import FaultWindow, Verdict

__all__ = ["PHASES", "Drill", "Phase"]

PHASES = ("baseline", "inject", "observe", "rollback", "recover", "verify")


@dataclass
class Phase:
    name: str
    started_at: float  # epoch seconds
    ended_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "started_at": self.started_at, "ended_at": self.ended_at}


@dataclass
class _FaultRecord:
    fault: Fault
    injecting_at: float  # epoch
    started_at: float | None = None
    ended_at: float | None = None


@dataclass
class Drill:
    """Everything that happened in one drill."""

    name: str
    phases: list[Phase] = field(default_factory=list)
    runs: list[Any] = field(default_factory=list)  # LoadRun
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _faults: list[_FaultRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- phases ---------------------------------------------------------------------

    def enter(self, name: str) -> None:
        """Start phase ``name`` now (ending the current one); repeated names are merged."""
        now = time.time()
        with self._lock:
            if self.phases and self.phases[-1].name == name and self.phases[-1].ended_at is None:
                return
            if self.phases and self.phases[-1].ended_at is None:
                self.phases[-1].ended_at = now
            self.phases.append(Phase(name, now))

    def close(self) -> None:
        with self._lock:
            if self.phases and self.phases[-1].ended_at is None:
                self.phases[-1].ended_at = time.time()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Mark a phase by hand for the duration of a block."""
        self.enter(name)
        yield

    # -- listeners ------------------------------------------------------------------

    def on_fault(self, event: str, fault: Fault) -> None:
        now = time.time()
        if event == "injecting":
            self.enter("inject")
            with self._lock:
                self._faults.append(_FaultRecord(fault, now))
        elif event == "inject":
            record = self._record(fault)
            if record is not None:
                record.started_at = now
            self.enter("observe")
        elif event == "reverting":
            # the fault stops acting as its removal starts: the window ends here
            record = self._record(fault)
            if record is not None:
                record.ended_at = now
            self.enter("rollback")
        elif event == "revert":
            if not any(r.fault.active for r in self._faults):
                self.enter("recover")
            else:
                self.enter("observe")

    def _record(self, fault: Fault) -> _FaultRecord | None:
        with self._lock:
            for record in reversed(self._faults):
                if record.fault is fault:
                    return record
        return None

    def on_run_start(self, run: Any) -> None:
        with self._lock:
            self.runs.append(run)
        if not self.phases:
            self.enter("baseline")

    # -- views ----------------------------------------------------------------------

    @property
    def faults(self) -> list[Fault]:
        return [r.fault for r in self._faults]

    def fault_windows(self, t0_epoch: float) -> list[FaultWindow]:
        """Faults as windows on a run's clock (seconds since ``t0_epoch``)."""
        windows = []
        for record in self._faults:
            if record.started_at is None:
                continue
            windows.append(
                FaultWindow(
                    label=record.fault.label,
                    kind=record.fault.kind,
                    targets=tuple(record.fault.targets),
                    start_s=record.started_at - t0_epoch,
                    end_s=None if record.ended_at is None else record.ended_at - t0_epoch,
                    touched=record.fault.touched(),
                )
            )
        return windows

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "phases": [p.to_dict() for p in self.phases],
            "faults": [
                {
                    "label": r.fault.label,
                    "kind": r.fault.kind,
                    "targets": list(r.fault.targets),
                    "params": r.fault.params,
                    "injecting_at": r.injecting_at,
                    "started_at": r.started_at,
                    "ended_at": r.ended_at,
                    "touched": r.fault.touched(),
                }
                for r in self._faults
            ],
            "verdicts": [v.to_dict() for v in self.verdicts],
            "notes": list(self.notes),
        }
