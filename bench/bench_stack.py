"""Benchmark the embedded stack: start-up time, memory per replica, latency per hop.

Measures, in one run so the ratios are comparable on a noisy machine:

* ``triton direct``   tritonclient -> Triton's HTTP port
* ``via toxiproxy``   tritonclient -> the replica's Toxiproxy proxy -> Triton
* ``via gateway``     HTTP GET /recommend -> gateway -> proxy -> Triton

Run: ``.venv/bin/python bench/bench_stack.py [--topology default] [--requests 1000]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import tritonclient.http as httpclient

from chaosrec.stack.stack import EmbeddedStack


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pids.extend(int(c) for c in children)
    return total / 1024


def timed(fn: Callable[[int], None], n: int) -> list[float]:
    for i in range(50):  # warm-up
        fn(i)
    out = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--topology", default="default")
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()

    started = time.monotonic()
    with EmbeddedStack(args.topology) as stack:
        startup = time.monotonic() - started
        print(f"stack {args.topology}: ready in {startup:.1f} s (model cached)")
        for handle in stack.replicas.values():
            pid = handle.triton.process.pid
            assert pid is not None
            print(f"  {handle.replica.id}: {rss_mb(pid):.0f} MiB RSS (tritonserver + Python stub)")
        gw_pid = stack.status()["gateway"]["pid"]
        print(f"  gateway: {rss_mb(gw_pid):.0f} MiB RSS")

        first = next(iter(stack.replicas.values()))
        direct = httpclient.InferenceServerClient(f"127.0.0.1:{first.triton.ports.http}")
        proxied = httpclient.InferenceServerClient(first.proxy_listen)
        gateway = httpx.Client(base_url=stack.gateway_url, timeout=5)

        def infer(client: httpclient.InferenceServerClient) -> Callable[[int], None]:
            def call(i: int) -> None:
                inp = httpclient.InferInput("USER_ID", [1, 1], "INT64")
                inp.set_data_from_numpy(np.array([[i % 5000]], dtype=np.int64))
                client.infer("recsys", [inp])

            return call

        def via_gateway(i: int) -> None:
            gateway.get("/recommend", params={"user_id": i % 5000, "k": 10}).raise_for_status()

        rows = [
            ("triton direct", timed(infer(direct), args.requests)),
            ("via toxiproxy", timed(infer(proxied), args.requests)),
            ("via gateway", timed(via_gateway, args.requests)),
        ]
        base = statistics.median(rows[0][1])
        print(f"\n{args.requests} sequential requests per path")
        print(f"{'path':16}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'p50 ratio':>11}")
        for name, lat in rows:
            cuts = statistics.quantiles(lat, n=100)
            print(
                f"{name:16}{cuts[49]:>9.2f}{cuts[98]:>9.2f}{1000 / statistics.mean(lat):>9.0f}"
                f"{cuts[49] / base:>10.2f}x"
            )


if __name__ == "__main__":
    main()
