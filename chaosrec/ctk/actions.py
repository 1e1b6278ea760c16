"""Chaos Toolkit actions: inject chaosrec's faults, start load, roll everything back.

Each action is a thin wrapper over :class:`chaosrec.faults.injector.Chaos` (or, for a
target on Kubernetes, :mod:`chaosrec.ctk.kubernetes`); the fault stays injected after
the action returns and is reverted by ``rollback_all`` (put it in every experiment's
``rollbacks``), by the chaosrec control at the end of the run, or at process exit.
Targets: ``"all"``, a region (``"region-a"``), a replica (``"region-a.r0"``) or a
Toxiproxy proxy name. Each returns what it injected (label, kind, targets).

Use from an experiment::

    - type: action
      name: lose-region-a
      provider:
        type: python
        module: chaosrec.ctk.actions
        func: inject_region_outage
        arguments: {region: region-a, mode: refuse}
"""

from typing import Any

from chaosrec.ctk import context

__all__ = [
    "inject_artifact_loss",
    "inject_bad_model",
    "inject_bandwidth",
    "inject_blackhole",
    "inject_crash",
    "inject_down",
    "inject_gpu_degrade",
    "inject_gpu_loss",
    "inject_gpu_oom",
    "inject_latency",
    "inject_limit_data",
    "inject_region_outage",
    "inject_reset_peer",
    "inject_slicer",
    "inject_slow_close",
    "rollback_all",
    "start_load",
    "wait_healthy",
]


def _done(fault: Any) -> dict[str, Any]:
    return {"label": fault.label, "kind": fault.kind, "targets": list(fault.targets)}


