"""Play a fault schedule against a recommender under open-loop load, then judge it.

:func:`play_schedule` checks every fault of the schedule against the target (kind,
target, control plane) before anything is injected, waits for the gateway to be
settled (every replica healthy, no breaker open), starts an open-loop load of
``horizon_s + tail_s`` seconds, injects and reverts each fault at its times with the
:class:`~chaosrec.faults.injector.Chaos` injector, and reverts every fault it injected
whatever happens (an exception, a failed injection, Ctrl-C) before the gateway is left
to settle again. The run is then judged against the
:class:`~chaosrec.schedules.invariants.Invariants`::

    run = play_schedule(schedule, recsys, chaos)
    if run.violated:
        print(run.report())
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaosrec.core.topology import Topology
from chaosrec.core.validation import check_non_negative, check_positive
from chaosrec.drill.target import RecsysTarget
from chaosrec.errors import RollbackError, StackError, UnsupportedFaultError
from chaosrec.faults.base import Fault
from chaosrec.faults.injector import Chaos
from chaosrec.schedules.invariants import InvariantResult, Invariants, check_invariants
from chaosrec.schedules.schedule import FAULT_KINDS, FaultSchedule, ScheduledFault
from chaosrec.slo.log import RequestLog
from chaosrec.slo.objectives import FaultWindow

__all__ = ["ScheduleRun", "check_schedule", "play_schedule", "wait_settled"]

#: kinds that act inside the replicas (need the embedded stack's control plane)
_SERVICE_KINDS = ("gpu_loss", "gpu_degrade", "gpu_oom", "crash")


@dataclass
class ScheduleRun:
    """One schedule played: the load's log, the faults as they happened, the judgement."""

    schedule: FaultSchedule
    log: RequestLog
    windows: tuple[FaultWindow, ...]
    expected_requests: int
    last_revert_s: float | None
    results: list[InvariantResult] = field(default_factory=list)

    @property
    def violated(self) -> list[InvariantResult]:
        return [r for r in self.results if not r.held]

    def measured(self) -> str:
        """Every invariant's measurement on one line (for search logs)."""
        return " | ".join(r.detail for r in self.results)

    def report(self) -> str:
        """The schedule, then one line per invariant."""
        lines = [self.schedule.describe()]
        lines += [f"  - {r.line()}" for r in self.results]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule.to_dict(),
            "requests": len(self.log),
            "expected_requests": self.expected_requests,
            "last_revert_s": self.last_revert_s,
            "faults": [
                {"label": w.label, "start_s": w.start_s, "end_s": w.end_s} for w in self.windows
            ],
            "invariants": [r.to_dict() for r in self.results],
        }


def check_schedule(schedule: FaultSchedule, topology: Topology, *, embedded: bool) -> None:
    """Raise before any injection if a fault's target or kind does not fit this target."""
    for i, fault in enumerate(schedule.faults):
        where = f"faults[{i}] {fault.label()}"
        try:
            topology.resolve(fault.target)
        except Exception as err:
            raise type(err)(f"{where}: {err}") from err
        if fault.kind == "region_outage" and fault.target not in topology.regions:
            raise UnsupportedFaultError(
                f"{where}: region_outage needs a region target, one of {list(topology.regions)}"
            )
        kill = "mode" in FAULT_KINDS[fault.kind] and fault.param("mode") == "kill"
        needs_control = fault.kind in _SERVICE_KINDS or kill
        if needs_control and not embedded:
            raise UnsupportedFaultError(
                f"{where}: {fault.kind} acts inside the replicas and needs the embedded "
                "stack; drop it from the schedule's kinds for a remote target"
            )


def _inject(chaos: Chaos, fault: ScheduledFault) -> Fault:
    kind, target = fault.kind, fault.target
    if kind == "latency":
        ms, jitter_ms = float(fault.param("ms")), float(fault.param("jitter_ms"))
        return chaos.latency(target, ms=ms, jitter_ms=jitter_ms)
    if kind == "blackhole":
        return chaos.blackhole(target)
    if kind == "down":
        return chaos.down(target)
    if kind == "region_outage":
        return chaos.region_outage(target, mode=str(fault.param("mode")))
    if kind == "gpu_loss":
        return chaos.gpu_loss(target, mode=str(fault.param("mode")))
    if kind == "gpu_degrade":
        return chaos.gpu_degrade(target, slowdown=float(fault.param("slowdown")))
    if kind == "gpu_oom":
        return chaos.gpu_oom(target, fraction=float(fault.param("fraction")))
    if kind == "crash":
        return chaos.crash(target)
    raise UnsupportedFaultError(f"fault kind {kind!r} cannot be played")  # pragma: no cover


def wait_settled(target: RecsysTarget, timeout_s: float = 60.0) -> float:
    """Block until the gateway sees every replica healthy and no breaker open; seconds
    waited. The next schedule then starts from the steady state, not from a recovery."""
    started = time.monotonic()
    last: Any = None
    while True:
        try:
            last = target.health()
            replicas = last.get("replicas", {})
            if last.get("status") == "ok" and all(
                r.get("breaker") != "open" for r in replicas.values()
            ):
                return time.monotonic() - started
        except Exception as err:  # noqa: BLE001 - still starting or restarting: poll again
            last = err
        if time.monotonic() - started > timeout_s:
            raise StackError(
                f"the recommender did not settle (every replica healthy, no breaker open) "
                f"within {timeout_s:g} s; last health: {last}"
            )
        time.sleep(0.05)


