"""One schedule, several sending processes, one request log.

:class:`DistributedRun` materialises a run into a :class:`~chaosrec.load.plan.Plan`,
deals it out (worker ``k`` of ``n`` sends requests ``k, k + n, ...``), starts every
worker at one shared wall-clock instant, and merges what they ship back into a single
:class:`~chaosrec.slo.log.RequestLog` keyed by request number, so every SLO, RTO, MTTD,
guardrail and report reads it as if one process had sent everything. Each worker runs
the same open-loop engine as an in-process run (no coordinated omission: a request is
timed from its scheduled send time, wherever it was sent).

Who runs the workers is a *backend*:

* :class:`LocalWorkers` (``workers=N``): ``N`` processes on this host
  (``python -m chaosrec.load.worker``), each a :class:`ManagedProcess`;
* :class:`chaosrec.load.locust.LocustWorkers`: Locust's master/worker machinery, workers
  on this host or others.

Both speak the folder protocol of :mod:`chaosrec.load.worker` (one folder per worker
under the run's scratch folder); a backend only starts, relays and stops processes.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from chaosrec.core.validation import check_positive_int
from chaosrec.errors import ChaosrecError, ConfigError, ProcessStartError
from chaosrec.load.generator import MAX_INFLIGHT, _check_memory
from chaosrec.load.plan import Plan, read_chunk, write_json
from chaosrec.load.recorder import RowRecorder
from chaosrec.load.requests import RequestSource
from chaosrec.load.run import RunBase
from chaosrec.load.schedule import Schedule
from chaosrec.slo.log import RequestLog

__all__ = ["DistributedRun", "LocalWorkers", "WorkerBackend"]

#: the most worker processes one run may start on this host
MAX_LOCAL_WORKERS = 64


class WorkerBackend(Protocol):
    """Starts the processes that serve worker folders ``folders[k]`` and stops them."""

    def describe(self) -> str: ...

    def start(self, folders: list[Path], log_dir: Path) -> None: ...

    def check_alive(self) -> None:
        """Raise :class:`ProcessStartError` if a process this backend needs has died."""
        ...

    def lead_s(self) -> float:
        """How far ahead of now the shared start instant is set (messages must arrive)."""
        ...

    def stop(self) -> None: ...


class LocalWorkers:
    """``n`` worker processes on this host (``python -m chaosrec.load.worker FOLDER``)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.processes: list[Any] = []

    def describe(self) -> str:
        return f"{self.n} local worker processes"

    def start(self, folders: list[Path], log_dir: Path) -> None:
        from chaosrec.adapters.process.manager import ManagedProcess

        for k, folder in enumerate(folders):
            proc = ManagedProcess(
                f"load-worker[{k}]",
                [sys.executable, "-m", "chaosrec.load.worker", str(folder)],
                log_path=log_dir / f"worker-{k}.log",
                stop_grace_s=5.0,
            )
            self.processes.append(proc)
            proc.start()

    def check_alive(self) -> None:
        for proc in self.processes:
            if not proc.alive and proc.returncode not in (0, None):
                raise ProcessStartError(
                    f"{proc.name} exited with status {proc.returncode}; its log:\n{proc.log_tail()}"
                )

    def lead_s(self) -> float:
        return 0.2

    def stop(self) -> None:
        for proc in self.processes:
            proc.stop()


