"""Benchmark chaosrec's load generators against vegeta and Locust, side by side, one run.

Every generator drives the same server (``bench/okserver``, Go's net/http answering
``200 ok`` at once with chaosrec's routing headers) pinned to one core (``--server-cpu``),
while the generator under test is pinned to another (``--gen-cpu``), with ``taskset``:

* ``chaosrec``: :class:`chaosrec.load.LoadRun` in one process;
* ``chaosrec workers=2``: the same schedule dealt to two local worker processes;
* ``chaosrec locust x2``: the same schedule on a Locust master with two local
  ``locust --worker`` processes (their engines are chaosrec's);
* ``vegeta``: ``vegeta attack`` (Go, open loop) at the same rates, at most 256 workers
  (its default, unbounded, collapses on one core at 6,000-8,000 req/s);
* ``locust FastHttpUser``: Locust's own users (closed loop: each user waits for its
  answer), at ``--users`` users; reported by throughput, since it has no schedule.

For the open-loop generators each rate runs ``--duration`` seconds and is *clean* when
every request was answered 200, at least 99 % of the rate was sent, and the send lag
(actual send minus scheduled send) has p99 under ``--lag-budget-ms`` (5 ms: the send lag
above which the drill history calls a machine too busy to judge). Each rate runs
``--repeat`` times (3) and the median run is kept, since one run on a shared VM can be
several ms late at p99 for reasons of its own. Latency is
measured from each request's scheduled time (vegeta's from its own send, as vegeta
reports it; its send lag comes from its hit timestamps against ``i / rate``). CPU per
request is the generator's processes' user + system time (children included, start-up
included: about a CPU-second per Python process, which weighs on the Locust runs) over
the requests sent; the server's share of its core is printed beside each measurement,
so a saturated server shows. Ratios are to vegeta's highest clean rate.

The bench installs what it compares against itself, into ``bench/.tools`` (not
``make setup``): vegeta with ``go install github.com/tsenart/vegeta/v12@v12.12.0``, the
Go server with ``go build``, and Locust from PyPI (``pip install locust``) when the
``locust`` extra is missing. On a shared machine run it when ``uptime`` shows a load
below ~1: other processes on the generator's core show up as send lag.

Usage::

    python bench/bench_load.py [--rates 500 1000 2000 ... 16000] [--duration 5] [--repeat 3]
                               [--users 16 64 128] [--gen-cpu 0] [--server-cpu 1]
                               [--only chaosrec vegeta ...]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TOOLS = HERE / ".tools"
VEGETA_MODULE = "github.com/tsenart/vegeta/v12@v12.12.0"
#: vegeta's own default is unbounded: on one core at 6,000-8,000 req/s it then spawned a
#: worker (and a connection) per late request and collapsed (5 s latencies, 19,000
#: sockets in TIME_WAIT); bounded, the same vegeta keeps 16,000 req/s here
VEGETA_MAX_WORKERS = 256
GENERATORS = ("chaosrec", "chaosrec-workers", "chaosrec-locust", "vegeta", "locust")
LABELS = {
    "chaosrec": "chaosrec (in process)",
    "chaosrec-workers": "chaosrec workers=2",
    "chaosrec-locust": "chaosrec on Locust, 2 workers",
    "vegeta": "vegeta 12.12",
    "locust": "Locust FastHttpUser",
}

LOCUSTFILE = """
from locust import FastHttpUser, task, constant


class Hammer(FastHttpUser):
    wait_time = constant(0)

    @task
    def ok(self):
        self.client.get("/ok")
