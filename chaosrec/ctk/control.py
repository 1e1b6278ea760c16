"""The chaosrec Chaos Toolkit control: target checks, guardrails, rollback whatever happens.

Declare it in an experiment (``chaos run`` and pytest both honour it)::

    controls:
      - name: chaosrec
        provider:
          type: python
          module: chaosrec.ctk.control
          arguments:
            guardrails:                      # optional stop conditions (like AWS FIS)
              - {error_rate_above: 0.05, for_s: 1}
              - {availability_below: 0.9}

What it does, by phase:

* validation (``chaos validate``): the guardrail conditions are checked;
* before the experiment: the target is resolved and its gateway must answer, else the
  run is interrupted with one line naming the missing configuration, before anything
  is injected;
* during the method: a guardrail watches the gateway's metrics (for a Kubernetes-only
  target: the share of its Triton pods available); when a condition holds,
  every fault is rolled back at once from the watcher thread, the reason is recorded
  and the run is interrupted (chaoslib's graceful exit: the experiment's rollbacks run);
* after the rollbacks and after the experiment: every chaosrec fault of this process
  is reverted (also when an activity raised or the run was interrupted with Ctrl-C), and
  a trip is recorded in the journal under ``chaosrec.guardrail``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from chaosrec.ctk import context
from chaosrec.errors import ChaosrecError

__all__ = [
    "after_experiment_control",
    "after_method_control",
    "after_rollback_control",
    "before_activity_control",
    "before_experiment_control",
    "before_method_control",
    "cleanup_control",
    "configure_control",
    "validate_control",
]

logger = logging.getLogger("chaostoolkit")

_lock = threading.Lock()
_state: dict[str, Any] = {"conditions": (), "poll_s": 0.1, "window_s": 0.5, "armed": False}


def _conditions(guardrails: object) -> tuple[Any, ...]:
    from chaosrec.faults.guardrail import parse_conditions

    if guardrails in (None, [], {}):
        return ()
    if not isinstance(guardrails, dict | list):
        from chaosrec.errors import ConfigError

        raise ConfigError(
            f"guardrails={guardrails!r}: use a list of mappings like {{error_rate_above: 0.05, "
            "for_s: 1}}"
        )
    return parse_conditions(guardrails, "chaosrec control guardrails")


def validate_control(control: dict[str, Any]) -> None:
    """Called by ``chaos validate``: bad guardrail conditions fail validation."""
    from chaoslib.exceptions import InvalidActivity

    arguments = control.get("provider", {}).get("arguments", {}) or {}
    unknown = set(arguments) - {"guardrails", "poll_s", "window_s"}
    if unknown:
        raise InvalidActivity(
            f"control {control.get('name')!r}: unknown argument(s) {sorted(unknown)}; "
            "allowed: guardrails, poll_s, window_s"
        )
    try:
        _conditions(arguments.get("guardrails"))
    except ChaosrecError as err:
        raise InvalidActivity(f"control {control.get('name')!r}: {err}") from err


def configure_control(
    guardrails: list[dict[str, float]] | None = None,
    poll_s: float = 0.1,
    window_s: float = 0.5,
) -> None:
    """Remember this run's guardrails (checked again here). chaosrec's runner also adds
    this control globally without arguments; that never erases declared guardrails."""
    if guardrails:
        _state.update(conditions=_conditions(guardrails), poll_s=poll_s, window_s=window_s)


def before_experiment_control(
    context: dict[str, Any], configuration: dict[str, Any] | None = None, **kwargs: Any
) -> None:
    """Resolve the target and check its gateway answers; interrupt the run otherwise."""
    from chaoslib.exceptions import InterruptExecution

    _state["interrupted_by"] = None
    _hangup_like_terminate()
    from chaosrec.core.redact import install_log_filter

    install_log_filter()  # chaos run logs httpx request URLs (credentials included) at INFO
    try:
        current = _session(configuration)
        current.check_reachable()
    except ChaosrecError as err:
        _state["interrupted_by"] = f"chaosrec: {err}"
        raise InterruptExecution(f"chaosrec: {err}") from err


def _hangup_like_terminate() -> None:
    """chaoslib turns SIGTERM into a graceful interruption (rollbacks run); give SIGHUP (a
    closed terminal or SSH session) the same handler, unless someone else handles it."""
    import signal

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGHUP"):
        return
    on_term = signal.getsignal(signal.SIGTERM)
    if callable(on_term) and signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, None):
        _state["sighup"] = signal.signal(signal.SIGHUP, on_term)


def _session(configuration: dict[str, Any] | None) -> Any:
    return context.session(configuration)


def before_method_control(
    context: dict[str, Any], configuration: dict[str, Any] | None = None, **kwargs: Any
) -> None:
    """Start the guardrail (if any) on the gateway's metrics."""
    _state["in_method"] = True
    conditions = _state.get("conditions") or ()
    if not conditions or _state.get("guardrail") is not None:
        return  # none declared, or already watching (the control may be declared twice)
    from chaosrec.faults.guardrail import GatewayMetricsSource, Guardrail

    current = _session(configuration)
    source: Any
    if current.target.gateway_url or current.kubernetes is None:
        source = GatewayMetricsSource(current.target.gateway_url)
    else:  # a Kubernetes-only target: the share of its Triton pods available
        from chaosrec.faults.cluster_guardrail import ClusterCapacitySource

        spec = current.kubernetes.spec
        source = ClusterCapacitySource(
            current.kubernetes.api(),
            spec.namespace,
            spec.pods_selector(),
            normal={r.deployment: r.replicas for r in spec.regions.values()},
        )
    guard = Guardrail(
        conditions,
        source,
        on_trip=[current.chaos.rollback_all],
        on_abort=_abort,
        poll_s=float(_state["poll_s"]),
        window_s=float(_state["window_s"]),
        # pods, not requests: a handful is the whole fleet, and every one counts
        min_requests=1 if not isinstance(source, GatewayMetricsSource) else 5,
    )
    current.guardrails.append(guard)
    _state["guardrail"] = guard
    with _lock:
        _state["armed"] = True
    guard.start()
    logger.info(f"chaosrec guardrail watching: {guard.describe()}")