class DistributedRun(RunBase):
    """A run whose requests are sent by ``backend``'s processes; same interface as
    :class:`~chaosrec.load.generator.LoadRun` (``with``, ``wait``, ``snapshot``,
    ``log``, ``join``, ``stop``).

    :param url: the run's URL (what reports show; requests carry their own URLs).
    :param schedule: the whole run's schedule.
    :param source: ``i -> HttpRequest`` (materialised here, before anything starts).
    :param backend: :class:`LocalWorkers` or a Locust backend.
    :param workers: how many shares the plan is dealt into.
    :param scratch: where to make the run's folder of worker folders and logs (default:
        a chaosrec scratch folder); only the folder made here is removed after the run.
    """

    def __init__(
        self,
        url: str,
        *,
        schedule: Schedule,
        source: RequestSource,
        backend: WorkerBackend,
        workers: int,
        scratch: Path | None = None,
        timeout_s: float = 5.0,
        max_inflight: int = 1000,
        on_start: Callable[[Any], None] | None = None,
        memory_budget_mb: float | None = None,
        ready_timeout_s: float = 60.0,
    ) -> None:
        super().__init__(schedule)
        self.url = url
        _check_memory(schedule.describe(), self.n_requests, memory_budget_mb)
        check_positive_int("max_inflight", max_inflight, maximum=MAX_INFLIGHT * workers)
        if max_inflight < workers:
            raise ConfigError(
                f"max_inflight={max_inflight} is below workers={workers}: each worker needs "
                "at least one request in flight"
            )
        self.timeout_s = timeout_s
        self.workers = workers
        self.backend = backend
        self._scratch_parent = scratch
        self.scratch = Path()  # made in start()
        self.ready_timeout_s = ready_timeout_s
        self._on_start = on_start
        self.plan = Plan.materialise(
            schedule.times(),
            source,
            duration_s=schedule.duration_s,
            timeout_s=timeout_s,
            max_inflight=max_inflight,
        )
        self._rows = RowRecorder()
        self._folders: list[Path] = []
        self._next_chunk: list[int] = []
        self._collect_lock = threading.Lock()
        self._started_backend = False
        self.worker_results: list[dict[str, Any]] = []

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._scratch_parent is None:
            from chaosrec.adapters.process.scratch import scratch_dir

            self.scratch = scratch_dir("load")
        else:
            import tempfile

            self.scratch = Path(tempfile.mkdtemp(prefix="chaosrec-run-", dir=self._scratch_parent))
        for k in range(self.workers):
            folder = self.scratch / f"w{k}"
            folder.mkdir()
            (folder / "plan.npz").write_bytes(self.plan.share(k, self.workers).to_bytes())
            self._folders.append(folder)
            self._next_chunk.append(0)
        try:
            self._started_backend = True
            self.backend.start(self._folders, self.scratch)
            self._wait_ready()
            start_at = time.time() + self.backend.lead_s()
            self.t0 = time.monotonic() + (start_at - time.time())
            self.t0_epoch = start_at
            for folder in self._folders:
                write_json(folder / "go.json", {"start_at_epoch": start_at})
            time.sleep(max(0.0, self.t0 - time.monotonic()))
            if self._on_start is not None:
                self._on_start(self)
        except BaseException:
            self._shutdown(abort=True)
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while not all((f / "ready").exists() for f in self._folders):
            self.backend.check_alive()
            if time.monotonic() > deadline:
                missing = [f.name for f in self._folders if not (f / "ready").exists()]
                raise ProcessStartError(
                    f"{self.backend.describe()}: workers {missing} were not ready within "
                    f"{self.ready_timeout_s:g} s"
                )
            time.sleep(0.02)

    def join(self) -> RequestLog:
        """Wait for every worker's last rows (or the deadline); build the merged log."""
        if self._started_backend:
            deadline = self.t0 + self.duration_s + self.timeout_s + 30.0
            stopped = False
            while not all((f / "done.json").exists() for f in self._folders):
                if self._abort.is_set() and not stopped:
                    self._send_stop()
                    stopped = True
                try:
                    self.backend.check_alive()
                except ChaosrecError:
                    break
                if time.monotonic() > deadline:
                    break
                self._collect()
                time.sleep(0.05)
            self._collect()
            self.worker_results = [
                json.loads((f / "done.json").read_text()) if (f / "done.json").exists() else {}
                for f in self._folders
            ]
            self._shutdown(abort=False)
        self.log = self._rows.snapshot(self.t0_epoch)
        self._joined = True
        lags = [float(r.get("max_lag_ms") or 0.0) for r in self.worker_results]
        self.max_lag_ms = max(lags, default=0.0)
        errors = [
            f"worker {k}: {r['error']}" for k, r in enumerate(self.worker_results) if r.get("error")
        ]
        missing = [k for k, r in enumerate(self.worker_results) if not r]
        if errors:
            raise ChaosrecError("a load worker failed: " + "; ".join(errors))
        if missing:
            raise ProcessStartError(
                f"{self.backend.describe()}: workers {missing} never reported their end; "
                f"the log has {len(self.log)} of {self.n_requests} requests"
            )
        return self.log

    def _send_stop(self) -> None:
        """Ask the workers to stop scheduling (they still ship what they measured)."""
        for folder in self._folders:
            write_json(folder / "stop.json", {"stop": True})

    def _shutdown(self, *, abort: bool) -> None:
        if abort:
            for folder in self._folders:
                if not (folder / "go.json").exists():
                    write_json(folder / "go.json", {"abort": True})
        try:
            self.backend.stop()
        finally:
            self._started_backend = False
            shutil.rmtree(self.scratch, ignore_errors=True)

    # -- merging --------------------------------------------------------------------------

    def _collect(self) -> None:
        """Read every chunk that appeared since the last call into the merged log."""
        with self._collect_lock:
            n = self.workers
            for k, folder in enumerate(self._folders):
                while True:
                    path = folder / f"chunk-{self._next_chunk[k]:06d}.npz"
                    if not path.exists():
                        break
                    for local, row in read_chunk(path):
                        self._rows.record(k + n * local, row)
                    self._next_chunk[k] += 1

    def snapshot(self) -> RequestLog:
        """Every row the workers have shipped so far (within ~0.25 s), merged and sorted by
        scheduled time; any thread. After :meth:`join` it equals :attr:`log`."""
        if self._joined:
            return self.log
        self._collect()
        return self._rows.snapshot(self.t0_epoch)

    @property
    def running(self) -> bool:
        return self._started_backend and not self._joined
