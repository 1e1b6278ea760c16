"""The open-loop load generator against a small aiohttp server in a separate process.

Timing on a shared 2-core CI box is noisy, so these tests assert the
generator's *functional* contract (request counts, exact schedules, sends never
early and in order, open-loop behaviour under a stall, drops past
``max_inflight``) and use wall-clock bounds only where they are an order of
magnitude looser than what the property needs.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chaosrec.adapters.ports import free_port
from chaosrec.adapters.process.launch import child_preexec
from chaosrec.errors import ConfigError
from chaosrec.load.generator import LoadRun
from chaosrec.slo.log import STATUS_CLIENT_DROPPED, STATUS_TRANSPORT_ERROR, RequestLog
from chaosrec.slo.measures import percentile

pytestmark = pytest.mark.integration

# The server runs in its own process so that it never competes with the
# generator's thread for this interpreter's GIL. Endpoints:
#   /ok        200 with routing headers; waits out a stall set by /stall
#   /degraded  200 with X-Chaosrec-Degraded: 1
#   /stall?ms= from now on, /ok answers no earlier than now + ms (returns at once)
#   /slow?ms=  200 after ms milliseconds
#   /fail      503
SERVER_SCRIPT = r"""
import asyncio
import sys
import threading
import time

from aiohttp import web

HEADERS = {"X-Chaosrec-Region": "r1", "X-Chaosrec-Replica": "r1.0", "X-Chaosrec-Degraded": "0"}
state = {"stall_until": 0.0}


async def ok(request):
    wait_s = state["stall_until"] - time.monotonic()
    if wait_s > 0:
        await asyncio.sleep(wait_s)
    return web.Response(text="ok", headers=HEADERS)


async def degraded(request):
    return web.Response(text="ok", headers={**HEADERS, "X-Chaosrec-Degraded": "1"})


async def stall(request):
    state["stall_until"] = time.monotonic() + int(request.query["ms"]) / 1000
    return web.Response(text="stalling")


async def slow(request):
    await asyncio.sleep(int(request.query["ms"]) / 1000)
    return web.Response(text="slow", headers=HEADERS)


async def fail(request):
    return web.Response(status=503, text="unavailable")


