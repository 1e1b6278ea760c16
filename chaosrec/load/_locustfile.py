"""The locustfile of chaosrec's Locust backend (runs inside ``locust`` processes only).

Locust provides the machinery: a master, workers that connect to it from this host or
others, heartbeats, and messages. chaosrec uses it to carry its open-loop schedule:

* the **master** (started by :class:`chaosrec.load.locust.LocustWorkers` with
  ``--chaosrec-run-dir``) deals worker ``k`` its share of the plan when the test
  starts, relays the run's start instant and stop request, and writes what each
  worker ships back (``ready``, chunks of rows, ``done``) into folder ``w<k>`` of the
  run dir, the folder protocol of :mod:`chaosrec.load.worker`; it quits once every
  worker is done;
* each **worker** (``locust -f <this file> --worker --master-host ...``) writes its
  share to a scratch folder and plays it with chaosrec's own engine in a child
  process (``python -m chaosrec.load.worker``): Locust's processes are gevent
  monkey-patched, chaosrec's engine is asyncio, so they do not share a process. It
  relays the child's chunks to the master as they appear.

Locust's users do nothing here (one idle user per worker, so that Locust starts the
test); Locust's own statistics stay empty: the request log is the measurement.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import gevent
from locust import User, constant, events, task
from locust.runners import MasterRunner, WorkerRunner

_POLL_S = 0.05


class ChaosrecIdle(User):
    """Locust needs a user class to start a test; chaosrec's traffic is not users."""

    wait_time = constant(3600)

    @task
    def idle(self) -> None:
        """Nothing: the open-loop schedule runs in the worker's child process."""


def _arguments(parser: Any) -> None:
    parser.add_argument("--chaosrec-run-dir", default="", help="chaosrec: the run's folder")
    parser.add_argument("--chaosrec-workers", type=int, default=0, help="chaosrec: shares")


def _init(environment: Any, **_kwargs: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        _Master(environment)
    elif isinstance(runner, WorkerRunner):
        _Worker(environment)


events.init_command_line_parser.add_listener(_arguments)  # type: ignore[no-untyped-call]
events.init.add_listener(_init)  # type: ignore[no-untyped-call]


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class _Master:
    def __init__(self, environment: Any) -> None:
        options = environment.parsed_options
        self.runner = environment.runner
        self.run_dir = Path(options.chaosrec_run_dir)
        self.n = int(options.chaosrec_workers)
        self.folders = [self.run_dir / f"w{k}" for k in range(self.n)]
        self.index_of: dict[str, int] = {}
        self.done: set[int] = set()
        self.runner.register_message("chaosrec_ready", self.on_ready)
        self.runner.register_message("chaosrec_chunk", self.on_chunk)
        self.runner.register_message("chaosrec_done", self.on_done)
        environment.events.test_start.add_listener(self.deal)

    def deal(self, **_kwargs: Any) -> None:
        if self.index_of:
            return
        clients = sorted(self.runner.clients.keys())[: self.n]
        for k, client_id in enumerate(clients):
            self.index_of[client_id] = k
            plan = (self.folders[k] / "plan.npz").read_bytes()
            self.runner.send_message("chaosrec_plan", {"index": k, "plan": plan}, client_id)
        gevent.spawn(self.relay, clients)

    def relay(self, clients: list[str]) -> None:
        """Forward the run's start instant and a stop request to the workers."""
        sent_go: set[int] = set()
        sent_stop: set[int] = set()
        while len(self.done) < self.n:
            for k, client_id in enumerate(clients):
                go = self.folders[k] / "go.json"
                if k not in sent_go and go.exists():
                    self.runner.send_message("chaosrec_go", json.loads(go.read_text()), client_id)
                    sent_go.add(k)
                if k not in sent_stop and (self.folders[k] / "stop.json").exists():
                    self.runner.send_message("chaosrec_stop", {}, client_id)
                    sent_stop.add(k)
            gevent.sleep(_POLL_S)

    def on_ready(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        (self.folders[int(msg.data["index"])] / "ready").touch()

    def on_chunk(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        k, seq = int(msg.data["index"]), int(msg.data["seq"])
        _write(self.folders[k] / f"chunk-{seq:06d}.npz", msg.data["data"])

    def on_done(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        k = int(msg.data["index"])
        _write(self.folders[k] / "done.json", json.dumps(msg.data["result"]).encode())
        self.done.add(k)
        if len(self.done) >= self.n:
            gevent.spawn_later(0.2, self.runner.quit)


class _Worker:
    def __init__(self, environment: Any) -> None:
        self.runner = environment.runner
        self.folder: Path | None = None
        self.index = -1
        self.child: subprocess.Popen[bytes] | None = None
        self.runner.register_message("chaosrec_plan", self.on_plan)
        self.runner.register_message("chaosrec_go", self.on_go)
        self.runner.register_message("chaosrec_stop", self.on_stop)

    def on_plan(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        self.index = int(msg.data["index"])
        self.folder = Path(tempfile.mkdtemp(prefix=f"chaosrec-locust-worker-{os.getpid()}-"))
        (self.folder / "plan.npz").write_bytes(msg.data["plan"])
        log = (self.folder / "engine.log").open("wb")
        self.child = subprocess.Popen(  # gevent's cooperative subprocess
            [sys.executable, "-m", "chaosrec.load.worker", str(self.folder)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        gevent.spawn(self.relay)

    def on_go(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        if self.folder is not None:
            _write(self.folder / "go.json", json.dumps(msg.data).encode())

    def on_stop(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        if self.folder is not None:
            _write(self.folder / "stop.json", b'{"stop": true}')

    def relay(self) -> None:
        """Ship the child's ``ready``, chunks and ``done`` to the master as they appear."""
        assert self.folder is not None and self.child is not None
        folder, k = self.folder, self.index
        ready_sent = False
        seq = 0
        try:
            while True:
                if not ready_sent and (folder / "ready").exists():
                    self.runner.send_message("chaosrec_ready", {"index": k})
                    ready_sent = True
                while (chunk := folder / f"chunk-{seq:06d}.npz").exists():
                    data = {"index": k, "seq": seq, "data": chunk.read_bytes()}
                    self.runner.send_message("chaosrec_chunk", data)
                    seq += 1
                done = folder / "done.json"
                if done.exists():
                    result = json.loads(done.read_text())
                    self.runner.send_message("chaosrec_done", {"index": k, "result": result})
                    return
                if self.child.poll() is not None and not done.exists():
                    tail = (folder / "engine.log").read_text(errors="replace")[-2000:]
                    result = {"error": f"the engine exited with {self.child.returncode}: {tail}"}
                    self.runner.send_message("chaosrec_done", {"index": k, "result": result})
                    return
                gevent.sleep(_POLL_S)
        finally:
            if self.child.poll() is None:
                self.child.terminate()
            try:
                self.child.wait(timeout=10)  # reaped: its CPU shows in our rusage
            except subprocess.TimeoutExpired:
                self.child.kill()
            shutil.rmtree(folder, ignore_errors=True)
