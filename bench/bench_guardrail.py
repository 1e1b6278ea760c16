"""Benchmark guardrail trip latency: a stop condition becomes true -> every fault reverted.

On the embedded stack (``quick`` topology by default) under open-loop load, each
round starts a guardrail (``degraded_share_above=0.5``, ``for_s=0``, polled every
100 ms over a 0.5 s window) and takes every replica down (``chaos.down("all")``), so
the gateway answers only degraded fallbacks from that instant. Per round it reports:

* ``fault -> reverted``   from the fault being in place (the degraded answers start)
  to every fault reverted: detection (window + poll) plus rollback, the figure a user
  sees;
* ``seen -> reverted``    from the first poll that saw the condition true;
* ``rollback``            how long ``rollback_all`` itself took.

``--source gateway`` watches the gateway's ``/metrics`` counters instead of the load
run's log, as the Chaos Toolkit control does under ``chaos run``.

Run: ``.venv/bin/python bench/bench_guardrail.py [--rounds 10] [--source load|gateway]``
"""

from __future__ import annotations

import argparse
import statistics
import time

from chaosrec.drill.target import RecsysTarget
from chaosrec.faults.guardrail import (
    GatewayMetricsSource,
    Guardrail,
    LoadRunSource,
    MeasurementSource,
    parse_conditions,
)
from chaosrec.faults.injector import Chaos
from chaosrec.load.generator import LoadRun, default_params
from chaosrec.stack.stack import EmbeddedStack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--topology", default="quick")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument(
        "--source",
        choices=["load", "gateway"],
        default="load",
        help="measure the load run's log (pytest) or the gateway's /metrics (chaos run)",
    )
    args = parser.parse_args()
    rows: list[tuple[float, float, float]] = []
    with EmbeddedStack(args.topology) as stack:
        target = RecsysTarget.from_stack(stack)
        for i in range(args.rounds):
            target.wait_healthy(timeout_s=60)
            chaos = Chaos(stack.toxiproxy, topology=stack.topology, control=stack)
            run = LoadRun(
                target.recommend_url,
                rate_rps=args.rate,
                duration_s=8,
                params=default_params(target.n_users or 1000),
            )
            with run:
                run.wait(1.5)
                source: MeasurementSource = (
                    LoadRunSource(run)
                    if args.source == "load"
                    else GatewayMetricsSource(target.gateway_url)
                )
                guard = Guardrail(
                    parse_conditions({"degraded_share_above": 0.5}),
                    source,
                    on_trip=[chaos.rollback_all],
                    on_abort=lambda record: None,
                ).start()
                fault = chaos.down("all")
                deadline = time.monotonic() + 5
                while guard.trip is None or guard.trip.rolled_back_at is None:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"round {i}: the guardrail did not trip within 5 s")
                    time.sleep(0.01)
                guard.stop()
                run.stop()
            trip = guard.trip
            assert fault.started_at is not None and trip.rolled_back_at is not None
            rows.append(
                (
                    trip.rolled_back_at - fault.started_at,
                    trip.rolled_back_at - trip.first_true_at,
                    trip.rolled_back_at - trip.tripped_at,
                )
            )
            print(
                f"round {i + 1:2}: fault -> reverted {rows[-1][0] * 1000:6.0f} ms   "
                f"seen -> reverted {rows[-1][1] * 1000:5.0f} ms   "
                f"rollback {rows[-1][2] * 1000:5.1f} ms",
                flush=True,
            )
    for name, col in (("fault -> reverted", 0), ("seen -> reverted", 1), ("rollback", 2)):
        values = sorted(r[col] * 1000 for r in rows)
        print(
            f"{name:18} median {statistics.median(values):6.1f} ms   max {values[-1]:6.1f} ms"
            f"   (n={len(values)})"
        )


if __name__ == "__main__":
    main()