app = web.Application()
app.router.add_get("/ok", ok)
app.router.add_get("/degraded", degraded)
app.router.add_get("/stall", stall)
app.router.add_get("/slow", slow)
app.router.add_get("/fail", fail)
web.run_app(
    app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, backlog=1024
)
"""


class ServerProcess:
    """The test server's process and base URL."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self.base = f"http://127.0.0.1:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path: str) -> int:
        """A blocking control request from the test's own thread; returns the status."""
        with urllib.request.urlopen(self.url(path), timeout=10) as resp:
            status: int = resp.status
            return status

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _start_server(log_path: Path, timeout_s: float = 20.0) -> ServerProcess:
    """Start the server on a free port; retry on a new port if another process took it."""
    last_log = ""
    for _attempt in range(3):
        port = free_port()
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-c", SERVER_SCRIPT, str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=child_preexec,  # never outlives the test run, even on SIGKILL
            )
        server = ServerProcess(proc, port, log_path)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if server.get("/ok") == 200:
                    return server
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        server.stop()
        last_log = log_path.read_text(errors="replace")
        if "address already in use" not in last_log.lower():
            break
    raise RuntimeError(f"the test HTTP server did not become ready; its output:\n{last_log}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = _start_server(tmp_path_factory.mktemp("load-server") / "server.log")
    try:
        yield running
    finally:
        running.stop()


def _lag_ms(log: RequestLog) -> np.ndarray[Any, np.dtype[np.float64]]:
    return (log.sent_s - log.scheduled_s) * 1000.0


# -- schedule -------------------------------------------------------------------------


def test_request_count_and_exact_schedule(server: ServerProcess) -> None:
    rate_rps, duration_s = 200.0, 1.5
    with LoadRun(server.url("/ok"), rate_rps=rate_rps, duration_s=duration_s) as run:
        pass  # leaving the block waits out the whole run
    log = run.log
    n = round(rate_rps * duration_s)
    assert run.n_requests == n
    assert len(log) == n
    np.testing.assert_allclose(log.scheduled_s, np.arange(n) / rate_rps, rtol=0, atol=1e-9)
    assert log.ok.all(), np.unique(log.error[~log.ok])
    # Structural, load-independent properties of the scheduler: a request is never
    # sent before its scheduled time (1 µs of float slack), sends leave in
    # schedule order, and every answer comes after its send.
    assert (log.sent_s >= log.scheduled_s - 1e-6).all()
    assert (np.diff(log.sent_s) >= 0).all()
    assert (log.done_s >= log.sent_s).all()
    # Scheduling accuracy is the generator's functional contract, but a CI job may
    # share these 2 cores. Measured p99: ~1-2 ms idle (bench/bench_load.py), up to
    # 25 ms with four busy loops on the 2 cores; 100 ms catches a broken scheduler
    # (batching, waiting for answers), not a slow machine.
    lag_p99_ms = percentile(_lag_ms(log), 99)
    assert lag_p99_ms < 100.0, f"send lag p99 {lag_p99_ms:.1f} ms"
    assert run.max_lag_ms == pytest.approx(_lag_ms(log).max(), abs=1e-6)


def test_params_are_sent_with_each_request(server: ServerProcess) -> None:
    # /slow reads ?ms= from the params callable; a missing parameter would be a 500
    with LoadRun(
        server.url("/slow"), rate_rps=50, duration_s=0.2, params=lambda i: {"ms": 1}
    ) as run:
        pass
    assert len(run.log) == 10
    assert run.log.ok.all(), np.unique(run.log.error[~run.log.ok])


# -- open loop --------------------------------------------------------------------------


def test_sends_stay_on_schedule_while_the_server_stalls(server: ServerProcess) -> None:
    """A 1 s server stall mid-run neither delays the sends nor hides from the latency.

    A closed-loop generator (N workers, each awaiting its answer before sending the
    next request) fails both halves of this test: during the stall at most N requests
    leave, the rest go out in a burst when the stall ends (so ``sent_during_stall``
    is tiny and the lag is ~ the stall length), and latency measured from the actual
    send shows nothing of the stall. Measuring from the send time alone is
    "coordinated omission"; here latency counts from the *scheduled* time.
    """
    stall_s = 1.0
    with LoadRun(server.url("/ok"), rate_rps=100, duration_s=3.0) as run:
        run.wait(1.0)
        before_stall = run.now()
        assert server.get(f"/stall?ms={round(stall_s * 1000)}") == 200
        stall_set = run.now()
    log = run.log
    assert len(log) == 300
    assert log.ok.all(), np.unique(log.error[~log.ok])

    # The server's stall starts between before_stall and stall_set (same monotonic
    # clock, other process) and lasts stall_s, so it certainly covers
    # [stall_set, stall_end), and no request sent after stall_set is answered before
    # stall_end.
    stall_end = before_stall + stall_s
    stalled = log.window(stall_set, stall_end)
    assert len(stalled) >= 50, f"the /stall control call took {stall_set - before_stall:.2f} s"

    # open loop: the requests scheduled during the stall were sent during it, on time
    sent_during_stall = int((stalled.sent_s < stall_end).sum())
    assert sent_during_stall >= 0.8 * len(stalled), (sent_during_stall, len(stalled))
    assert np.median(_lag_ms(stalled)) < 100.0

    # latency from the schedule includes the stall: each stalled request waited for
    # the stall's end (1 ms slack for the server's timer), the first almost all of it
    expected_ms = (stall_end - stalled.scheduled_s) * 1000.0
    assert (stalled.latency_ms >= expected_ms - 1.0).all()
    assert stalled.latency_ms.max() >= 1000.0 * (stall_end - stall_set) - 1.0
    # ... which requests before the stall did not see (median: robust to noise)
    assert np.median(log.window(0.0, before_stall - 0.1).latency_ms) < 0.5 * stall_s * 1000


def test_max_inflight_drops_instead_of_queueing(server: ServerProcess) -> None:
    max_inflight, rate_rps, duration_s, server_ms = 5, 40, 1.0, 800
    with LoadRun(
        server.url("/slow"),
        rate_rps=rate_rps,
        duration_s=duration_s,
        max_inflight=max_inflight,
        params=lambda i: {"ms": server_ms},
    ) as run:
        pass
    log = run.log
    assert len(log) == 40
    dropped = log.select(log.status == STATUS_CLIENT_DROPPED)
    sent = log.select(log.status != STATUS_CLIENT_DROPPED)
    # each slot is busy >= 800 ms per request, so within the 1 s schedule 5 slots
    # serve at most 10 requests (even if the scheduler ran 500 ms late); the rest
    # must be dropped, not queued for later
    assert len(sent) <= 2 * max_inflight
    assert len(dropped) >= len(log) - 2 * max_inflight
    assert sent.ok.all(), np.unique(sent.error[~sent.ok])
    assert set(dropped.error) == {"dropped"}
    assert (dropped.sent_s == dropped.done_s).all()  # recorded at once, never sent
    assert (dropped.sent_s >= dropped.scheduled_s - 1e-6).all()
    # nothing queued: what was sent waited only for the server, not for a slot
    assert (sent.service_ms >= server_ms - 1.0).all()
    # never more than max_inflight requests in flight at any instant
    events = sorted([(float(t), 1) for t in sent.sent_s] + [(float(t), -1) for t in sent.done_s])
    in_flight = np.cumsum([delta for _, delta in events])  # at ties, ends sort before starts
    assert in_flight.max() <= max_inflight


# -- answers and failures -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "degraded"),
    [pytest.param("/ok", False, id="normal"), pytest.param("/degraded", True, id="degraded")],
)
def test_routing_headers_are_parsed(server: ServerProcess, path: str, degraded: bool) -> None:
    with LoadRun(server.url(path), rate_rps=50, duration_s=0.2) as run:
        pass
    log = run.log
    assert len(log) == 10
    assert log.ok.all()
    assert set(log.status) == {200}
    assert set(log.region) == {"r1"}
    assert set(log.replica) == {"r1.0"}
    assert set(log.degraded) == {degraded}
    assert set(log.error) == {None}


