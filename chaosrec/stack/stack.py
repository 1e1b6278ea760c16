"""The embedded reference stack: Toxiproxy, one Triton per replica, the gateway, a supervisor.

::

    client ──> gateway ──> toxiproxy proxy "region-a.r0" ──> tritonserver (region-a.r0)
                      ├──> toxiproxy proxy "region-a.r1" ──> tritonserver (region-a.r1)
                      ├──> toxiproxy proxy "region-b.r0" ──> tritonserver (region-b.r0)
                      └──> toxiproxy proxy "region-b.r1" ──> tritonserver (region-b.r1)

Everything binds to 127.0.0.1 on ports picked at run time; every process logs
to the run folder. A supervisor thread restarts a crashed replica (or gateway)
on the same ports and records when the crash was seen and when the replica was
ready again, so crash drills can measure recovery. ``stop()`` tears everything
down in reverse order; a start that fails part-way stops what it had started.

Example::

    with EmbeddedStack("quick") as stack:
        httpx.get(f"{stack.gateway_url}/recommend", params={"user_id": 7})
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosrec.adapters.gateway import GatewayClient
from chaosrec.adapters.ports import free_port, port_is_free
from chaosrec.adapters.process.launch import renice_tree
from chaosrec.adapters.process.manager import ManagedProcess
from chaosrec.core.paths import runs_dir, stacks_dir
from chaosrec.core.redact import redact
from chaosrec.core.topology import Replica, Topology, load_topology
from chaosrec.core.validation import check_stack_name
from chaosrec.errors import ConfigError, PortInUseError, ProcessStartError, StackError
from chaosrec.stack.backup import ModelBackup, RestoreReport
from chaosrec.stack.gateway.config import GatewayConfig, PolicyConfig, UpstreamConfig
from chaosrec.stack.triton import (
    TritonDist,
    TritonPorts,
    TritonReplica,
    find_triton,
    write_fault,
    write_model_repository,
)

__all__ = ["EmbeddedStack", "StackEvent", "check_stack_name", "stack_state_dir"]

_PORT_RETRIES = 3
# nice(2) increment for replicas the supervisor restarts, until they are ready
RESTART_NICE = 10
RESTART_BACKOFF_S = (0.5, 8.0)  # first delay after a failed restart, and the cap


# a stack's name becomes a folder name: one path component, nothing a shell or a path
# would read as anything else ("..", "/", "~", spaces)


def stack_state_dir(name: object, source: str = "--name") -> Path:
    """The folder holding ``state.json`` of the stack ``name`` (checked, not created)."""
    return stacks_dir() / check_stack_name(name, source)


def restart_backoff_s(failures: int) -> float:
    """Delay before the next restart after ``failures`` failed restarts in a row: 0.5 s,
    doubling up to 8 s (like Kubernetes' CrashLoopBackOff, shorter: a drill's replica
    should come back within seconds of its cause being fixed)."""
    first, cap = RESTART_BACKOFF_S
    return float(min(cap, first * 2 ** max(0, failures - 1)))


@dataclass(frozen=True)
class StackEvent:
    """Something the supervisor saw: ``crashed``, ``restarted``, ``ready``, ``restart_failed``."""

    kind: str
    process: str
    at: float  # time.time(), seconds since the epoch
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "process": self.process, "at": self.at, **self.detail}


@dataclass
class _ReplicaHandle:
    replica: Replica
    triton: TritonReplica
    fault_file: Path
    proxy_listen: str = ""
    restarting: bool = False
    held: bool = False  # a fault keeps this replica down: the supervisor must not restart it
    crashed_at: float | None = None
    restarts: int = 0
    failed_restarts: int = 0  # in a row; reset when a restart gets ready
    next_restart_at: float = 0.0  # monotonic; back-off after failed restarts


class EmbeddedStack:
    """Start and supervise the reference stack for one topology.

    :param topology: a built-in name (``"default"``, ``"quick"``), a YAML path or a Topology.
    :param run_dir: where logs, model repositories and scratch files go (default: a new
        folder under chaosrec's cache).
    :param restart_crashed: restart a replica or gateway that exits unexpectedly.
    :param policy: the gateway's resilience policy (defaults: see :class:`PolicyConfig`).
    :param protocol: how the gateway calls Triton: ``"http"`` or ``"grpc"``.
    """

    def __init__(
        self,
        topology: str | Path | Topology = "default",
        *,
        run_dir: Path | None = None,
        restart_crashed: bool = True,
        policy: PolicyConfig | None = None,
        protocol: str = "http",
        gateway_port: int | None = None,
        toxiproxy: Any = None,
        ready_timeout_s: float = 90.0,
    ) -> None:
        self.topology = load_topology(topology)
        self.run_dir = run_dir or runs_dir() / (
            f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{secrets.token_hex(3)}"
        )
        self.restart_crashed = restart_crashed
        self.policy = policy or PolicyConfig()
        if protocol not in ("http", "grpc"):
            raise ConfigError(f"protocol={protocol!r} must be 'http' or 'grpc'")
        self.protocol = protocol
        if gateway_port is not None and (
            isinstance(gateway_port, bool)
            or not isinstance(gateway_port, int)
            or not 1 <= gateway_port <= 65535
        ):
            raise ConfigError(f"gateway_port={gateway_port!r} must be an integer in [1, 65535]")
        self.fixed_gateway_port = gateway_port
        self.ready_timeout_s = ready_timeout_s
        self.replicas: dict[str, _ReplicaHandle] = {}
        self.events: list[StackEvent] = []
        self.supervisor_ticks = 0  # completed supervision passes (tests wait on it)
        self.started_at: float | None = None
        self.ready_at: float | None = None
        self.model_meta: dict[str, Any] = {}
        self.golden: Any = None
        self.versions: dict[str, str] = {}
        self._toxiproxy: Any = toxiproxy  # a running ToxiproxyServer we were given, or ours
        self._owns_toxiproxy = toxiproxy is None
        self._bad_model_file: Path | None = None
        #: checksummed copy of the served model folder (every version), taken when the
        #: first replica's repository is written; artifact-loss faults restore from it
        self.model_backup: ModelBackup | None = None
        self._gateway: ManagedProcess | None = None
        self._gateway_port = 0
        #: the gateway's admin token: one per stack, kept across gateway restarts
        self._gateway_admin_token = secrets.token_urlsafe(32)
        self._dist: TritonDist | None = None
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._supervisor: threading.Thread | None = None

    # -- public properties ----------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self._gateway_port}"

    @property
    def toxiproxy(self) -> Any:
        """The :class:`~chaosrec.adapters.toxiproxy.ToxiproxyClient` of this stack's server."""
        if self._toxiproxy is None:
            raise StackError("the stack is not started; call start() first")
        return self._toxiproxy.client

    # -- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> EmbeddedStack:
        """Start every process and wait until the gateway sees every replica healthy."""
        from chaosrec.adapters.tools import ensure_toxiproxy, toxiproxy_version
        from chaosrec.adapters.toxiproxy import ToxiproxyServer
        from chaosrec.model import ensure_model

        # Everything that can fail without side effects is checked first.
        if self.fixed_gateway_port is not None and not port_is_free(self.fixed_gateway_port):
            raise PortInUseError(
                f"gateway_port={self.fixed_gateway_port} is already in use on 127.0.0.1; "
                "stop what holds it, pick another port, or omit gateway_port for a free one"
            )
        self._dist = find_triton()
        from chaosrec.stack.reaper import reap_orphans

        reap_orphans(self._dist.backend_dir)  # leftovers of runs that were killed hard
        toxiproxy_bin = ensure_toxiproxy()
        artifact = ensure_model("good")
        self._bad_model_file = ensure_model("bad").model_file
        self.model_meta = dict(artifact.meta)
        self.golden = artifact.golden
        self.started_at = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self._owns_toxiproxy:
                self._toxiproxy = ToxiproxyServer(
                    toxiproxy_bin, log_path=self.run_dir / "toxiproxy.log"
                )
                self._toxiproxy.start()
            self.versions["toxiproxy"] = toxiproxy_version(toxiproxy_bin)
            for replica in self.topology.replicas:
                self._start_replica(replica, artifact.model_file)
            for handle in self.replicas.values():
                self._wait_replica(handle, artifact.model_file)
            meta = next(iter(self.replicas.values())).triton.control.server_metadata()
            self.versions["triton"] = str(meta.get("version", "?"))
            self.versions["nvidia-pytriton"] = self._dist.version
            self.versions["model"] = str(artifact.version)
            self._start_gateway(artifact.popularity, int(artifact.meta.get("n_users", 0)) or None)
        except BaseException:
            self.stop()
            raise
        self.ready_at = time.monotonic()
        self._stop_event.clear()
        self._supervisor = threading.Thread(
            target=self._supervise, name="chaosrec-supervisor", daemon=True
        )
        self._supervisor.start()
        return self

    def _start_replica(self, replica: Replica, model_file: Path) -> None:
        assert self._dist is not None
        work = self.run_dir / "replicas" / replica.id
        fault_file = work / "fault.json"
        extra = {2: self._bad_model_file} if self._bad_model_file is not None else None
        model_dir = write_model_repository(
            work / "models", model_file, fault_file=fault_file, extra_versions=extra
        )
        repo = model_dir.parent
        if self.model_backup is None:
            self.model_backup = ModelBackup.create(self.run_dir / "model-backup", model_dir)
        ports = TritonPorts(free_port(), free_port(), free_port())
        triton = TritonReplica(
            replica.id,
            dist=self._dist,
            repo_dir=repo,
            work_dir=work,
            ports=ports,
            ready_timeout_s=self.ready_timeout_s,
        )
        handle = _ReplicaHandle(replica, triton, fault_file)
        self.replicas[replica.id] = handle
        triton.start()
        port = ports.grpc if self.protocol == "grpc" else ports.http
        proxy = self.toxiproxy.create_proxy(replica.id, upstream=f"127.0.0.1:{port}")
        handle.proxy_listen = proxy.listen

    def _wait_replica(self, handle: _ReplicaHandle, model_file: Path) -> None:
        for attempt in range(_PORT_RETRIES):
            try:
                handle.triton.wait_ready()
                return
            except ProcessStartError:
                tail = handle.triton.process.log_tail(40).lower()
                if "address already in use" not in tail or attempt == _PORT_RETRIES - 1:
                    raise
            # Another process took a port between picking and binding: pick new ones.
            old = handle.triton
            ports = TritonPorts(free_port(), free_port(), free_port())
            handle.triton = TritonReplica(
                old.replica_id,
                dist=old.dist,
                repo_dir=old.repo_dir,
                work_dir=old.work_dir,
                ports=ports,
                ready_timeout_s=self.ready_timeout_s,
            )
            handle.triton.start()
            port = ports.grpc if self.protocol == "grpc" else ports.http
            self.toxiproxy.delete_proxy(old.replica_id)
            proxy = self.toxiproxy.create_proxy(old.replica_id, upstream=f"127.0.0.1:{port}")
            handle.proxy_listen = proxy.listen

    def _start_gateway(self, popularity: list[int], n_users: int | None) -> None:
        import sys

        upstreams = tuple(
            UpstreamConfig(h.replica.id, h.replica.region, h.proxy_listen)
            for h in self.replicas.values()
        )
        for attempt in range(_PORT_RETRIES):
            self._gateway_port = self.fixed_gateway_port or free_port()
            config = GatewayConfig(
                port=self._gateway_port,
                home_region=self.topology.home_region,
                upstreams=upstreams,
                popularity=tuple(popularity),
                protocol=self.protocol,
                n_users=n_users,
                policy=self.policy,
                admin_token=self._gateway_admin_token,
            )
            config_path = self.run_dir / "gateway.json"
            config.write(config_path)
            self._gateway = ManagedProcess(
                "gateway",
                [sys.executable, "-m", "chaosrec.stack.gateway", "--config", str(config_path)],
                log_path=self.run_dir / "gateway.log",
                ready_check=lambda: self.gateway.all_healthy(),
                ready_timeout_s=30.0,
            )
            self._gateway.start()
            try:
                self._gateway.wait_ready()
                return
            except ProcessStartError:
                tail = self._gateway.log_tail(20).lower()
                if "address already in use" not in tail or attempt == _PORT_RETRIES - 1:
                    raise

    @property
    def gateway_admin_token(self) -> str:
        """The bearer token of the gateway's ``/admin/*`` (also in run_dir/gateway.json, 0600)."""
        return self._gateway_admin_token

    @property
    def gateway(self) -> GatewayClient:
        """Health, metrics and policy of this stack's gateway."""
        return GatewayClient(self.gateway_url, admin_token=self._gateway_admin_token)

    def wait_healthy(self, timeout_s: float = 30.0) -> float:
        """Block until the gateway reports every replica healthy; returns seconds waited."""
        return self.gateway.wait_healthy(timeout_s, hint=f"the logs in {self.run_dir}")

    def stop(self) -> None:
        """Stop the supervisor, gateway, replicas and Toxiproxy (in that order). Idempotent."""
        self._stop_event.set()
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(timeout=5)
        self._supervisor = None
        errors: list[BaseException] = []
        if self._gateway is not None:
            try:
                self._gateway.stop()
            except Exception as err:  # noqa: BLE001
                errors.append(err)
        for handle in self.replicas.values():
            try:
                handle.triton.stop()
            except Exception as err:  # noqa: BLE001
                errors.append(err)
        if self._toxiproxy is not None and not self._owns_toxiproxy:
            for handle in self.replicas.values():  # leave a shared server as we found it
                try:
                    self._toxiproxy.client.delete_proxy(handle.replica.id)
                except Exception as err:  # noqa: BLE001
                    errors.append(err)
        elif self._toxiproxy is not None:
            try:
                self._toxiproxy.stop()
            except Exception as err:  # noqa: BLE001
                errors.append(err)
        if errors:
            raise StackError(f"stopping the stack failed: {errors[0]}") from errors[0]

    # -- supervision ----------------------------------------------------------------

    def _supervise(self) -> None:
        while not self._stop_event.wait(0.05):
            for handle in list(self.replicas.values()):
                self._watch_replica(handle)
            self.supervisor_ticks += 1
            gateway = self._gateway
            if gateway is not None and not gateway.alive and not self._stop_event.is_set():
                self._record("crashed", "gateway", exit_code=gateway.returncode)
                if self.restart_crashed:
                    gateway.start()
                    self._record("restarted", "gateway")

    def _watch_replica(self, handle: _ReplicaHandle) -> None:
        proc = handle.triton.process
        if self._stop_event.is_set():
            return
        if handle.restarting:
            if handle.triton.control.ready_or_false():
                handle.restarting = False
                handle.failed_restarts = 0
                downtime = time.time() - (handle.crashed_at or time.time())
                if proc.pid is not None:  # serve at the same priority as its peers
                    renice_tree(proc.pid, os.getpriority(os.PRIO_PROCESS, 0))
                self._record("ready", handle.replica.id, recovery_s=round(downtime, 3))
            elif not proc.alive:
                handle.restarting = False
                handle.failed_restarts += 1
                delay = restart_backoff_s(handle.failed_restarts)
                handle.next_restart_at = time.monotonic() + delay
                self._record(
                    "restart_failed",
                    handle.replica.id,
                    exit_code=proc.returncode,
                    retry_in_s=delay,
                )
            return
        if time.monotonic() < handle.next_restart_at:
            return  # backing off: a replica that cannot start must not burn the CPU
        if proc.pid is not None and not proc.alive and not handle.held:
            handle.crashed_at = time.time()
            self._record("crashed", handle.replica.id, exit_code=proc.returncode)
            if self.restart_crashed:
                # A Triton start burns ~2.5 CPU-seconds (its stub imports torch); at a
                # lower priority it takes the idle CPU instead of the serving replicas'.
                proc.start(nice=RESTART_NICE)
                handle.restarts += 1
                handle.restarting = True
                self._record("restarted", handle.replica.id, pid=proc.pid)

    def _record(self, kind: str, process: str, **detail: Any) -> None:
        with self._lock:
            self.events.append(StackEvent(kind, process, time.time(), detail))

    # -- faults the stack itself must perform (used by chaosrec.faults) -------------

    def set_gpu_fault(self, replica_id: str, fault: dict[str, Any]) -> None:
        """Set (or clear, with ``{}``) a replica's emulated GPU fault; takes effect next batch."""
        handle = self._handle(replica_id)
        write_fault(handle.fault_file, fault)

    def kill_replica(self, replica_id: str, *, hold: bool = False) -> int | None:
        """SIGKILL a replica's Triton. With ``hold``, the supervisor leaves it down until
        :meth:`release_replica`; otherwise it restarts it (and records the recovery)."""
        import signal

        handle = self._handle(replica_id)
        handle.held = hold
        pid = handle.triton.process.pid
        # the whole group: Triton and its Python-backend stub die together, as when a
        # GPU host or container goes down
        handle.triton.process.kill_group(signal.SIGKILL)
        handle.triton.process.wait(5)
        return pid

    def release_replica(self, replica_id: str) -> None:
        """Let the supervisor restart a held replica (it does so within ~50 ms)."""
        self._handle(replica_id).held = False

    def triton_url(self, replica_id: str) -> str:
        """The replica's own Triton HTTP URL (control plane; bypasses its proxy)."""
        return self._handle(replica_id).triton.http_url

    def unload_model(self, replica_id: str) -> None:
        """Unload the model through Triton's model-control API."""
        self._handle(replica_id).triton.control.unload()

    def load_model(self, replica_id: str, version: int = 1) -> None:
        """(Re)load the model, serving ``version`` (1: the good model, 2: the bad one)."""
        self._handle(replica_id).triton.control.load(version)

    def model_dir(self, replica_id: str) -> Path:
        """The replica's Triton model folder (``<repository>/recsys``)."""
        triton = self._handle(replica_id).triton
        return Path(triton.repo_dir) / triton.model_name

    def damage_model(self, replica_id: str, mode: str) -> list[str]:
        """Delete (``mode="delete"``) or corrupt (``"corrupt"``: same size, bytes flipped)
        the weights of every version in the replica's model folder; returns their paths.
        Only the replica's own folder is touched, never the shared model cache."""
        if mode not in ("delete", "corrupt"):
            raise ConfigError(f"mode={mode!r} is not one of ['corrupt', 'delete']")
        model_dir = self.model_dir(replica_id)
        damaged = []
        for weights in sorted(model_dir.glob("*/model.pt")):
            if mode == "corrupt":
                data = bytearray(weights.read_bytes())
                for i in range(0, len(data), 4096):
                    data[i] ^= 0xFF
                weights.unlink()  # a symlink into the cache: replace it, don't write through
                weights.write_bytes(bytes(data))
            else:
                weights.unlink()
            damaged.append(weights.relative_to(model_dir).as_posix())
        return damaged

    def restore_model(self, replica_id: str) -> RestoreReport:
        """Restore the replica's model folder from :attr:`model_backup` (checksums verified
        before and after); the supervisor's next restart loads it."""
        if self.model_backup is None:
            raise StackError("the stack has no model backup yet: start it first")
        return self.model_backup.restore(self.model_dir(replica_id))

    def served_version(self, replica_id: str) -> str | None:
        """The model version the replica serves now (None if the model is not ready)."""
        return self._handle(replica_id).triton.control.served_version()

    def _handle(self, replica_id: str) -> _ReplicaHandle:
        self.topology.replica(replica_id)  # raises UnknownTargetError with the valid ids
        return self.replicas[replica_id]

    # -- introspection --------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Every process with its pid, ports and liveness, plus versions and recent events;
        credentials (in URLs, error texts, secret-looking keys) are redacted."""
        toxi = self._toxiproxy
        status: dict[str, Any] = {
            "topology": self.topology.to_dict(),
            "run_dir": str(self.run_dir),
            "gateway": {
                "url": self.gateway_url,
                "pid": self._gateway.pid if self._gateway else None,
                "alive": bool(self._gateway and self._gateway.alive),
                "port": self._gateway_port,
                "log": str(self.run_dir / "gateway.log"),
            },
            "toxiproxy": {
                "api_url": toxi.api_url if toxi else None,
                "pid": toxi.pid if toxi else None,
                "log": str(self.run_dir / "toxiproxy.log"),
            },
            "replicas": [
                {**h.triton.describe(), "proxy": h.proxy_listen, "restarts": h.restarts}
                for h in self.replicas.values()
            ],
            "versions": dict(self.versions),
            "model": {
                k: self.model_meta.get(k)
                for k in ("version", "variant", "metrics", "device_trained")
            },
            "startup_s": (
                round(self.ready_at - self.started_at, 2)
                if self.ready_at and self.started_at
                else None
            ),
            "events": [e.to_dict() for e in self.events[-50:]],
        }
        return redact(status)

    def write_state(self, path: Path, **extra: Any) -> None:
        """Atomically replace ``path`` with :meth:`status` plus ``extra`` (redacted too)."""
        tmp = path.with_suffix(".tmp")
        state = redact({**self.status(), **extra})
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
        tmp.replace(path)
