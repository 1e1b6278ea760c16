"""A real Kubernetes control plane on loopback, with kwok playing the kubelets.

:class:`LocalCluster` runs, each on the one process manager
(:class:`~chaosrec.adapters.process.manager.ManagedProcess`: own process group, dies
with its owner, swept by the next session if it did not):

* **etcd** (data in a tmpfs folder when ``/dev/shm`` exists: a busy disk's fsyncs
  otherwise stall the API server for seconds);
* **kube-apiserver** on ``127.0.0.1`` only, TLS with the cluster's own CA
  (:mod:`.pki`), RBAC on, service-account tokens, the ``--requestheader-*`` flags, a
  ``--service-cluster-ip-range`` that is configuration only (nothing is ever sent
  there);
* **kube-controller-manager** with one identity per controller
  (``--use-service-account-credentials``) and 100 QPS to the API server (at the default
  20 the ``default`` service account, which must exist before any pod is admitted,
  takes 3.5 s longer), no leader election;
* **kube-scheduler**;
* **kwok**, one process per *kubelet group*: it keeps the group's nodes Ready (node
  leases of ``lease_s``) and walks their pods through their lifecycle (no containers:
  the stages in ``chaosrec/data/kwok-stages.yaml``, where a pod's start-up takes the
  duration its ``chaosrec.io/startup-delay`` annotation says). The default group manages
  every node without a ``chaosrec.io/kubelets`` label; :meth:`LocalCluster.add_kubelets`
  starts another for the nodes labelled ``chaosrec.io/kubelets=<group>``, so a drill can
  kill one zone's kubelets (a real signal to a real process) and see the control plane
  react as it does to dead nodes.

Ready means: ``/readyz`` answers ok, the ``default`` service account exists, and the
initial nodes are Ready. :meth:`LocalCluster.stop` stops everything (newest first) and
removes the run folder unless asked to keep it.

Example::

    with LocalCluster(ensure_kubernetes(), run_dir, nodes=3) as cluster:
        print(cluster.kubeconfig)            # kubectl --kubeconfig <it> get nodes
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import ssl
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, Self

import httpx
import yaml

from chaosrec.adapters.kubernetes.pki import CertPair, Pki
from chaosrec.adapters.ports import free_port
from chaosrec.adapters.process.manager import ManagedProcess
from chaosrec.errors import ConfigError, ProcessStartError

__all__ = [
    "ETCD_TMPFS",
    "KUBELETS_LABEL",
    "STARTUP_ANNOTATION",
    "Binaries",
    "ClusterSettings",
    "LocalCluster",
    "kubeconfig_yaml",
    "node_manifest",
]

#: Where etcd keeps its data when it can (tmpfs); sweep it with ``sweep_scratch(ETCD_TMPFS)``.
ETCD_TMPFS = Path("/dev/shm")
#: Nodes with this label are played by the kwok process of that kubelet group.
KUBELETS_LABEL = "chaosrec.io/kubelets"
#: How long a pod takes from bound to Ready (image pull + model load; a Go duration, "3s").
STARTUP_ANNOTATION = "chaosrec.io/startup-delay"


class Binaries(Protocol):
    """The five programs (see :class:`chaosrec.adapters.tools.kubernetes.KubernetesBinaries`)."""

    @property
    def etcd(self) -> Path: ...
    @property
    def kube_apiserver(self) -> Path: ...
    @property
    def kube_controller_manager(self) -> Path: ...
    @property
    def kube_scheduler(self) -> Path: ...
    @property
    def kwok(self) -> Path | None: ...


@dataclass(frozen=True)
class ClusterSettings:
    """Timings of the control plane, Kubernetes' defaults unless said otherwise.

    :param lease_s: kwok's node lease duration (renewed every quarter of it). With the
        bare default of 0 kwok renews no lease and every node goes NotReady after the
        grace period.
    :param node_monitor_grace_s: how long a node may miss heartbeats before the node
        controller marks it NotReady (Unknown) and taints it.
    :param eviction_rate: nodes per second the node controller taints ``NoExecute`` in a
        zone that is wholly down (Kubernetes' ``--node-eviction-rate``).
    :param not_ready_toleration_s: the default ``tolerationSeconds`` for the not-ready
        and unreachable taints given to pods that declare none (Kubernetes: 300).
    """

    lease_s: int = 40
    node_monitor_grace_s: int = 40
    eviction_rate: float = 0.1
    not_ready_toleration_s: int = 300
    api_qps: int = 100
    start_timeout_s: float = 120.0


def node_manifest(
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    capacity: Mapping[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A Node object for kwok to play: its status (capacity, allocatable) is set at
    creation, as the API server allows for nodes. Default capacity: 32 CPUs, 256 GiB, 110
    pods."""
    cap = {"cpu": "32", "memory": "256Gi", "pods": "110", **(capacity or {})}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                **(labels or {}),
            },
            "annotations": {"kwok.x-k8s.io/node": "fake"},
        },
        "spec": {"taints": list(taints or [])},
        "status": {"capacity": dict(cap), "allocatable": dict(cap)},
    }