def test_http_error_is_recorded_not_raised(server: ServerProcess) -> None:
    with LoadRun(server.url("/fail"), rate_rps=50, duration_s=0.2) as run:
        pass
    log = run.log
    assert len(log) == 10
    assert set(log.status) == {503}
    assert set(log.error) == {"HTTP 503"}
    assert not log.ok.any()
    assert set(log.region) == {None}


def test_connection_refused_is_status_0() -> None:
    url = f"http://127.0.0.1:{free_port()}/ok"  # nothing listens there
    with LoadRun(url, rate_rps=50, duration_s=0.2, timeout_s=2.0) as run:
        pass
    log = run.log
    assert len(log) == 10
    assert set(log.status) == {STATUS_TRANSPORT_ERROR}
    assert not log.ok.any()
    assert all(isinstance(e, str) and e for e in log.error)
    assert (log.done_s >= log.sent_s).all()


def test_client_timeout_is_status_0(server: ServerProcess) -> None:
    with LoadRun(
        server.url("/slow"),
        rate_rps=20,
        duration_s=0.2,
        timeout_s=0.2,
        params=lambda i: {"ms": 3000},
    ) as run:
        pass
    log = run.log
    assert len(log) == 4
    assert set(log.status) == {STATUS_TRANSPORT_ERROR}
    assert all("Timeout" in e for e in log.error), set(log.error)
    # given up after the client timeout, long before the server would have answered
    assert (log.service_ms >= 200.0 - 1.0).all()
    assert (log.service_ms < 3000.0).all()


# -- the context manager --------------------------------------------------------------------


def test_wait_returns_no_later_than_the_end_of_the_run(server: ServerProcess) -> None:
    duration_s = 1.0
    with LoadRun(server.url("/ok"), rate_rps=20, duration_s=duration_s) as run:
        run.wait(0.2)
        assert run.now() >= 0.2
        run.wait(30.0)  # far past the end: must return once the schedule is over
        returned_at = run.now()
    assert returned_at >= duration_s
    # 30 s asked for; returning within a few seconds of the 1 s end proves the cap
    assert returned_at < duration_s + 5.0
    assert len(run.log) == 20


def test_wait_rejects_negative_seconds(server: ServerProcess) -> None:
    with (
        LoadRun(server.url("/ok"), rate_rps=20, duration_s=0.1) as run,
        pytest.raises(ConfigError, match=r"seconds=-1"),
    ):
        run.wait(-1)
    assert len(run.log) == 2


def test_exception_in_block_stops_sending_and_propagates(server: ServerProcess) -> None:
    duration_s = 20.0
    with (
        pytest.raises(RuntimeError, match="boom"),
        LoadRun(server.url("/ok"), rate_rps=50, duration_s=duration_s) as run,
    ):
        run.wait(0.3)
        raise RuntimeError("boom")
    left_at = run.now()
    log = run.log
    assert left_at < duration_s / 2  # did not wait out the 20 s schedule
    assert 0 < len(log) < run.n_requests
    assert log.scheduled_s.max() < left_at  # nothing scheduled after the block was left
    assert log.ok.all()  # requests already in flight were answered and kept


def test_stop_ends_the_schedule_early(server: ServerProcess) -> None:
    with LoadRun(server.url("/ok"), rate_rps=50, duration_s=20.0) as run:
        run.wait(0.2)
        run.stop()
        stopped_at = run.now()
        run.wait(10.0)  # returns at once once stopped
    assert run.now() < 10.0
    assert 0 < len(run.log) < run.n_requests
    assert run.log.scheduled_s.max() <= stopped_at


