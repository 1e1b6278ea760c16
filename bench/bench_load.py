"""Benchmark the open-loop load generator: capacity and scheduling accuracy on this machine.

Starts ``--servers`` aiohttp processes sharing one port on 127.0.0.1 (``SO_REUSEPORT``;
they answer ``200`` at once), then drives them with :class:`chaosrec.load.LoadRun`
at each rate for ``--duration`` seconds and prints, per rate: the achieved send
rate, the share answered OK, the send lag (sent - scheduled) p50/p99/max, the
latency p50/p99 (from the schedule), the client drops, and the CPU the generator
(this process; its main thread only sleeps) and the servers used, as a percentage
of one core and in µs per request.

The "documented capacity" is the highest rate whose send-lag p99 stays under
``--lag-budget-ms`` (5 ms) with every request answered OK. On a shared box, other
processes steal the generator's CPU; ``--repeat N`` runs each rate N times and
keeps the run with the lowest lag p99 (the machine's capacity, not its
neighbours'), and the load average is printed before and after.

Usage::

    python bench/bench_load.py [--rates 100 200 500 1000 2000 3000] [--duration 5]
                               [--servers 1] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from chaosrec.adapters.ports import free_port
from chaosrec.adapters.process.launch import child_preexec
from chaosrec.load.generator import LoadRun
from chaosrec.slo import measures
from chaosrec.slo.log import STATUS_CLIENT_DROPPED

_TICKS = os.sysconf("SC_CLK_TCK")


def serve(port: int) -> None:
    """Run one immediate-answer server on ``port`` (``--serve`` mode, in a child process)."""
    from aiohttp import web

    headers = {"X-Chaosrec-Region": "r1", "X-Chaosrec-Replica": "r1.0", "X-Chaosrec-Degraded": "0"}

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok", headers=headers)

    app = web.Application()
    app.router.add_get("/ok", ok)
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        reuse_port=True,
        access_log=None,
        print=None,
        backlog=4096,
    )


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def start_servers(count: int) -> tuple[list[subprocess.Popen[bytes]], str]:
    port = free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port)],
            stdin=subprocess.DEVNULL,
            preexec_fn=child_preexec,
        )
        for _ in range(count)
    ]
    url = f"http://127.0.0.1:{port}/ok"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    time.sleep(0.5)  # let every reuse_port sibling finish binding
                    return procs, url
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    stop_servers(procs)
    raise RuntimeError("the benchmark server did not start")


def stop_servers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass(frozen=True)
class Row:
    rate_rps: float
    sent_rps: float
    ok_share: float
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    latency_p50_ms: float
    latency_p99_ms: float
    dropped: int
    gen_cpu_pct: float
    gen_cpu_us_per_req: float
    server_cpu_pct: float


def measure(url: str, rate_rps: float, duration_s: float, servers: list[int]) -> Row:
    cpu_before, servers_before = _self_cpu_s(), sum(_cpu_s(pid) for pid in servers)
    wall_before = time.monotonic()
    with LoadRun(url, rate_rps=rate_rps, duration_s=duration_s, timeout_s=5.0) as run:
        pass
    wall_s = time.monotonic() - wall_before
    cpu_s = _self_cpu_s() - cpu_before
    server_cpu_s = sum(_cpu_s(pid) for pid in servers) - servers_before

    log = run.log
    sent = log.select(log.status != STATUS_CLIENT_DROPPED)
    # sends start at ~0: rate over the span actually used, so a lagging generator shows
    span_s = float(sent.sent_s.max()) + 1.0 / rate_rps if len(sent) else duration_s
    lag_ms = (log.sent_s - log.scheduled_s) * 1000.0
    latency_ms = log.latency_ms
    return Row(
        rate_rps=rate_rps,
        sent_rps=len(sent) / span_s,
        ok_share=measures.measure(log).availability,
        lag_p50_ms=measures.percentile(lag_ms, 50),
        lag_p99_ms=measures.percentile(lag_ms, 99),
        lag_max_ms=float(lag_ms.max()),
        latency_p50_ms=measures.percentile(latency_ms, 50),
        latency_p99_ms=measures.percentile(latency_ms, 99),
        dropped=int((log.status == STATUS_CLIENT_DROPPED).sum()),
        gen_cpu_pct=100.0 * cpu_s / wall_s,
        gen_cpu_us_per_req=1e6 * cpu_s / len(log),
        server_cpu_pct=100.0 * server_cpu_s / wall_s,
    )


HEADER = (
    f"{'target':>7} {'sent/s':>8} {'OK %':>7} {'lag p50':>8} {'lag p99':>8} {'lag max':>8} "
    f"{'lat p50':>8} {'lat p99':>8} {'dropped':>7} {'gen CPU':>8} {'µs/req':>7} {'srv CPU':>8}"
)


def format_row(row: Row) -> str:
    return (
        f"{row.rate_rps:>7.0f} {row.sent_rps:>8.1f} {100 * row.ok_share:>7.2f} "
        f"{row.lag_p50_ms:>8.2f} {row.lag_p99_ms:>8.2f} {row.lag_max_ms:>8.2f} "
        f"{row.latency_p50_ms:>8.2f} {row.latency_p99_ms:>8.2f} {row.dropped:>7d} "
        f"{row.gen_cpu_pct:>7.0f}% {row.gen_cpu_us_per_req:>7.0f} {row.server_cpu_pct:>7.0f}%"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[100, 200, 500, 1000, 2000, 3000])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per rate")
    parser.add_argument("--servers", type=int, default=1, help="server processes (SO_REUSEPORT)")
    parser.add_argument("--lag-budget-ms", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=1, help="runs per rate; best lag p99 kept")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return

    procs, url = start_servers(args.servers)
    rows: list[Row] = []
    try:
        # warm up imports, the connector and the server before the first measurement
        with LoadRun(url, rate_rps=100, duration_s=0.5):
            pass
        print(
            f"{os.cpu_count()} CPUs, {args.servers} server process(es), {args.duration:g} s/rate, "
            f"best of {args.repeat}; load average {os.getloadavg()[0]:.2f}"
        )
        print("times in ms; CPU in % of one core; lag = sent - scheduled; latency from schedule")
        print(HEADER)
        for rate in args.rates:
            runs = [
                measure(url, rate, args.duration, [p.pid for p in procs])
                for _ in range(args.repeat)
            ]
            row = min(runs, key=lambda r: r.lag_p99_ms)
            rows.append(row)
            print(format_row(row), flush=True)
    finally:
        stop_servers(procs)
    print(f"load average after: {os.getloadavg()[0]:.2f}")

    good = [r for r in rows if r.lag_p99_ms < args.lag_budget_ms and r.ok_share == 1.0]
    capacity = max((r.rate_rps for r in good), default=None)
    if capacity is None:
        print(f"capacity: no rate kept lag p99 < {args.lag_budget_ms:g} ms with 100 % OK")
    else:
        print(f"capacity: {capacity:.0f} rps (lag p99 < {args.lag_budget_ms:g} ms, 100 % OK)")


if __name__ == "__main__":
    main()
