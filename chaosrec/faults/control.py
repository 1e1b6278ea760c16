"""What a target must offer for service-level faults (the embedded stack implements it)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["ArtifactControl", "ServiceControl"]


class ServiceControl(Protocol):
    """Control-plane operations on replicas, by replica id."""

    def set_gpu_fault(self, replica_id: str, fault: dict[str, Any]) -> None: ...

    def kill_replica(self, replica_id: str, *, hold: bool = False) -> int | None: ...

    def release_replica(self, replica_id: str) -> None: ...

    def unload_model(self, replica_id: str) -> None: ...

    def load_model(self, replica_id: str, version: int = 1) -> None: ...


@runtime_checkable
class ArtifactControl(ServiceControl, Protocol):
    """A control plane that can also damage a replica's model files on disk and restore
    them from a checksummed backup (the embedded stack; not a stack in another process)."""

    def damage_model(self, replica_id: str, mode: str) -> list[str]: ...

    def restore_model(self, replica_id: str) -> Any: ...