def test_snapshot_shows_the_rows_so_far_while_running(server: ServerProcess) -> None:
    run = LoadRun(server.url("/ok"), rate_rps=100, duration_s=1.5)
    assert (run.running, run.done, len(run.snapshot())) == (False, False, 0)
    with run:
        run.wait(0.5)
        assert run.running and not run.done
        early = run.snapshot()
        n_early = len(early)
        run.wait(0.5)
        later = run.snapshot()
        assert 20 <= n_early < len(later) < 150  # the answers in so far
        assert (np.diff(later.scheduled_s) > 0).all()
        assert later.ok.all(), np.unique(later.error[~later.ok])
        assert np.isin(early.scheduled_s, later.scheduled_s).all()  # rows only ever added
    assert run.done and not run.running
    final = run.snapshot()
    assert len(final) == 150
    assert len(early) == n_early  # a snapshot is a copy: later rows left it alone
    for column in ("scheduled_s", "sent_s", "done_s", "status", "region", "degraded"):
        np.testing.assert_array_equal(getattr(final, column), getattr(run.log, column))


def test_on_start_sees_the_running_clock(server: ServerProcess) -> None:
    seen: list[float] = []
    with LoadRun(
        server.url("/ok"), rate_rps=20, duration_s=0.2, on_start=lambda r: seen.append(r.t0)
    ) as run:
        pass
    assert seen == [run.t0]
    assert run.t0 > 0


def test_loop_failing_before_its_first_request_raises_on_enter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chaosrec.load import _http

    def broken_pool(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no connector")

    monkeypatch.setattr(_http, "HttpPool", broken_pool)
    entered = False
    with (
        pytest.raises(RuntimeError, match="no connector"),
        LoadRun("http://127.0.0.1:9/ok", rate_rps=10, duration_s=5.0),
    ):
        entered = True  # pragma: no cover - a drill must not run its fault without load
    assert not entered


def test_failing_on_start_stops_the_load(server: ServerProcess) -> None:
    def explode(run: LoadRun) -> None:
        raise RuntimeError("on_start failed")

    run = LoadRun(server.url("/ok"), rate_rps=50, duration_s=20.0, on_start=explode)
    with pytest.raises(RuntimeError, match="on_start failed"), run:
        pytest.fail("the block must not run")  # pragma: no cover
    # __exit__ never runs when __enter__ raises; the load must not go on for 20 s anyway
    assert not [t for t in threading.enumerate() if t.name == "chaosrec-load"]
    assert run.done and not run.running
    assert run.now() < 10.0
    assert len(run.log) < run.n_requests


# -- arguments --------------------------------------------------------------------------

GOOD: dict[str, Any] = {"url": "http://127.0.0.1:9/ok", "rate_rps": 10, "duration_s": 1}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"rate_rps": 0}, r"rate_rps=0 must be > 0", id="rate-zero"),
        pytest.param({"rate_rps": -1}, r"rate_rps=-1 must be > 0", id="rate-negative"),
        pytest.param({"rate_rps": float("nan")}, r"rate_rps=nan", id="rate-nan"),
        pytest.param({"rate_rps": 1e6}, r"rate_rps=1000000.0 is above", id="rate-too-high"),
        pytest.param({"duration_s": 0}, r"duration_s=0 must be > 0", id="duration-zero"),
        pytest.param({"duration_s": -2.5}, r"duration_s=-2.5", id="duration-negative"),
        pytest.param({"timeout_s": 0}, r"timeout_s=0 must be > 0", id="timeout-zero"),
        pytest.param({"url": "127.0.0.1:8080/ok"}, r"url='127.0.0.1:8080/ok'", id="no-scheme"),
        pytest.param({"url": "ftp://127.0.0.1/ok"}, r"url='ftp://127.0.0.1/ok'", id="ftp"),
        pytest.param({"max_inflight": 0}, r"max_inflight=0 must be an integer", id="inflight-0"),
        pytest.param({"max_inflight": 2.5}, r"max_inflight=2.5", id="inflight-float"),
        pytest.param(
            {"max_inflight": 10**6},
            r"max_inflight=1000000 is above the maximum",
            id="inflight-huge",
        ),
        pytest.param(  # 20k/s x 3600 s = 72 M rows: ~34 GiB of log, refused before starting
            {"rate_rps": 20_000, "duration_s": 3600},
            r"schedules 72,000,000 requests, whose log needs ~34,332 MiB, over the load memory "
            r"budget of 1,024 MiB; lower the rate",
            id="log-over-memory-budget",
        ),
        pytest.param(
            {"rate_rps": 1000, "duration_s": 60, "memory_budget_mb": 10},
            r"60,000 requests.*budget of 10 MiB",
            id="explicit-budget",
        ),
    ],
)
def test_invalid_arguments(overrides: dict[str, Any], message: str) -> None:
    kwargs = {**GOOD, **overrides}
    url = kwargs.pop("url")
    with pytest.raises(ConfigError, match=message):
        LoadRun(url, **kwargs)
