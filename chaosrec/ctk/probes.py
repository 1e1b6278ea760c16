"""Chaos Toolkit probes: what the recommender does now, measured by chaosrec.

Traffic probes send a short open-loop sample (``rate_rps`` x ``duration_s`` requests
to the gateway's /recommend, users of every region in turn) and measure it; probes
called back to back with the same arguments share one sample (a steady-state
hypothesis checking availability and latency sends one sample, not two). The numbers
are those of :mod:`chaosrec.slo.measures`, as an SLO verdict or a guardrail reports
them for the same requests (:class:`chaosrec.steady_state.probes.TrafficSample`). Use
with tolerances::

    steady-state-hypothesis:
      title: the recommender serves
      probes:
        - type: probe
          name: availability
          tolerance: {type: range, range: [0.99, 1.0]}
          provider: {type: python, module: chaosrec.ctk.probes, func: availability}
"""

from typing import Any

from chaosrec.ctk import context
from chaosrec.steady_state.probes import TrafficSample

__all__ = [
    "availability",
    "available_share",
    "degraded_share",
    "error_rate",
    "healthy_replicas",
    "latency_p99_ms",
    "load_verdict",
    "nodes_ready",
    "pending_pods",
    "recall_at_10",
]

_REUSE_S = 1.0  # a sample finished this recently is reused by the next traffic probe
#: the latency a probe reports when nothing was answered: large, and valid JSON (inf is not)
_UNANSWERED_MS = 1e9
_last: tuple[tuple[int, float, float], TrafficSample] | None = None


def _sample(
    configuration: dict[str, Any] | None, rate_rps: float, duration_s: float
) -> TrafficSample:
    """The traffic sample of these arguments: the last one (reused for ``_REUSE_S`` after
    it finished) when the session, rate and duration are the same, else a new one."""
    global _last
    current = context.session(configuration)
    key = (id(current), float(rate_rps), float(duration_s))
    if _last is None or _last[0] != key:
        target = current.target
        sample = TrafficSample.open_loop(
            target.recommend_url,
            rate_rps=rate_rps,
            duration_s=duration_s,
            params=context.traffic_params(target),
            reuse_s=_REUSE_S,
        )
        _last = (key, sample)
    return _last[1]


def availability(
    rate_rps: float = 100.0, duration_s: float = 2.0, configuration: dict[str, Any] | None = None
) -> float:
    """Share (0-1) of a short sample of requests answered with HTTP 2xx (degraded
    fallback answers count as answered)."""
    return _sample(configuration, rate_rps, duration_s).value("availability")


def error_rate(
    rate_rps: float = 100.0, duration_s: float = 2.0, configuration: dict[str, Any] | None = None
) -> float:
    """Share (0-1) of a short sample of requests that failed (not 2xx, or no answer)."""
    return _sample(configuration, rate_rps, duration_s).value("error_rate")


def latency_p99_ms(
    rate_rps: float = 100.0, duration_s: float = 2.0, configuration: dict[str, Any] | None = None
) -> float:
    """99th percentile latency in milliseconds (nearest rank) of the answered requests of
    a short sample (from each request's scheduled send time); a very large number when
    none answered."""
    sample = _sample(configuration, rate_rps, duration_s)
    return sample.value("p99_ms", unanswered_ms=_UNANSWERED_MS)


def degraded_share(
    rate_rps: float = 100.0, duration_s: float = 2.0, configuration: dict[str, Any] | None = None
) -> float:
    """Share (0-1) of the answered requests of a short sample served by the degraded
    fallback (the user's last good answer or popular items)."""
    return _sample(configuration, rate_rps, duration_s).value("degraded_share")


def healthy_replicas(region: str = "", configuration: dict[str, Any] | None = None) -> int:
    """How many replicas (of ``region``, or of all regions when empty) the gateway's health
    checks report healthy now."""
    replicas = context.session(configuration).target.health().get("replicas", {})
    return sum(
        1
        for info in replicas.values()
        if info.get("healthy") and (not region or info.get("region") == region)
    )