def _abort(record: Any) -> None:
    logger.error(f"chaosrec: {record.message()}")
    with _lock:
        if _state.get("armed"):
            _state["armed"] = False
            from chaoslib.exit import exit_gracefully

            # the only way to stop a blocking activity or pause: chaoslib's SIGUSR1 handler
            # raises SystemExit in the main thread and the run goes on to its rollbacks
            exit_gracefully()


def after_method_control(context: dict[str, Any], **kwargs: Any) -> None:
    with _lock:
        _state["armed"] = False
        _state["in_method"] = False


def before_activity_control(context: dict[str, Any], **kwargs: Any) -> None:
    """Once a guardrail tripped, no further activity of the method runs."""
    guard = _state.get("guardrail")
    if guard is not None and guard.trip is not None and _state.get("in_method"):
        from chaoslib.exceptions import InterruptExecution

        raise InterruptExecution(f"chaosrec: {guard.trip.message()}")


def after_rollback_control(context: dict[str, Any], **kwargs: Any) -> None:
    """Whatever the rollback strategy did, no chaosrec fault survives the rollbacks."""
    _rollback_quietly()


def after_experiment_control(
    context: dict[str, Any], state: dict[str, Any] | None = None, **kwargs: Any
) -> None:
    """Revert every fault, stop the guardrail, record a trip in the journal, and fail a run
    whose steady state did not hold before the method (chaoslib 1.44 calls that run
    "completed" and ``chaos run`` exits 0)."""
    with _lock:
        _state["armed"] = False
    _rollback_quietly()
    before = ((state or {}).get("steady_states") or {}).get("before") or {}
    if isinstance(state, dict) and before.get("steady_state_met") is False:
        missed = [
            p.get("activity", {}).get("name")
            for p in before.get("probes", [])
            if p.get("tolerance_met") is False
        ]
        logger.error(
            f"chaosrec: the steady state did not hold before the method ({missed}); "
            "nothing was injected and the drill fails"
        )
        state["status"] = "failed"
    guard = _state.get("guardrail")
    if guard is not None:
        guard.stop()
        if guard.trip is not None and isinstance(state, dict):
            state.setdefault("chaosrec", {})["guardrail"] = guard.trip.to_dict()
    if _state.get("interrupted_by") and isinstance(state, dict):
        state.setdefault("chaosrec", {})["interrupted"] = _state["interrupted_by"]


def cleanup_control() -> None:
    """Forget this run's guardrails (the next run configures its own)."""
    with _lock:
        _state["armed"] = False
        _state["in_method"] = False
    guard = _state.pop("guardrail", None)
    if guard is not None:
        guard.stop()
    previous = _state.pop("sighup", None)
    if previous is not None and threading.current_thread() is threading.main_thread():
        import signal

        signal.signal(signal.SIGHUP, previous)
    _state.update(conditions=(), poll_s=0.1, window_s=0.5, interrupted_by=None)


def _rollback_quietly() -> None:
    try:
        context.rollback_everything()
    except ChaosrecError as err:
        logger.error(f"chaosrec: {err}")