def inject_latency(
    target: str,
    ms: float,
    jitter_ms: float = 0,
    toxicity: float = 1.0,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Add ``ms`` milliseconds (+/- ``jitter_ms`` milliseconds) to every response through
    the target's Toxiproxy proxies (``toxicity``: share of requests, 0-1). Reverted by
    rollback_all."""
    chaos = context.session(configuration).chaos
    return _done(chaos.latency(target, ms, jitter_ms, toxicity=toxicity))


def inject_blackhole(
    target: str,
    timeout_ms: float = 0,
    toxicity: float = 1.0,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Swallow everything sent to the target (close after ``timeout_ms``; 0: never).
    Reverted by rollback_all."""
    chaos = context.session(configuration).chaos
    return _done(chaos.blackhole(target, timeout_ms, toxicity=toxicity))


def inject_bandwidth(
    target: str,
    kb_per_s: float,
    toxicity: float = 1.0,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Limit the target's throughput to ``kb_per_s`` kilobytes per second. Reverted by
    rollback_all."""
    chaos = context.session(configuration).chaos
    return _done(chaos.bandwidth(target, kb_per_s, toxicity=toxicity))


def inject_reset_peer(
    target: str,
    timeout_ms: float = 0,
    toxicity: float = 1.0,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Reset the target's connections (TCP RST) after ``timeout_ms``. Reverted by
    rollback_all."""
    chaos = context.session(configuration).chaos
    return _done(chaos.reset_peer(target, timeout_ms, toxicity=toxicity))


def inject_slow_close(
    target: str,
    delay_ms: float,
    toxicity: float = 1.0,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Delay closing the target's connections by ``delay_ms``. Reverted by rollback_all."""
    chaos = context.session(configuration).chaos
    return _done(chaos.slow_close(target, delay_ms, toxicity=toxicity))


def inject_slicer(
    target: str,
    average_size: int = 64,
    size_variation: int = 32,
    delay_us: int = 100,
    toxicity: float = 1.0,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Slice the target's data into ~``average_size``-byte packets, ``delay_us`` apart.
    Reverted by rollback_all."""
    chaos = context.session(configuration).chaos
    return _done(chaos.slicer(target, average_size, size_variation, delay_us, toxicity=toxicity))


def inject_limit_data(
    target: str,
    bytes: int,
    toxicity: float = 1.0,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Close each of the target's connections after ``bytes`` bytes. Reverted by
    rollback_all."""
    chaos = context.session(configuration).chaos
    return _done(chaos.limit_data(target, bytes, toxicity=toxicity))


def inject_down(target: str, configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Disable the target's proxies: connections are refused. Reverted by rollback_all."""
    return _done(context.session(configuration).chaos.down(target))


def inject_region_outage(
    region: str,
    mode: str = "refuse",
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A whole region fails. ``mode``: ``refuse`` (its proxies down; on Kubernetes its
    Triton Deployment scaled to 0 and back), ``blackhole`` (proxies swallow everything) or
    ``kill`` (Triton processes killed; on Kubernetes its pods terminated). Reverted by
    rollback_all."""
    current = context.session(configuration)
    if current.kubernetes is not None and mode in ("refuse", "kill"):
        return _done(current.kubernetes.inject("region_outage", region, mode, secrets))
    return _done(current.chaos.region_outage(region, mode))


def inject_gpu_loss(
    replica: str,
    mode: str = "error",
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A replica's GPU is lost. ``mode``: ``error`` (every inference fails with the CUDA
    device-lost error; emulated without CUDA), ``unload`` (model unloaded), ``kill``
    (Triton killed; on Kubernetes its pods terminated) or, on Kubernetes, ``drain`` (its
    GPU node cordoned and drained, uncordoned on rollback). Reverted by rollback_all."""
    current = context.session(configuration)
    if current.kubernetes is not None and mode in ("kill", "drain"):
        return _done(current.kubernetes.inject("gpu_loss", replica, mode, secrets))
    return _done(current.chaos.gpu_loss(replica, mode))


def inject_gpu_degrade(
    replica: str, slowdown: float = 4.0, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Each batch on the replica takes ``slowdown`` times as long (> 1). Reverted by
    rollback_all."""
    return _done(context.session(configuration).chaos.gpu_degrade(replica, slowdown))


def inject_gpu_oom(
    replica: str, fraction: float = 0.3, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """That ``fraction`` (0-1) of the replica's inference batches fails with CUDA
    out-of-memory. Reverted by rollback_all."""
    return _done(context.session(configuration).chaos.gpu_oom(replica, fraction))


def inject_crash(
    replica: str,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """SIGKILL the replica's Triton (on Kubernetes: terminate its pods); the supervisor (or
    the Deployment) restarts it."""
    current = context.session(configuration)
    if current.kubernetes is not None:
        return _done(current.kubernetes.inject("crash", replica, None, secrets))
    return _done(current.chaos.crash(replica))


def inject_bad_model(
    target: str = "all", configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A worse model version goes live on the target's replicas (quality drops, no
    errors). Reverted by rollback_all (the good version is loaded again)."""
    return _done(context.session(configuration).chaos.bad_model(target))


def inject_artifact_loss(
    replica: str, mode: str = "delete", configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The replica's model weights are deleted or corrupted on disk and it crashes;
    reverted by rollback_all (a checksum-verified restore from the stack's backup). Needs
    the embedded stack in this process (pytest), not ``chaos run``."""
    return _done(context.session(configuration).chaos.artifact_loss(replica, mode))


def start_load(
    rate_rps: float = 100.0,
    duration_s: float = 10.0,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Start open-loop load on the gateway's /recommend in the background (it stops by
    itself after ``duration_s``); ``chaosrec.ctk.probes.load_verdict`` judges it."""
    current = context.session(configuration)
    from chaosrec.load.generator import LoadRun

    target = current.target
    run = LoadRun(
        target.recommend_url,
        rate_rps=rate_rps,
        duration_s=duration_s,
        params=context.traffic_params(target),
        on_start=current.drill.on_run_start,
    )
    run.start()
    current.loads.append(run)
    return {"url": run.url, "rate_rps": run.rate_rps, "duration_s": run.duration_s}


def wait_healthy(timeout_s: float = 60.0, configuration: dict[str, Any] | None = None) -> float:
    """Wait until the gateway reports every replica healthy; returns the seconds waited."""
    return float(context.session(configuration).target.wait_healthy(timeout_s=timeout_s))


def rollback_all(configuration: dict[str, Any] | None = None) -> list[str]:
    """Revert every fault injected in this process (newest first); returns their labels.
    Put it in every experiment's ``rollbacks``; it is safe to call more than once."""
    current = context.current()
    if current is None:
        return []
    reverted = [f.label for f in current.chaos.active()]
    current.chaos.rollback_all()
    return reverted
