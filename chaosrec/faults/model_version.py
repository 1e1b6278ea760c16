"""A worse model version goes live (hot-swapped through Triton's model control)."""

from __future__ import annotations

from chaosrec.faults.base import Fault, TrafficCounter, undo_each
from chaosrec.faults.control import ServiceControl

__all__ = ["ModelVersionSwap"]


class ModelVersionSwap(Fault):
    """Serve model ``version`` on each replica; reverted by loading ``good_version`` again.

    Triton loads the new version before unloading the old one, so the swap itself
    drops no request; only the answers' quality changes.
    """

    kind = "bad_model"

    def __init__(
        self,
        control: ServiceControl,
        replicas: tuple[str, ...],
        *,
        version: int = 2,
        good_version: int = 1,
        label: str,
        traffic: TrafficCounter | None = None,
    ) -> None:
        super().__init__(label, replicas, params={"version": version}, traffic=traffic)
        self.control = control
        self.version = version
        self.good_version = good_version
        self._swapped: list[str] = []

    def _inject(self) -> None:
        for replica in self.targets:
            self._swapped.append(replica)
            self.control.load_model(replica, self.version)

    def _revert(self) -> None:
        undo_each(
            self._swapped, lambda replica: self.control.load_model(replica, self.good_version)
        )
