"""CPU spent per request, by process, while the embedded stack serves a steady load.

The drills run the whole stack and the load generator on the same two cores, so the
CPU each request costs decides how much headroom is left for faults, restarts and
a busy machine. This reads each process's user+system time from ``/proc`` before
and after an open-loop run and divides by the requests answered.

Run: ``.venv/bin/python bench/bench_cpu.py [--rate 150] [--duration 10]``
"""

from __future__ import annotations

import argparse
import collections
import os
import time
from pathlib import Path

from chaosrec.adapters.process.launch import process_tree
from chaosrec.load.generator import LoadRun
from chaosrec.stack.stack import EmbeddedStack

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` (their threads included)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--topology", default="default")
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()

    with EmbeddedStack(args.topology) as stack:
        status = stack.status()
        groups = {
            "gateway": process_tree(status["gateway"]["pid"]),
            "toxiproxy": process_tree(status["toxiproxy"]["pid"]),
            "tritons": [
                p for h in stack.replicas.values() for p in process_tree(h.triton.process.pid)
            ],
            "load generator (this process)": [os.getpid()],
        }
        url = f"{stack.gateway_url}/recommend"
        with LoadRun(url, rate_rps=args.rate, duration_s=2.0):  # warm-up
            pass
        before = {name: cpu_s(pids) for name, pids in groups.items()}
        wall = time.monotonic()
        with LoadRun(url, rate_rps=args.rate, duration_s=args.duration) as run:
            pass
        wall = time.monotonic() - wall
        after = {name: cpu_s(pids) for name, pids in groups.items()}
    answered = int(run.log.ok.sum())
    print("statuses:", dict(collections.Counter(run.log.status.tolist())))
    total = sum(after[n] - before[n] for n in groups)
    print(f"{answered} answered of {len(run.log)} at {args.rate:g} req/s over {wall:.1f} s")
    print(f"{'process':32} {'CPU ms/request':>15} {'share of 2 cores':>17}")
    for name in groups:
        used = after[name] - before[name]
        print(f"{name:32} {1000 * used / max(answered, 1):15.2f} {used / wall / 2:17.1%}")
    print(f"{'total':32} {1000 * total / max(answered, 1):15.2f} {total / wall / 2:17.1%}")


if __name__ == "__main__":
    main()