"""


# -- set-up: the server and the tools compared against --------------------------------------


def _go() -> str:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        sys.exit("bench_load: needs Go (https://go.dev) to build the server and vegeta")
    return go


def ensure_tools() -> tuple[Path, Path]:
    """The Go server and vegeta, built into bench/.tools on first use."""
    TOOLS.mkdir(exist_ok=True)
    env = {**os.environ, "GOBIN": str(TOOLS), "GOFLAGS": "-mod=mod"}
    server = TOOLS / "okserver"
    if not server.exists():
        subprocess.run(
            [_go(), "build", "-o", str(server), "."], cwd=HERE / "okserver", env=env, check=True
        )
    vegeta = TOOLS / "vegeta"
    if not vegeta.exists():
        subprocess.run([_go(), "install", VEGETA_MODULE], env=env, check=True)
    try:
        import locust  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "locust"], check=True)
    return server, vegeta


def start_server(binary: Path, cpu: int) -> tuple[subprocess.Popen[bytes], str]:
    from chaosrec.adapters.ports import free_port

    port = free_port()
    proc = subprocess.Popen(
        ["taskset", "-c", str(cpu), str(binary), "-addr", f"127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/ok"
    for _ in range(200):
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("bench_load: the Go server did not start")


# -- one measurement -------------------------------------------------------------------------


_TICKS = os.sysconf("SC_CLK_TCK")
SERVER_PID = 0  # set once the server runs: its CPU is printed beside each measurement


def _pid_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass(frozen=True)
class Result:
    rate_rps: float  # target rate (open loop) or users (closed loop)
    sent_rps: float
    ok_share: float
    lag_p99_ms: float  # NaN for closed loops
    latency_p99_ms: float
    cpu_us_per_req: float

    def clean(self, lag_budget_ms: float) -> bool:
        lag_ok = np.isnan(self.lag_p99_ms) or self.lag_p99_ms < lag_budget_ms
        return self.ok_share >= 1.0 and self.sent_rps >= 0.99 * self.rate_rps and lag_ok


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _pct(values: np.ndarray, q: float) -> float:
    from chaosrec.slo.measures import percentile

    return float(percentile(values, q)) if len(values) else float("nan")


def measure_chaosrec(url: str, rate: float, duration: float, mode: str) -> dict[str, float]:
    """Runs in a pinned child process (``--measure``); prints its figures as JSON."""
    from chaosrec.load import open_run

    kwargs: dict[str, object] = {}
    if mode == "chaosrec-workers":
        kwargs = {"workers": 2}
    elif mode == "chaosrec-locust":
        kwargs = {"locust": True, "workers": 2}
    with open_run(url, rate_rps=100, duration_s=0.3):
        pass  # warm up imports, the pool and the server
    own = resource.getrusage(resource.RUSAGE_SELF)
    before = own.ru_utime + own.ru_stime + _children_cpu_s()
    with open_run(url, rate_rps=rate, duration_s=duration, max_inflight=2000, **kwargs) as run:
        pass
    own = resource.getrusage(resource.RUSAGE_SELF)
    # this process and every worker it started and reaped (Locust's engines included)
    cpu_s = own.ru_utime + own.ru_stime + _children_cpu_s() - before
    log = run.log
    sent = log.select(log.status != -1)
    span = float(sent.sent_s.max()) + 1.0 / rate if len(sent) else duration
    lag = (log.sent_s - log.scheduled_s) * 1000.0
    return {
        "sent_rps": len(sent) / max(span, duration),
        "ok_share": float(log.ok.mean()),
        "lag_p99_ms": _pct(lag, 99),
        "latency_p99_ms": _pct(log.latency_ms, 99),
        "cpu_us_per_req": 1e6 * cpu_s / max(1, len(log)),
    }


def run_chaosrec(mode: str, url: str, rate: float, duration: float, cpu: int) -> Result:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            str(cpu),
            sys.executable,
            __file__,
            "--measure",
            mode,
            "--url",
            url,
            "--rate",
            str(rate),
            "--duration",
            str(duration),
        ],
        capture_output=True,
        text=True,
        timeout=duration + 120,
    )
    if out.returncode != 0:
        sys.exit(f"bench_load: {mode} at {rate:g}/s failed:\n{out.stderr[-3000:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return Result(rate, **data)


def run_vegeta(vegeta: Path, url: str, rate: float, duration: float, cpu: int) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.bin"
        before = _children_cpu_s()
        subprocess.run(
            [
                "taskset",
                "-c",
                str(cpu),
                str(vegeta),
                "attack",
                f"-rate={rate:g}/s",
                f"-duration={duration:g}s",
                "-timeout=5s",
                f"-max-workers={VEGETA_MAX_WORKERS}",
                f"-output={results}",
            ],
            input=f"GET {url}\n".encode(),
            check=True,
            timeout=duration + 60,
        )
        cpu_s = _children_cpu_s() - before  # the attack only: encoding comes after
        encoded = subprocess.run(
            [str(vegeta), "encode", "--to", "csv", str(results)],
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout.decode()
    rows = list(csv.reader(io.StringIO(encoded)))
    seq = np.array([int(r[8]) for r in rows])
    order = np.argsort(seq)
    ts_s = np.array([int(r[0]) for r in rows], dtype=np.float64)[order] / 1e9
    codes = np.array([int(r[1]) for r in rows])[order]
    latency_ms = np.array([int(r[2]) for r in rows], dtype=np.float64)[order] / 1e6
    scheduled = ts_s[0] + seq[order] / rate
    lag_ms = (ts_s - scheduled) * 1000.0
    n = len(rows)
    span = float(ts_s.max() - ts_s[0]) + 1.0 / rate
    return Result(
        rate_rps=rate,
        sent_rps=n / max(span, duration),
        ok_share=float((codes == 200).mean()) if n else 0.0,
        lag_p99_ms=_pct(lag_ms, 99),
        latency_p99_ms=_pct(latency_ms, 99),
        cpu_us_per_req=1e6 * cpu_s / max(1, n),
    )


def run_locust(url: str, users: int, duration: float, cpu: int) -> Result:
    base = url.rsplit("/", 1)[0]
    with tempfile.TemporaryDirectory() as tmp:
        locustfile = Path(tmp) / "hammer.py"
        locustfile.write_text(LOCUSTFILE)
        before = _children_cpu_s()
        subprocess.run(
            [
                "taskset",
                "-c",
                str(cpu),
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(locustfile),
                "--headless",
                "-u",
                str(users),
                "-r",
                str(users),
                "-t",
                f"{duration:g}s",
                "-H",
                base,
                "--csv",
                str(Path(tmp) / "out"),
                "--only-summary",
                "--loglevel",
                "ERROR",
                "--stop-timeout",
                "2",
            ],
            capture_output=True,
            timeout=duration + 60,
            check=False,
        )
        cpu_s = _children_cpu_s() - before
        with (Path(tmp) / "out_stats.csv").open() as fh:
            total = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    requests = int(total["Request Count"])
    failures = int(total["Failure Count"])
    return Result(
        rate_rps=float(users),
        sent_rps=float(total["Requests/s"]),
        ok_share=(requests - failures) / max(1, requests),
        lag_p99_ms=float("nan"),
        latency_p99_ms=float(total["99%"]),
        cpu_us_per_req=1e6 * cpu_s / max(1, requests),
    )


# -- the sweep and the table -----------------------------------------------------------------


def median_run(runs: list[Result], closed: bool) -> Result:
    """The middle one of a rate's repeats: by send lag (open loop; the figure a noisy VM
    moves most), by throughput (closed loop)."""
    key = (lambda r: -r.sent_rps) if closed else (lambda r: r.lag_p99_ms)
    return sorted(runs, key=key)[len(runs) // 2]


def sweep(
    name: str,
    rates: list[float],
    measure: Callable[[float], Result],
    budget: float,
    repeat: int = 1,
) -> list[Result]:
    """Each rate ``repeat`` times, its median run kept; stops after two rates in a row
    whose median run is not clean."""
    results: list[Result] = []
    misses = 0
    for rate in rates:
        server_before, wall_before = _pid_cpu_s(SERVER_PID), time.monotonic()
        runs = [measure(rate) for _ in range(repeat)]
        result = median_run(runs, closed=name == "locust")
        server_pct = (
            100 * (_pid_cpu_s(SERVER_PID) - server_before) / (time.monotonic() - wall_before)
        )
        results.append(result)
        mark = "clean" if result.clean(budget) else "not clean"
        lags = "/".join(f"{r.lag_p99_ms:.1f}" for r in runs) if repeat > 1 else ""
        print(
            f"  {LABELS[name]:<30} {rate:>7.0f}: sent {result.sent_rps:>8.0f}/s, OK "
            f"{100 * result.ok_share:6.2f} %, lag p99 {result.lag_p99_ms:7.2f} ms, latency p99 "
            f"{result.latency_p99_ms:7.2f} ms, {result.cpu_us_per_req:5.0f} µs CPU/req, server "
            f"{server_pct:3.0f} % of its core ({mark})"
            + (f" [median of {repeat}; lag p99s {lags} ms]" if lags else ""),
            flush=True,
        )
        misses = 0 if result.clean(budget) else misses + 1
        if misses >= 2:
            break
    return results


def best(results: list[Result], budget: float, closed: bool) -> Result | None:
    good = [r for r in results if r.clean(budget)]
    if not good:
        return None
    return max(good, key=lambda r: r.sent_rps if closed else r.rate_rps)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--rates",
        type=float,
        nargs="+",
        default=[500, 1000, 2000, 3000, 4000, 6000, 8000, 12000, 16000],
    )
    parser.add_argument("--users", type=int, nargs="+", default=[16, 64, 128])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per rate")
    parser.add_argument("--lag-budget-ms", type=float, default=5.0)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per rate; the median one is kept"
    )
    parser.add_argument("--gen-cpu", type=int, default=0)
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--only", nargs="+", choices=GENERATORS, default=list(GENERATORS))
    parser.add_argument("--measure", choices=GENERATORS[:3], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_chaosrec(args.url, args.rate, args.duration, args.measure)))
        return

    server_bin, vegeta = ensure_tools()
    server, url = start_server(server_bin, args.server_cpu)
    global SERVER_PID
    SERVER_PID = server.pid
    budget = args.lag_budget_ms
    table: dict[str, Result | None] = {}
    load_before = os.getloadavg()[0]
    print(
        f"{os.cpu_count()} CPUs; server on CPU {args.server_cpu}, each generator on CPU "
        f"{args.gen_cpu}; {args.duration:g} s per rate; load average {load_before:.2f}"
    )
    try:
        for name in args.only:
            if name == "vegeta":
                runs = sweep(
                    name,
                    args.rates,
                    lambda r: run_vegeta(vegeta, url, r, args.duration, args.gen_cpu),
                    budget,
                    args.repeat,
                )
            elif name == "locust":
                runs = sweep(
                    name,
                    [float(u) for u in args.users],
                    lambda u: run_locust(url, int(u), args.duration, args.gen_cpu),
                    budget,
                    args.repeat,
                )
            else:
                runs = sweep(
                    name,
                    args.rates,
                    lambda r, n=name: run_chaosrec(n, url, r, args.duration, args.gen_cpu),
                    budget,
                    args.repeat,
                )
            table[name] = best(runs, budget, closed=name == "locust")
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    ref = table.get("vegeta")
    print(
        "| generator | model | highest clean rate | send lag p99 | latency p99 | CPU per "
        "request | vs vegeta |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.only:
        row = table.get(name)
        model = "closed loop" if name == "locust" else "open loop"
        if row is None:
            print(f"| {LABELS[name]} | {model} | none clean | | | | |")
            continue
        rate = row.sent_rps if name == "locust" else row.rate_rps
        extra = f" ({row.rate_rps:.0f} users)" if name == "locust" else ""
        lag = "n/a" if np.isnan(row.lag_p99_ms) else f"{row.lag_p99_ms:.2f} ms"
        ratio = f"{rate / (ref.rate_rps):.2f}x" if ref is not None else "-"
        print(
            f"| {LABELS[name]} | {model} | {rate:,.0f} req/s{extra} | {lag} | "
            f"{row.latency_p99_ms:.2f} ms | {row.cpu_us_per_req:.0f} µs | {ratio} |"
        )


if __name__ == "__main__":
    main()
