"""Model artifact lost or corrupted on a replica's disk (restored from backup on revert)."""

from __future__ import annotations

from typing import Any

from chaosrec.faults.base import Fault, TrafficCounter, undo_each
from chaosrec.faults.control import ArtifactControl

__all__ = ["ARTIFACT_MODES", "ModelArtifactLost"]

ARTIFACT_MODES = ("delete", "corrupt")


class ModelArtifactLost(Fault):
    """Delete or corrupt the model weights of every version on each replica's disk, then
    crash the replica so it must load them again (its restarts fail while the fault is on).

    Reverted by restoring the model folder from the stack's checksummed backup; the
    supervisor's next restart then loads the restored model. :attr:`restore_reports`
    says which files were rewritten and how many verified.
    """

    kind = "artifact_loss"

    def __init__(
        self,
        control: ArtifactControl,
        replicas: tuple[str, ...],
        *,
        mode: str,
        label: str,
        traffic: TrafficCounter | None = None,
    ) -> None:
        super().__init__(label, replicas, params={"mode": mode}, traffic=traffic)
        self.control = control
        self.mode = mode
        self.damaged: dict[str, list[str]] = {}
        self.restore_reports: dict[str, Any] = {}

    def _inject(self) -> None:
        for replica in self.targets:
            self.damaged[replica] = self.control.damage_model(replica, self.mode)
            self.control.kill_replica(replica, hold=False)

    def _revert(self) -> None:
        def restore(replica: str) -> None:
            self.restore_reports[replica] = self.control.restore_model(replica)

        undo_each(list(self.damaged), restore)
