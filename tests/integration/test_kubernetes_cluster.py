"""``chaosrec cluster up | status | down`` from the outside, as a user runs them: a kubeconfig
that kubectl (or the API) reads Ready nodes from, and no process left after ``down`` or
after the supervisor is killed (its folder swept by the next ``up``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaosrec.adapters.kubernetes.cluster import ETCD_TMPFS
from chaosrec.adapters.process.identity import ProcessIdentity
from chaosrec.core.paths import tools_dir

pytestmark = pytest.mark.kubernetes


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """``chaosrec ...`` in a child process with its own cache (the built tools shared);
    a cluster still up at the end is brought down."""
    env = {
        **os.environ,
        "CHAOSREC_CACHE_DIR": str(tmp_path / "cache"),
        "CHAOSREC_TOOLS_DIR": str(tools_dir()),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }

    def run(*args: str, timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "chaosrec", *args],
            env=env, capture_output=True, text=True, timeout=timeout_s, check=False,
        )  # fmt: skip

    yield run
    run("cluster", "down", "--name", "t")


def _state(cli: Callable[..., subprocess.CompletedProcess[str]]) -> dict[str, object]:
    status = cli("cluster", "status", "--name", "t", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    data: dict[str, object] = json.loads(status.stdout)
    return data


def _identities(state: dict[str, object]) -> list[ProcessIdentity]:
    out = [ProcessIdentity.from_dict(state["supervisor"])]  # type: ignore[arg-type]
    for process in state["processes"]:  # type: ignore[attr-defined]
        out.append(ProcessIdentity.from_dict(process["identity"]))
    return [i for i in out if i is not None]


def test_up_prints_a_kubeconfig_with_ready_nodes_and_down_leaves_no_process(
    cli: Callable[..., subprocess.CompletedProcess[str]],
    wait_for: Callable[[Callable[[], bool], float, str], float],
) -> None:
    up = cli("cluster", "up", "--name", "t", "--nodes", "2")
    assert up.returncode == 0, up.stdout + up.stderr
    match = re.search(r"^kubeconfig: (\S+)$", up.stdout, re.MULTILINE)
    assert match, up.stdout
    kubeconfig = Path(match.group(1))
    state = _state(cli)
    names = [p["name"] for p in state["processes"]]  # type: ignore[attr-defined]
    assert names[:4] == ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]
    identities = _identities(state)
    assert len(identities) == 6 and all(i.is_running() for i in identities)
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        nodes = subprocess.run(
            [kubectl, "--kubeconfig", str(kubeconfig), "get", "nodes", "--no-headers"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert nodes.returncode == 0, nodes.stderr
        assert [line.split()[1] for line in nodes.stdout.splitlines()] == ["Ready", "Ready"]
    else:  # the same question through the API
        from chaosrec.adapters.kubernetes.api import KubeAPI

        api = KubeAPI.from_kubeconfig(kubeconfig)
        assert api.nodes_ready() == (2, 2)
        api.close()
    down = cli("cluster", "down", "--name", "t")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not any(i.is_running() for i in identities)
    assert not kubeconfig.exists()
    assert cli("cluster", "status", "--name", "t").returncode == 3


def test_a_killed_supervisor_takes_its_processes_along_and_its_folder_is_swept(
    cli: Callable[..., subprocess.CompletedProcess[str]],
    wait_for: Callable[[Callable[[], bool], float, str], float],
) -> None:
    assert cli("cluster", "up", "--name", "t", "--nodes", "1").returncode == 0
    state = _state(cli)
    identities = _identities(state)
    run_dir = Path(str(state["run_dir"]))
    etcd_data = ETCD_TMPFS / run_dir.name
    assert etcd_data.is_dir()
    os.kill(identities[0].pid, signal.SIGKILL)  # the supervisor: no teardown runs
    wait_for(lambda: not any(i.is_running() for i in identities), 30, "every process gone")
    assert run_dir.exists()  # nobody cleaned up ...
    assert cli("cluster", "up", "--name", "t", "--nodes", "1").returncode == 0
    assert not run_dir.exists()  # ... until the next start swept it
    assert not etcd_data.exists()
