"""Benchmark the gateway's tail-latency defences under network and GPU faults.

For each fault, the same open-loop load runs with each gateway policy, one after
the other in one stack and one run, so the ratios are comparable on a noisy
machine:

* ``plain``    no hedging, no latency-aware ordering (the gateway before them)
* ``ordering`` latency-aware ordering only (slow replicas tried last)
* ``hedging``  hedged requests and latency-aware ordering (the default policy)

Faults: 150 +/- 50 ms on the home region's links, its links throttled to 2 KB/s,
the home region black-holed, one home replica's GPU 25x slower.

Run: ``.venv/bin/python bench/bench_resilience.py [--rate 150] [--seconds 6]``
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from chaosrec.drill.target import RecsysTarget
from chaosrec.faults.injector import Chaos
from chaosrec.load.generator import LoadRun, default_params
from chaosrec.slo.measures import measure
from chaosrec.stack.stack import EmbeddedStack

POLICIES: dict[str, dict[str, Any]] = {
    "plain": {"hedge_after_s": 0.0, "slow_after_s": 0.0},
    "ordering": {"hedge_after_s": 0.0, "slow_after_s": 0.1},
    "hedging": {"hedge_after_s": 0.05, "slow_after_s": 0.1},
}

FAULTS: dict[str, Callable[[Chaos], Any]] = {
    "latency 150+/-50 ms": lambda c: c.latency("region-a", ms=150, jitter_ms=50),
    "bandwidth 2 KB/s": lambda c: c.bandwidth("region-a", kb_per_s=2),
    "black hole": lambda c: c.blackhole("region-a"),
    "GPU 25x slower": lambda c: c.gpu_degrade("region-a.r0", slowdown=25),
}


def run_once(
    target: RecsysTarget, chaos: Chaos, fault: Callable[[Chaos], Any], rate: float, seconds: float
) -> tuple[float, float, float]:
    """p50 and p99 (ms) of the requests sent while the fault is on, and their success share."""
    with LoadRun(
        target.recommend_url,
        rate_rps=rate,
        duration_s=seconds + 2,
        params=default_params(target.n_users or 1000),
    ) as run:
        run.wait(1)
        with fault(chaos):
            start = run.elapsed_s
            run.wait(seconds)
            end = run.elapsed_s
    measured = measure(run.log.window(start, end))
    return (
        measured.p50_ms or float("nan"),
        measured.p99_ms or float("nan"),
        measured.availability,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=150)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--faults", nargs="*", default=list(FAULTS), choices=list(FAULTS))
    parser.add_argument("--policies", nargs="*", default=list(POLICIES), choices=list(POLICIES))
    args = parser.parse_args()
    with EmbeddedStack("default") as stack:
        target = RecsysTarget.from_stack(stack)
        chaos = Chaos(target.toxiproxy, topology=target.topology, control=stack)
        print(
            f"{'fault':22} {'policy':9} {'p50 ms':>8} {'p99 ms':>8} {'ok':>7} {'p99 vs plain':>13}"
        )
        for name in args.faults:
            fault = FAULTS[name]
            plain_p99 = None
            for policy in args.policies:
                changes = POLICIES[policy]
                with target.policy_changed(**changes):
                    target.wait_healthy(timeout_s=30)
                    p50, p99, ok = run_once(target, chaos, fault, args.rate, args.seconds)
                plain_p99 = plain_p99 or p99
                print(
                    f"{name:22} {policy:9} {p50:8.1f} {p99:8.1f} {ok:7.2%} {p99 / plain_p99:12.2f}x"
                )
                chaos.rollback_all()


if __name__ == "__main__":
    main()
