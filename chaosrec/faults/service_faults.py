"""Service-level faults of the injector: regions, GPUs, processes and models of a
recommender (they need its topology, and a control plane for the GPU and model ones)."""

from __future__ import annotations

from chaosrec.core.validation import check_choice, check_fraction, check_positive
from chaosrec.errors import UnsupportedFaultError
from chaosrec.faults.artifact import ARTIFACT_MODES, ModelArtifactLost
from chaosrec.faults.base import Fault
from chaosrec.faults.control import ArtifactControl
from chaosrec.faults.gpu import GpuFault, ModelUnloaded
from chaosrec.faults.injector_core import (
    GPU_LOSS_MODES,
    REGION_OUTAGE_MODES,
    InjectorCore,
    Target,
    deprecated_alias,
    target_name,
)
from chaosrec.faults.model_version import ModelVersionSwap
from chaosrec.faults.network import ProxyDown, Toxic
from chaosrec.faults.process import ReplicaKilled

__all__ = ["ServiceFaults"]


class ServiceFaults(InjectorCore):
    """Region outages, GPU loss/degradation/OOM, crashes, bad model versions and lost
    model artifacts."""

    def region_outage(self, region: str, mode: str = "refuse") -> Fault:
        """A whole region fails: ``refuse`` (proxies down), ``blackhole`` (proxies swallow
        everything) or ``kill`` (its Triton processes killed and held down)."""
        check_choice("mode", mode, REGION_OUTAGE_MODES)
        if self.topology is None:
            raise UnsupportedFaultError(
                "region_outage needs a recommender topology (the recsys fixture or a "
                "remote target config with a topology)"
            )
        replicas = tuple(r.id for r in self.topology.region_replicas(region))
        label = f"region_outage({region}, mode={mode})"
        fault: Fault
        if mode == "refuse":
            fault = ProxyDown(
                self.toxiproxy,
                replicas,
                label=label,
                traffic=self._refusal_evidence(),
                kind="region_outage",
                ledger=self.ledger,
            )
        elif mode == "blackhole":
            fault = Toxic(
                self.toxiproxy,
                replicas,
                kind="region_outage",
                toxic_type="timeout",
                attributes={"timeout": 0},
                stream="downstream",
                toxicity=1.0,
                label=label,
                traffic=self.traffic,
                ledger=self.ledger,
            )
        else:
            self.resolve_replicas(region, "region_outage(mode='kill')")
            assert self.control is not None
            fault = ReplicaKilled(
                self.control,
                replicas,
                kind="region_outage",
                hold=True,
                label=label,
                traffic=self.traffic,
            )
        fault.params["mode"] = mode
        return self._start(fault)

    def gpu_loss(self, replica: Target, mode: str = "error") -> Fault:
        """The replica's GPU is lost: ``error`` (every inference fails with the CUDA
        device-lost error, emulated without CUDA), ``unload`` (model unloaded through
        Triton's model control) or ``kill`` (Triton process killed and held down)."""
        check_choice("mode", mode, GPU_LOSS_MODES)
        replicas = self.resolve_replicas(replica, "gpu_loss")
        label = f"gpu_loss({target_name(replica)}, mode={mode})"
        assert self.control is not None
        fault: Fault
        if mode == "error":
            fault = GpuFault(
                self.control,
                replicas,
                kind="gpu_loss",
                fault={"device_lost": True},
                label=label,
                traffic=self.traffic,
            )
        elif mode == "unload":
            fault = ModelUnloaded(self.control, replicas, label=label, traffic=self.traffic)
        else:
            fault = ReplicaKilled(
                self.control,
                replicas,
                kind="gpu_loss",
                hold=True,
                label=label,
                traffic=self.traffic,
            )
        fault.params["mode"] = mode
        return self._start(fault)

    def gpu_degrade(self, replica: Target, slowdown: float = 4.0) -> Fault:
        """Each batch on the replica takes ``slowdown`` times its compute time (> 1)."""
        factor = check_positive("slowdown", slowdown, maximum=1000)
        if factor <= 1:
            from chaosrec.errors import ConfigError

            raise ConfigError(f"slowdown={slowdown!r} must be > 1 (1 means no slowdown)")
        replicas = self.resolve_replicas(replica, "gpu_degrade")
        assert self.control is not None
        return self._start(
            GpuFault(
                self.control,
                replicas,
                kind="gpu_degrade",
                fault={"slowdown": factor, "slowdown_floor_ms": 2.0 * factor},
                label=f"gpu_degrade({target_name(replica)}, slowdown={factor:g})",
                traffic=self.traffic,
            )
        )

    def gpu_oom(
        self, replica: Target, fraction: float = 0.3, *, rate: float | None = None
    ) -> Fault:
        """That ``fraction`` (0-1) of the replica's inference batches fails with CUDA
        out-of-memory. (``rate=`` is the deprecated name of ``fraction``.)"""
        if rate is not None:
            deprecated_alias("rate", "fraction")
            fraction = rate
        share = check_fraction("fraction", fraction)
        replicas = self.resolve_replicas(replica, "gpu_oom")
        assert self.control is not None
        return self._start(
            GpuFault(
                self.control,
                replicas,
                kind="gpu_oom",
                fault={"oom_rate": share},
                label=f"gpu_oom({target_name(replica)}, fraction={share:g})",
                traffic=self.traffic,
            )
        )

    def crash(self, replica: Target) -> Fault:
        """SIGKILL the replica's Triton; the supervisor restarts it (recovery is recorded)."""
        replicas = self.resolve_replicas(replica, "crash")
        assert self.control is not None
        return self._start(
            ReplicaKilled(
                self.control,
                replicas,
                kind="crash",
                hold=False,
                label=f"crash({target_name(replica)})",
                traffic=self.traffic,
            )
        )

    def bad_model(self, target: Target = "all") -> Fault:
        """A worse model version goes live on the target's replicas (quality drops)."""
        replicas = self.resolve_replicas(target, "bad_model")
        assert self.control is not None
        return self._start(
            ModelVersionSwap(
                self.control,
                replicas,
                label=f"bad_model({target_name(target)})",
                traffic=self.traffic,
            )
        )

    def artifact_loss(self, replica: Target, mode: str = "delete") -> Fault:
        """The replica's model weights (every version) are deleted or corrupted on disk and
        it crashes; reverted by a checksum-verified restore from the stack's backup."""
        mode = check_choice("mode", mode, ARTIFACT_MODES)
        replicas = self.resolve_replicas(replica, "artifact_loss")
        if not isinstance(self.control, ArtifactControl):
            raise UnsupportedFaultError(
                "artifact_loss needs the embedded stack in this process (it rewrites the "
                "replicas' model folders and restores them from the stack's backup)"
            )
        return self._start(
            ModelArtifactLost(
                self.control,
                replicas,
                mode=mode,
                label=f"artifact_loss({target_name(replica)}, mode={mode})",
                traffic=self.traffic,
            )
        )
