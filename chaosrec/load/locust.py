"""Scale a load run out on Locust's master/worker machinery (``pip install 'chaosrec[locust]'``).

When one machine cannot send enough, the same open-loop schedule runs on Locust
workers: chaosrec starts a Locust master (a child process of the test, bound to
127.0.0.1 unless told otherwise), the master deals each worker its share of the plan,
every worker plays it with chaosrec's open-loop engine and ships its rows back
(chunks of ~40 bytes a request, every 0.25 s), and the merged log is one
:class:`~chaosrec.slo.log.RequestLog`: ``slo.assert_met``, RTO, MTTD, guardrails and
reports work unchanged across workers. Each request is timed from its scheduled send
time on the worker that sent it (no coordinated omission), which Locust's own users,
closed loops that wait for each answer, cannot do.

Workers on this host are started for you (``spawn_workers=True``, the default). For
workers on other hosts:

1. install the same chaosrec (with the ``locust`` extra) there;
2. start the run with ``spawn_workers=False, master_bind_host="0.0.0.0",
   master_port=5557`` (the master waits up to ``ready_timeout_s`` for them);
3. on each worker host, run::

       locust -f "$(python -c 'import chaosrec.load.locust as m; print(m.LOCUSTFILE)')" \\
           --worker --master-host <this host> --master-port 5557

   (the host names in the run's requests must be allowed by the target guard, and the
   hosts' clocks synchronised, e.g. by NTP: the workers start at one wall-clock instant
   and skew shows up as send lag).

Importing this module never imports Locust (gevent monkey-patches the process that
imports it); only the ``locust`` processes do, through :data:`LOCUSTFILE`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from chaosrec.core.validation import check_positive_int
from chaosrec.errors import MissingExtraError, ProcessStartError

__all__ = ["LOCUSTFILE", "LocustWorkers"]

#: the locustfile master and workers load (ships with chaosrec)
LOCUSTFILE = str(Path(__file__).with_name("_locustfile.py"))


def _require_locust() -> None:
    if importlib.util.find_spec("locust") is None:
        raise MissingExtraError("load on Locust workers", "locust", "locust")


class LocustWorkers:
    """A Locust master (and, with ``spawn_workers``, ``n`` local ``locust --worker``
    processes) serving a distributed run's worker folders.

    :param n: how many workers share the plan (the master waits for this many).
    :param spawn_workers: start the workers here (else they connect from other hosts).
    :param master_bind_host: the address the master listens on (loopback by default).
    :param master_port: the master's port (default: a free one).
    """

    def __init__(
        self,
        n: int,
        *,
        spawn_workers: bool = True,
        master_bind_host: str = "127.0.0.1",
        master_port: int | None = None,
    ) -> None:
        _require_locust()
        self.n = check_positive_int("n", n, maximum=1000)
        self.spawn_workers = spawn_workers
        self.master_bind_host = master_bind_host
        self.master_port = master_port
        self.master: Any = None
        self.workers: list[Any] = []

    def describe(self) -> str:
        where = "local" if self.spawn_workers else "remote"
        return f"Locust master with {self.n} {where} workers"

    def _locust(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--loglevel", "WARNING", *args]

    def start(self, folders: list[Path], log_dir: Path) -> None:
        from chaosrec.adapters.ports import free_port
        from chaosrec.adapters.process.manager import ManagedProcess

        port = self.master_port or free_port()
        run_dir = folders[0].parent
        self.master = ManagedProcess(
            "locust-master",
            self._locust(
                "--master",
                "--headless",
                "--master-bind-host",
                self.master_bind_host,
                "--master-bind-port",
                str(port),
                "--expect-workers",
                str(self.n),
                "--expect-workers-max-wait",
                "120",
                "--users",
                str(self.n),
                "--spawn-rate",
                str(self.n),
                "--chaosrec-run-dir",
                str(run_dir),
                "--chaosrec-workers",
                str(self.n),
            ),
            log_path=log_dir / "locust-master.log",
            stop_grace_s=5.0,
        )
        self.master.start()
        if self.spawn_workers:
            for k in range(self.n):
                worker = ManagedProcess(
                    f"locust-worker[{k}]",
                    self._locust(
                        "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)
                    ),
                    log_path=log_dir / f"locust-worker-{k}.log",
                    stop_grace_s=5.0,
                )
                self.workers.append(worker)
                worker.start()

    def check_alive(self) -> None:
        for proc in [self.master, *self.workers]:
            if proc is not None and not proc.alive and proc.returncode not in (0, None):
                raise ProcessStartError(
                    f"{proc.name} exited with status {proc.returncode}; its log:\n{proc.log_tail()}"
                )

    def lead_s(self) -> float:
        return 0.5  # the start instant travels master -> worker -> engine by messages

    def stop(self) -> None:
        for proc in [*self.workers, self.master]:
            if proc is not None:
                proc.stop()