def play_schedule(
    schedule: FaultSchedule,
    target: RecsysTarget,
    chaos: Chaos,
    *,
    invariants: Invariants | None = None,
    rate_rps: float = 100.0,
    tail_s: float | None = None,
    settle_timeout_s: float = 60.0,
    on_start: Callable[[Any], None] | None = None,
) -> ScheduleRun:
    """Play ``schedule`` under ``rate_rps`` of open-loop load and judge it.

    :param tail_s: load kept running after ``horizon_s`` to see recovery (default:
        ``invariants.rto_s + 2 * invariants.window_s``).
    :param on_start: called with the load run once it started (e.g. the drill recorder).
    :raises ConfigError: a fault does not fit the target (before anything is injected).
    :raises RollbackError: a fault could not be reverted (after trying every one).
    """
    from chaosrec.load.generator import LoadRun, default_params

    invariants = invariants or Invariants()
    rate = check_positive("rate_rps", rate_rps, maximum=5000)
    tail = (
        invariants.rto_s + 2 * invariants.window_s
        if tail_s is None
        else check_non_negative("tail_s", tail_s, maximum=600)
    )
    check_schedule(schedule, target.topology, embedded=target.control is not None)
    wait_settled(target, settle_timeout_s)

    # (time, order, index): reverts before injections at the same instant
    events = sorted(
        [(f.start_s, 1, i) for i, f in enumerate(schedule.faults)]
        + [(f.stop_s, 0, i) for i, f in enumerate(schedule.faults)]
    )
    injected: dict[int, Fault] = {}
    started: dict[int, float] = {}
    stopped: dict[int, float] = {}
    run = LoadRun(
        target.recommend_url,
        rate_rps=rate,
        duration_s=schedule.horizon_s + tail,
        timeout_s=5.0,
        params=default_params(target.n_users or 1000),
        on_start=on_start,
    )
    try:
        with run:
            try:
                for at_s, order, i in events:
                    run.wait(max(0.0, at_s - run.now()))
                    if order == 1:
                        started[i] = run.now()
                        injected[i] = _inject(chaos, schedule.faults[i])
                    elif i in injected:
                        injected[i].revert()
                        stopped[i] = run.now()
            finally:
                _revert_all(injected, stopped, run.now)
        log, expected = run.log, run.n_requests
        last = max(stopped.values(), default=None)
        if last is not None and last + invariants.rto_s + invariants.window_s > run.duration_s:
            # a revert outlasted the load (a model reload takes seconds): keep measuring
            # for tail_s more, or the RTO after it could not be seen at all
            more = LoadRun(
                target.recommend_url,
                rate_rps=rate,
                duration_s=tail,
                timeout_s=5.0,
                params=default_params(target.n_users or 1000),
            )
            with more:
                pass
            log = _joined(run.log, more.log, more.t0_epoch - run.t0_epoch)
            expected += more.n_requests
    finally:
        wait_settled(target, settle_timeout_s)

    windows = tuple(
        FaultWindow(
            label=injected[i].label,
            kind=injected[i].kind,
            targets=tuple(injected[i].targets),
            start_s=started[i],
            end_s=stopped.get(i),
            touched=injected[i].touched(),
        )
        for i in sorted(injected)
    )
    result = ScheduleRun(schedule, log, windows, expected, last)
    result.results = check_invariants(
        log,
        windows,
        target.topology,
        invariants,
        expected_requests=expected,
        last_revert_s=last,
    )
    return result


def _joined(first: RequestLog, second: RequestLog, offset_s: float) -> RequestLog:
    """``second`` appended to ``first``, its times moved onto ``first``'s clock."""
    import numpy as np

    return RequestLog(
        t0_epoch=first.t0_epoch,
        scheduled_s=np.concatenate([first.scheduled_s, second.scheduled_s + offset_s]),
        sent_s=np.concatenate([first.sent_s, second.sent_s + offset_s]),
        done_s=np.concatenate([first.done_s, second.done_s + offset_s]),
        status=np.concatenate([first.status, second.status]),
        region=np.concatenate([first.region, second.region]),
        replica=np.concatenate([first.replica, second.replica]),
        degraded=np.concatenate([first.degraded, second.degraded]),
        error=np.concatenate([first.error, second.error]),
    )


def _revert_all(
    injected: dict[int, Fault], stopped: dict[int, float], now: Callable[[], float]
) -> None:
    """Revert every fault still on, newest first; one RollbackError naming each failure."""
    errors: list[str] = []
    for i in sorted(injected, reverse=True):
        fault = injected[i]
        if not fault.active:
            continue
        try:
            fault.revert()
        except Exception as err:  # noqa: BLE001 - revert the rest, then report them all
            errors.append(str(err))
        stopped.setdefault(i, now())
    if errors:
        raise RollbackError(f"{len(errors)} scheduled fault(s) failed to roll back: {errors}")
