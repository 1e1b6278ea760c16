"""GPU faults: device lost, degraded, out of memory, model unloaded.

On a machine without CUDA they are *emulated* at the device boundary inside the
replica: before each batch, the Triton model reads its replica's fault file and
fails the device call with PyTorch's CUDA error text (or slows it down), so Triton
answers that instance with a real inference error. ``ModelUnloaded`` is not
emulated: it uses Triton's own model-control API. With CUDA present, the
out-of-memory fault also exhausts real device memory for each failing batch.
"""

from __future__ import annotations

from typing import Any

from chaosrec.faults.base import Fault, TrafficCounter, undo_each
from chaosrec.faults.control import ServiceControl

__all__ = ["GpuFault", "ModelUnloaded"]


class GpuFault(Fault):
    """An emulated device fault on each replica; reverted by clearing the fault file."""

    def __init__(
        self,
        control: ServiceControl,
        replicas: tuple[str, ...],
        *,
        kind: str,
        fault: dict[str, Any],
        label: str,
        traffic: TrafficCounter | None = None,
    ) -> None:
        super().__init__(label, replicas, params=dict(fault), traffic=traffic)
        self.kind = kind
        self.control = control
        self.fault = fault
        self._set: list[str] = []

    def _inject(self) -> None:
        for replica in self.targets:
            self.control.set_gpu_fault(replica, self.fault)
            self._set.append(replica)

    def _revert(self) -> None:
        undo_each(self._set, lambda replica: self.control.set_gpu_fault(replica, {}))


class ModelUnloaded(Fault):
    """The model unloaded through Triton's model-control API; reverted by loading it again."""

    kind = "gpu_loss"

    def __init__(
        self,
        control: ServiceControl,
        replicas: tuple[str, ...],
        *,
        label: str,
        traffic: TrafficCounter | None = None,
    ) -> None:
        super().__init__(label, replicas, params={"mode": "unload"}, traffic=traffic)
        self.control = control
        self._unloaded: list[str] = []

    def _inject(self) -> None:
        for replica in self.targets:
            self._unloaded.append(replica)
            self.control.unload_model(replica)

    def _revert(self) -> None:
        undo_each(self._unloaded, lambda replica: self.control.load_model(replica, 1))
