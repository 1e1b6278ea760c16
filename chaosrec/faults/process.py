"""Process faults: a replica's Triton killed with SIGKILL, held down or left to the supervisor."""

from __future__ import annotations

from chaosrec.faults.base import Fault, TrafficCounter, undo_each
from chaosrec.faults.control import ServiceControl

__all__ = ["ReplicaKilled"]


class ReplicaKilled(Fault):
    """SIGKILL each replica's Triton.

    ``hold=True`` (GPU loss / region kill): the supervisor keeps them down until the
    fault is reverted, then restarts them. ``hold=False`` (a crash): the supervisor
    restarts them at once; the stack's events record crash, restart and ready times.
    """

    def __init__(
        self,
        control: ServiceControl,
        replicas: tuple[str, ...],
        *,
        kind: str,
        hold: bool,
        label: str,
        traffic: TrafficCounter | None = None,
    ) -> None:
        super().__init__(label, replicas, params={"hold": hold}, traffic=traffic)
        self.kind = kind
        self.control = control
        self.hold = hold
        self.killed_pids: dict[str, int | None] = {}

    def _inject(self) -> None:
        for replica in self.targets:
            self.killed_pids[replica] = self.control.kill_replica(replica, hold=self.hold)

    def _revert(self) -> None:
        undo_each(list(self.killed_pids), self.control.release_replica)
