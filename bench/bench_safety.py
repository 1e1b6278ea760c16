"""How long chaosrec's safety nets take, on a real toxiproxy-server on loopback.

* the start-up sweep on a shared server with N proxies: nothing to sweep, and a dead
  session's faults on every proxy (a toxic on each, a quarter of them disabled);
* SIGTERM to a session holding faults -> every fault rolled back (child pytest
  processes, as in tests/integration/test_fault_ownership.py).

    python bench/bench_safety.py [--proxies 200] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from chaosrec.adapters.tools import ensure_toxiproxy
from chaosrec.adapters.toxiproxy import ToxiproxyClient, ToxiproxyServer
from chaosrec.faults.ownership import FaultLedger, SessionId

REPO = Path(__file__).resolve().parents[1]
HOLD = """
import os, pathlib, time

def test_hold(chaos):
    chaos.latency("p0", ms=500)
    chaos.down("p1")
    pathlib.Path(os.environ["READY_FILE"]).write_text("injected")
    time.sleep(120)
"""


def _dead_session() -> SessionId:
    """A session id of a process that has exited (this host, its pid gone)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    me = SessionId.this_process()
    return SessionId(me.host, child.pid, 1, "dead00")


def sweep_times(client: ToxiproxyClient, n: int) -> tuple[float, float, int]:
    for i in range(n):
        client.create_proxy(f"p{i}", "127.0.0.1:9")
    started = time.perf_counter()
    FaultLedger(client).sweep()
    clean_s = time.perf_counter() - started
    dead = FaultLedger(client, _dead_session())
    for i in range(n):
        proxy = f"p{i}"
        dead.claim([proxy], "bench")
        client.add_toxic(proxy, "latency", {"latency": 100}, name=dead.toxic_name("latency"))
        if i % 4 == 0:
            dead.mark_down(proxy)
            client.set_enabled(proxy, False)
    started = time.perf_counter()
    swept = FaultLedger(client).sweep()
    dirty_s = time.perf_counter() - started
    assert client.is_clean(), "the sweep left faults behind"
    return clean_s, dirty_s, len(swept)


def sigterm_times(client: ToxiproxyClient, runs: int) -> list[float]:
    times = []
    for run in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp)
            (project / "test_hold.py").write_text(textwrap.dedent(HOLD))
            ready = project / "ready"
            proc = subprocess.Popen(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 f"--chaosrec-toxiproxy-url={client.api_url}", str(project)],
                cwd=project, env={**os.environ, "PYTHONPATH": str(REPO), "READY_FILE": str(ready)},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + 120
            while not ready.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            while not client.is_clean():
                time.sleep(0.005)
            times.append(time.monotonic() - sent)
            proc.wait(60)
        print(f"  run {run + 1}: SIGTERM -> clean in {times[-1] * 1000:.0f} ms", flush=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--proxies", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with ToxiproxyServer(ensure_toxiproxy(), Path(tmp) / "t.log") as server:
            clean_s, dirty_s, swept = sweep_times(server.client, args.proxies)
            print(
                f"start-up sweep, {args.proxies} proxies, nothing to sweep: {clean_s * 1000:.1f} ms"
            )
            print(f"start-up sweep, {args.proxies} proxies, {swept} dead-session faults: "
                  f"{dirty_s * 1000:.0f} ms")  # fmt: skip
        with ToxiproxyServer(ensure_toxiproxy(), Path(tmp) / "u.log") as server:
            for name in ("p0", "p1"):
                server.client.create_proxy(name, "127.0.0.1:9")
            print("SIGTERM to a session holding 2 faults:")
            times = sigterm_times(server.client, args.runs)
            median_ms = statistics.median(times) * 1000
            print(f"SIGTERM -> every fault rolled back: median {median_ms:.0f} ms, "
                  f"max {max(times) * 1000:.0f} ms over {len(times)} runs")  # fmt: skip


if __name__ == "__main__":
    main()