def kubeconfig_yaml(server: str, ca: Path, client: CertPair, *, name: str = "chaosrec") -> str:
    """A kubeconfig with everything embedded (it works wherever it is copied)."""

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    data = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority-data": b64(ca)}}
        ],
        "users": [
            {
                "name": name,
                "user": {
                    "client-certificate-data": b64(client.cert),
                    "client-key-data": b64(client.key),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    return yaml.safe_dump(data, sort_keys=False)


@dataclass
class _Kubelets:
    group: str
    process: ManagedProcess


@dataclass
class LocalCluster:
    """A local control plane; see the module docs. ``nodes``: default-group nodes made at
    start (``kwok-node-<i>``); ``node_labels``/``node_capacity`` apply to them."""

    binaries: Binaries
    run_dir: Path
    nodes: int = 3
    node_labels: Mapping[str, str] = field(default_factory=dict)
    node_capacity: Mapping[str, str] = field(default_factory=dict)
    settings: ClusterSettings = field(default_factory=ClusterSettings)
    name: str = "chaosrec"
    etcd_dir: Path | None = None  # default: a folder in /dev/shm, else in run_dir

    def __post_init__(self) -> None:
        if isinstance(self.nodes, bool) or not isinstance(self.nodes, int) or self.nodes < 0:
            raise ConfigError(f"nodes={self.nodes!r} must be an integer >= 0")
        self.run_dir = Path(self.run_dir)
        self.pki: Pki | None = None
        self.api_port = 0
        self.processes: dict[str, ManagedProcess] = {}
        self.kubelets: dict[str, _Kubelets] = {}
        self.startup_s: float | None = None
        self._http: httpx.Client | None = None
        self._etcd_data: Path | None = None

    # -- paths and URLs -----------------------------------------------------------------

    @property
    def server_url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        """The cluster-admin kubeconfig (``system:masters``)."""
        return self.run_dir / "kubeconfig"

    def _log(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        """Start every process and wait until the cluster is ready; on failure, stop what
        was started and raise.

        Raises:
            ProcessStartError: a component exited or was not ready in time (its log tail
                is noted).
        """
        started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop(keep_files=True)
            raise
        self.startup_s = time.monotonic() - started
        return self

    def _start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        pki = self.pki = Pki.create(self.run_dir / "pki")
        self._http = httpx.Client(verify=tls_context(pki.ca.cert, pki.admin), timeout=5)
        etcd_port, peer_port = free_port(), free_port()
        self.api_port = free_port()
        self._etcd_data = self._etcd_folder()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        etcd = self._process(
            "etcd",
            [
                self.binaries.etcd,
                "--name",
                self.name,
                "--data-dir",
                self._etcd_data,
                "--listen-client-urls",
                etcd_url,
                "--advertise-client-urls",
                etcd_url,
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-cluster",
                f"{self.name}=http://127.0.0.1:{peer_port}",
                "--listen-metrics-urls",
                "",
                "--log-level",
                "warn",
                "--quota-backend-bytes",
                str(2 * 1024**3),
            ],
            ready=lambda: _get(f"{etcd_url}/health").json().get("health") == "true",
            env={"ETCD_UNSUPPORTED_ARCH": "", "PATH": os.environ.get("PATH", "")},
        )
        etcd.wait_ready()
        kubeconfig = self.kubeconfig
        kubeconfig.write_text(kubeconfig_yaml(self.server_url, pki.ca.cert, pki.admin))
        kubeconfig.chmod(0o600)
        s = self.settings
        apiserver = self._process(
            "kube-apiserver",
            [
                self.binaries.kube_apiserver,
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.api_port}",
                f"--etcd-servers={etcd_url}",
                f"--tls-cert-file={pki.apiserver.cert}",
                f"--tls-private-key-file={pki.apiserver.key}",
                f"--client-ca-file={pki.ca.cert}",
                f"--service-account-key-file={pki.service_account_pub}",
                f"--service-account-signing-key-file={pki.service_account_key}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--authorization-mode=Node,RBAC",
                # configuration only: no proxy runs, nothing is ever sent to this range
                "--service-cluster-ip-range=10.96.0.0/16",
                f"--requestheader-client-ca-file={pki.front_proxy_ca.cert}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-username-headers=X-Remote-User",
                f"--proxy-client-cert-file={pki.front_proxy_client.cert}",
                f"--proxy-client-key-file={pki.front_proxy_client.key}",
                f"--default-not-ready-toleration-seconds={s.not_ready_toleration_s}",
                f"--default-unreachable-toleration-seconds={s.not_ready_toleration_s}",
                "--profiling=false",
                "--v=1",
            ],
            ready=lambda: self._readyz(),
        )
        apiserver.wait_ready(s.start_timeout_s)
        cm_config = self._component_kubeconfig("kube-controller-manager", pki.controller_manager)
        sched_config = self._component_kubeconfig("kube-scheduler", pki.scheduler)
        controller_manager = self._process(
            "kube-controller-manager",
            [
                self.binaries.kube_controller_manager,
                f"--kubeconfig={cm_config}",
                f"--authentication-kubeconfig={cm_config}",
                f"--authorization-kubeconfig={cm_config}",
                "--use-service-account-credentials",
                f"--service-account-private-key-file={pki.service_account_key}",
                f"--root-ca-file={pki.ca.cert}",
                f"--cluster-signing-cert-file={pki.ca.cert}",
                f"--cluster-signing-key-file={pki.ca.key}",
                f"--kube-api-qps={s.api_qps}",
                f"--kube-api-burst={2 * s.api_qps}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                f"--node-monitor-grace-period={s.node_monitor_grace_s}s",
                f"--node-eviction-rate={s.eviction_rate}",
                "--profiling=false",
                "--v=1",
            ],
            ready=self._default_service_account,
        )
        scheduler = self._process(
            "kube-scheduler",
            [
                self.binaries.kube_scheduler,
                f"--kubeconfig={sched_config}",
                f"--authentication-kubeconfig={sched_config}",
                f"--authorization-kubeconfig={sched_config}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                f"--kube-api-qps={s.api_qps}",
                f"--kube-api-burst={2 * s.api_qps}",
                "--profiling=false",
                "--v=1",
            ],
        )
        self.add_kubelets("default")
        for i in range(self.nodes):
            self.create_node(
                node_manifest(
                    f"kwok-node-{i}", labels=self.node_labels, capacity=self.node_capacity
                )
            )
        controller_manager.wait_ready(s.start_timeout_s)
        scheduler.wait_ready(s.start_timeout_s)
        self.wait_nodes_ready([f"kwok-node-{i}" for i in range(self.nodes)], s.start_timeout_s)

    def add_kubelets(self, group: str) -> ManagedProcess:
        """Start (or restart) the kwok process playing the kubelets of ``group``: every node
        labelled ``chaosrec.io/kubelets=<group>`` (``"default"``: every node without that
        label). Returns the process; it is ready once it runs (kwok has no readiness
        endpoint worth the port: the nodes going Ready is the proof)."""
        if not group.replace("-", "").replace(".", "").isalnum():
            raise ConfigError(f"group={group!r}: use letters, digits, '-' and '.'")
        existing = self.kubelets.get(group)
        if existing is not None:  # restart after kill_kubelets (start() reaps the old run)
            return existing.process.start()
        assert self.pki is not None, "start() first"
        process = self._process(f"{self.kubelets_kind}[{group}]", self._kubelets_argv(group))
        self.kubelets[group] = _Kubelets(group, process)
        return process

    @property
    def kubelets_kind(self) -> str:
        """``"kwok"``, or ``"simulated-kubelets"`` when no kwok binary was found (then
        :mod:`chaosrec.adapters.kubernetes.kubelets` plays them)."""
        return "kwok" if self.binaries.kwok is not None else "simulated-kubelets"

    def _kubelets_argv(self, group: str) -> list[Any]:
        assert self.pki is not None
        selector = f"!{KUBELETS_LABEL}" if group == "default" else f"{KUBELETS_LABEL}={group}"
        if self.binaries.kwok is None:
            return [
                sys.executable, "-m", "chaosrec.adapters.kubernetes.kubelets",
                "--server", self.server_url, "--ca", self.pki.ca.cert,
                "--cert", self.pki.kwok.cert, "--key", self.pki.kwok.key,
                "--group", group, "--lease-s", self.settings.lease_s,
            ]  # fmt: skip
        config = self._component_kubeconfig("kwok", self.pki.kwok)
        stages = self.run_dir / "kwok-stages.yaml"
        if not stages.exists():
            text = resources.files("chaosrec").joinpath("data/kwok-stages.yaml").read_text()
            stages.write_text(text, encoding="utf-8")
        return [
            self.binaries.kwok, f"--kubeconfig={config}", f"--config={stages}",
            "--manage-all-nodes=false", f"--manage-nodes-with-label-selector={selector}",
            f"--node-lease-duration-seconds={self.settings.lease_s}",
            "--cidr=10.244.0.0/16", "--node-ip=10.0.0.1",
        ]  # fmt: skip

    def kill_kubelets(self, group: str, signum: int = signal.SIGKILL) -> None:
        """Send ``signum`` to the kwok process of ``group``: its nodes stop heartbeating
        and their pods stop changing, as when a zone's kubelets die. :meth:`add_kubelets`
        brings them back."""
        kubelets = self.kubelets.get(group)
        if kubelets is None:
            raise ConfigError(f"no kubelet group {group!r}; known: {sorted(self.kubelets)}")
        kubelets.process.kill_group(signum)
        kubelets.process.wait(10)

    def remove_kubelets(self, group: str) -> None:
        """Stop the kubelet group's process for good (its nodes, if any are left, go
        NotReady)."""
        kubelets = self.kubelets.pop(group, None)
        if kubelets is not None:
            kubelets.process.stop()
            self.processes.pop(kubelets.process.name, None)

    def stop(self, *, keep_files: bool = False) -> None:
        """Stop every process (kwok, scheduler, controllers, API server, etcd), then remove
        the run folder and etcd's data unless ``keep_files``. Idempotent."""
        for name in reversed(list(self.processes)):
            self.processes[name].stop(grace_s=5)
        if self._http is not None:
            self._http.close()
            self._http = None
        if not keep_files:
            if self._etcd_data is not None:
                shutil.rmtree(self._etcd_data, ignore_errors=True)
            shutil.rmtree(self.run_dir, ignore_errors=True)

    # -- state ----------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """What is running: each process's pid, whether it is alive and its resident memory
        (MiB), and the kubeconfig; for ``chaosrec cluster status`` and the state file."""
        return {
            "server": self.server_url,
            "kubeconfig": str(self.kubeconfig),
            "run_dir": str(self.run_dir),
            "startup_s": None if self.startup_s is None else round(self.startup_s, 2),
            "processes": [
                {
                    "name": name,
                    "pid": proc.pid,
                    "alive": proc.alive,
                    "rss_mib": rss_mib(proc.pid) if proc.alive and proc.pid else None,
                    "identity": proc.identity.to_dict() if proc.identity else None,
                }
                for name, proc in self.processes.items()
            ],
        }

    # -- API helpers (cluster-admin, for set-up only) -------------------------------------

    def request(self, method: str, path: str, body: object = None) -> httpx.Response:
        """One call to the API server as cluster-admin (for set-up and checks)."""
        if self._http is None:
            raise ProcessStartError("the cluster is not running; start() it first")
        content = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return self._http.request(
            method, f"{self.server_url}{path}", content=content, headers=headers
        )

    def create_node(self, manifest: dict[str, Any]) -> None:
        """Create a node (see :func:`node_manifest`); an existing one is left as is."""
        response = self.request("POST", "/api/v1/nodes", manifest)
        if response.status_code not in (201, 409):
            raise ProcessStartError(
                f"creating node {manifest['metadata']['name']} failed: {response.status_code} "
                f"{response.text[:300]}"
            )

    def wait_nodes_ready(self, names: list[str], timeout_s: float = 60.0) -> float:
        """Wait until every node in ``names`` reports Ready; seconds waited."""
        started = time.monotonic()
        pending = set(names)
        while pending:
            items = self.request("GET", "/api/v1/nodes").json().get("items", [])
            pending -= {n["metadata"]["name"] for n in items if _node_ready(n)}
            if not pending:
                break
            if time.monotonic() - started > timeout_s:
                raise ProcessStartError(
                    f"nodes {sorted(pending)} not Ready after {timeout_s:g} s; see kwok's log "
                    f"{self._log('kwok-default')}"
                )
            time.sleep(0.1)
        return time.monotonic() - started

    def user_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for Kubernetes user ``user`` in ``groups`` (a client certificate
        signed by the cluster's CA): what RBAC allows that user is all it can do."""
        assert self.pki is not None, "start() first"
        pair = self.pki.client(user, groups)
        safe = pair.cert.stem.removeprefix("user-")
        path = self.run_dir / f"kubeconfig-{safe}"
        path.write_text(kubeconfig_yaml(self.server_url, self.pki.ca.cert, pair))
        path.chmod(0o600)
        return path

    # -- internals ------------------------------------------------------------------------

    def _etcd_folder(self) -> Path:
        if self.etcd_dir is not None:
            return self.etcd_dir
        if ETCD_TMPFS.is_dir() and os.access(ETCD_TMPFS, os.W_OK):
            # the run folder's name, so the scratch sweep of ETCD_TMPFS knows its owner
            folder = ETCD_TMPFS / self.run_dir.name
        else:
            folder = self.run_dir / "etcd"
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        return folder

    def _process(
        self,
        name: str,
        argv: list[Any],
        *,
        ready: Callable[[], bool] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ManagedProcess:
        log_name = name.replace("[", "-").replace("]", "")
        process = ManagedProcess(
            name,
            [str(a) for a in argv],
            log_path=self._log(log_name),
            ready_check=ready,
            env=env,
            ready_timeout_s=self.settings.start_timeout_s,
            poll_s=0.05,
            stop_grace_s=5.0,
        )
        self.processes[name] = process
        return process.start()

    def _component_kubeconfig(self, name: str, pair: CertPair) -> Path:
        assert self.pki is not None
        path = self.run_dir / f"{name}.kubeconfig"
        if not path.exists():
            path.write_text(kubeconfig_yaml(self.server_url, self.pki.ca.cert, pair))
            path.chmod(0o600)
        return path

    def _readyz(self) -> bool:
        return self.request("GET", "/readyz").text.strip() == "ok"

    def _default_service_account(self) -> bool:
        path = "/api/v1/namespaces/default/serviceaccounts/default"
        return self.request("GET", path).status_code == 200


def tls_context(ca: Path, client: CertPair) -> ssl.SSLContext:
    """A TLS context trusting ``ca`` and presenting ``client`` (httpx 0.28 ignores
    ``cert=`` when ``verify`` is a path, and the request goes out anonymous)."""
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(client.cert), str(client.key))
    return context


def _get(url: str) -> httpx.Response:
    from chaosrec.adapters import http

    return http.get(url, timeout=2)


def _node_ready(node: Mapping[str, Any]) -> bool:
    for condition in node.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def rss_mib(pid: int) -> float | None:
    """Resident memory of ``pid`` in MiB (Linux ``/proc``), None if it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        return None
    return None