def recall_at_10(configuration: dict[str, Any] | None = None) -> float:
    """Recall@10 (0-1) of the live service on the golden request set (held-out items)."""
    return float(context.session(configuration).target.recall_at_10())


def load_verdict(
    availability: float | None = None,
    p99_ms: float | None = None,
    degraded_share: float | None = None,
    rto_s: float | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Wait for the load started by ``start_load`` to end and judge it with chaosrec's SLO
    evaluation (fault windows included, so ``rto_s`` is measured from the fault's start).
    Returns the verdict: ``status`` is ``pass``, ``fail`` or ``inconclusive``; tolerate it
    with ``{type: jsonpath, path: $.status, expect: pass}``."""
    from chaosrec.errors import ConfigError
    from chaosrec.slo.objectives import Objectives, evaluate

    current = context.session(configuration)
    if not current.loads:
        raise ConfigError("load_verdict: no load was started; call start_load first")
    run = current.loads[-1]
    log = run.join()
    wanted = Objectives().merged(
        **{
            k: v
            for k, v in {
                "availability": availability,
                "p99_ms": p99_ms,
                "degraded_share": degraded_share,
                "rto_s": rto_s,
            }.items()
            if v is not None
        }
    )
    if wanted.is_empty():
        raise ConfigError("load_verdict: give at least one of availability, p99_ms, rto_s, ...")
    verdict = evaluate(
        log,
        wanted,
        current.drill.fault_windows(run.t0_epoch),
        run_end_s=run.duration_s,
    )
    current.drill.verdicts.append(verdict)
    data: dict[str, Any] = verdict.to_dict()
    data["status"] = verdict.status
    data["table"] = verdict.table()
    return data


# -- Kubernetes: the cluster as its API reports it (targets with a `kubernetes` section) ------


def _kubernetes(configuration: dict[str, Any] | None) -> Any:
    from chaosrec.errors import ConfigError

    faults = context.session(configuration).kubernetes
    if faults is None:
        raise ConfigError(
            "this probe reads a Kubernetes cluster: use a target file with a 'kubernetes' "
            "section (chaosrec_target / CHAOSREC_TARGET)"
        )
    return faults


def available_share(
    region: str = "",
    until: float | None = None,
    timeout_s: float = 30.0,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> float:
    """Share (0-1) of the region's *normal* Triton pods (``replicas`` in the target file)
    that are available: of ``region``, or of every region when empty. A region scaled to
    zero counts 0, not "all of nothing". With ``until``, polls (every 100 ms, at most
    ``timeout_s`` seconds) until the share equals it, then returns the last value: the
    Deployment's status follows a scale a moment later."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        value = _available_share(region, configuration, secrets)
        if until is None or abs(value - until) < 1e-9 or time.monotonic() >= deadline:
            return value
        time.sleep(0.1)


def _available_share(
    region: str, configuration: dict[str, Any] | None, secrets: dict[str, Any] | None
) -> float:
    faults = _kubernetes(configuration)
    api = faults.api(secrets)
    spec = faults.spec
    regions = [spec.region(region)] if region else list(spec.regions.values())
    normal: int = sum(r.replicas for r in regions)
    available: int = sum(
        min(r.replicas, int(api.deployment(spec.namespace, r.deployment).available))
        for r in regions
    )
    return available / normal


def pending_pods(
    region: str = "",
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> int:
    """How many Triton pods (of ``region``, or of all) the scheduler has not placed; their
    reasons are in the chaosrec logger's output."""
    faults = _kubernetes(configuration)
    spec = faults.spec
    selector = spec.region(region).pods if region else spec.pods_selector()
    pending = faults.api(secrets).pending(spec.namespace, selector)
    for pod in pending:
        import logging

        logging.getLogger("chaostoolkit").info(f"pending {pod.name}: {pod.reason}")
    return len(pending)


def nodes_ready(
    label_selector: str = "",
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> int:
    """How many nodes (matching ``label_selector``, e.g. ``topology.kubernetes.io/region=
    region-a``) are Ready."""
    ready, _ = _kubernetes(configuration).api(secrets).nodes_ready(label_selector)
    return int(ready)
