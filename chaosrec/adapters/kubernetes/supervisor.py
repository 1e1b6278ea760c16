"""``chaosrec cluster up | down | status``: a local cluster that outlives the command.

``up`` starts ``chaosrec cluster serve`` detached (a supervisor: the one process whose
children the control plane's processes are, so they die with it) and waits for its
state file to say ``ready``; ``serve`` runs :class:`~.cluster.LocalCluster` until SIGTERM
or SIGINT and then stops it; ``down`` signals the supervisor named by the state file,
after checking it still *is* that supervisor (same pid, start time and command line),
and waits until every process the state file lists is gone.

State: ``<cache>/clusters/<name>/state.json``. The run folder (certificates, kubeconfig,
logs) is named after the supervisor, so when a supervisor is killed with SIGKILL its
processes die with it (``PR_SET_PDEATHSIG``), the ledger sweeps any that did not, and
the scratch sweep removes its folder at the next start.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from chaosrec.adapters.kubernetes.cluster import ETCD_TMPFS, Binaries, LocalCluster
from chaosrec.adapters.process.identity import ProcessIdentity
from chaosrec.adapters.process.ledger import sweep_once
from chaosrec.adapters.process.manager import ManagedProcess
from chaosrec.adapters.process.scratch import scratch_dir, sweep_scratch
from chaosrec.core.paths import cache_dir
from chaosrec.errors import ProcessStartError

__all__ = ["clusters_dir", "read_state", "serve", "start_detached", "stop", "supervisor"]


def clusters_dir() -> Path:
    """Parent of the state folders of clusters started with ``chaosrec cluster up``."""
    return cache_dir() / "clusters"


def _state_path(name: str) -> Path:
    return clusters_dir() / name / "state.json"


def read_state(name: str) -> dict[str, Any] | None:
    """The state file of cluster ``name`` (None if missing or unreadable)."""
    try:
        data: dict[str, Any] = json.loads(_state_path(name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def _write_state(cluster: str, **state: Any) -> None:
    path = _state_path(cluster)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
    tmp.replace(path)


def supervisor(state: dict[str, Any] | None) -> ProcessIdentity | None:
    """The supervisor the state names, if that process is still it (else None: a stale
    file never leads to a signal)."""
    if not state:
        return None
    identity = ProcessIdentity.from_dict(state.get("supervisor") or {})
    name = str(state.get("name", ""))
    if identity is None or not identity.is_running_command("cluster", "serve", f"--name {name}"):
        return None
    return identity


def serve(binaries: Binaries, name: str, *, nodes: int) -> int:
    """Run cluster ``name`` in the foreground until SIGTERM or SIGINT (``chaosrec cluster
    serve``); the state file follows it. Returns the exit code."""
    stop_now = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop_now.set())
    sweep_once()
    sweep_scratch()
    sweep_scratch(ETCD_TMPFS)
    me = ProcessIdentity.current().to_dict()
    cluster = LocalCluster(binaries, scratch_dir("cluster"), nodes=nodes, name=name)
    base = {"name": name, "supervisor": me, "supervisor_pid": os.getpid()}
    _write_state(name, status="starting", **base)
    try:
        cluster.start()
    except Exception as err:  # noqa: BLE001 - any failure is reported through the state
        notes = getattr(err, "__notes__", [])
        _write_state(name, status="failed", error=str(err), notes=notes, **base)
        print(f"chaosrec: {err}", file=sys.stderr)
        return 1
    try:
        while not stop_now.is_set():
            _write_state(name, status="ready", kubelets=cluster.kubelets_kind, **base,
                         **cluster.describe())  # fmt: skip
            stop_now.wait(2.0)
    finally:
        _write_state(name, status="stopping", **base)
        cluster.stop()
        _write_state(name, status="stopped", **base)
    return 0


def start_detached(name: str, *, nodes: int, timeout_s: float) -> dict[str, Any]:
    """Start ``chaosrec cluster serve`` in the background and wait until it is ready; its
    state. An already-running cluster of that name is returned as is.

    Raises:
        ProcessStartError: it failed or was not ready in time (the message says why and
            where its log is).
    """
    state = read_state(name)
    if state and state.get("status") == "ready" and supervisor(state) is not None:
        return state
    folder = _state_path(name).parent
    folder.mkdir(parents=True, exist_ok=True)
    _state_path(name).unlink(missing_ok=True)
    command = [sys.executable, "-m", "chaosrec", "cluster", "serve", "--name", name,
               "--nodes", str(nodes)]  # fmt: skip
    log = folder / "serve.log"
    process = ManagedProcess(f"cluster {name!r} supervisor", command, log_path=log, detached=True)
    process.start()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = read_state(name)
        status = (state or {}).get("status")
        if state is not None and status == "ready":
            return state
        if state is not None and status == "failed":
            process.wait(10)
            error = ProcessStartError(f"cluster {name!r} failed to start: {state.get('error')}")
            for note in state.get("notes", []):
                error.add_note(note)
            raise error
        if not process.alive:
            raise ProcessStartError(
                f"the cluster supervisor exited with code {process.returncode}; see {log}"
            )
        time.sleep(0.1)
    process.stop(grace_s=15)
    raise ProcessStartError(f"cluster {name!r} was not ready after {timeout_s:g} s; see {log}")


def stop(name: str, timeout_s: float = 30.0) -> list[str]:
    """Stop cluster ``name``; returns what was stopped (empty if it was not running).
    Waits until the supervisor and every process its state lists are gone."""
    state = read_state(name)
    identity = supervisor(state)
    if identity is None or state is None:
        return []
    children = [
        ident
        for p in state.get("processes", [])
        if (ident := ProcessIdentity.from_dict(p.get("identity") or {})) is not None
    ]
    os.kill(identity.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (
        identity.is_running() or any(c.is_running() for c in children)
    ):
        time.sleep(0.05)
        # reap it if it is our child (`up` and `down` in one process, as in tests)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(identity.pid, os.WNOHANG)
    if identity.is_running():
        os.killpg(identity.pid, signal.SIGKILL)  # its children follow (death signal)
    return ["supervisor", *(str(p.get("name")) for p in state.get("processes", []))]
