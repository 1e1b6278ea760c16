"""What a target must offer for service-level faults (the embedded stack implements it)."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["ServiceControl"]


class ServiceControl(Protocol):
    """Control-plane operations on replicas, by replica id."""

    def set_gpu_fault(self, replica_id: str, fault: dict[str, Any]) -> None: ...

    def kill_replica(self, replica_id: str, *, hold: bool = False) -> int | None: ...

    def release_replica(self, replica_id: str) -> None: ...

    def unload_model(self, replica_id: str) -> None: ...

    def load_model(self, replica_id: str, version: int = 1) -> None: ...
