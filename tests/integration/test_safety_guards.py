"""What stops chaosrec from acting on the wrong system or leaving things behind: the target
guard, pid identity checks before any signal, and scratch folders of killed sessions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from chaosrec.adapters.process.identity import ProcessIdentity, pid_alive

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _pytest(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s", *args, str(project)],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _project(tmp_path: Path, name: str, body: str) -> Path:
    project = tmp_path / name
    project.mkdir()
    (project / f"test_{name}.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return project


# -- the target guard ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "where"),
    [
        (["--chaosrec-toxiproxy-url=http://10.255.255.1:8474"], {}, "--chaosrec-toxiproxy-url"),
        ([], {"TARGET_FILE": "1"}, "gateway_url"),
    ],
    ids=["toxiproxy-option", "target-file"],
)
def test_a_remote_target_is_refused_before_any_test_runs(
    tmp_path: Path, args: list[str], env: dict[str, str], where: str
) -> None:
    project = _project(tmp_path, "remote", "def test_x(chaos):\n    raise AssertionError('ran')\n")
    if env:
        target = project / "target.yaml"
        target.write_text("gateway_url: http://recsys.staging.example:8080\n")
        args = [f"--chaosrec-target={target}"]
    out, _ = _pytest(project, *args).communicate(timeout=120)
    assert "ran" not in out
    assert where in out and "is not loopback and not in the allowed hosts" in out, out[-2000:]
    assert "--chaosrec-allow-hosts" in out


@pytest.mark.parametrize("how", ["option", "env"])
def test_an_allowed_remote_host_gets_past_the_guard(tmp_path: Path, how: str) -> None:
    # no test touches the target: the guard's decision is all that is checked (no traffic
    # ever leaves loopback in this suite)
    project = _project(tmp_path, "allowed", "def test_x():\n    pass\n")
    target = project / "target.yaml"
    target.write_text("gateway_url: http://recsys.staging.example:8080\n")
    args = [f"--chaosrec-target={target}"]
    env: dict[str, str] = {}
    if how == "option":
        args.append("--chaosrec-allow-hosts=*.staging.example")
    else:
        env["CHAOSREC_ALLOW_HOSTS"] = "recsys.staging.example, other.example"
    out, _ = _pytest(project, *args, env=env).communicate(timeout=120)
    assert "1 passed" in out, out[-2000:]


def test_the_targets_are_announced_once_before_the_first_fault(tmp_path: Path) -> None:
    body = """
    def test_a(chaos, toxiproxy):
        toxiproxy.proxy("announce-a", upstream="127.0.0.1:9")
        with chaos.latency("announce-a", ms=1):
            pass

    def test_b(chaos):
        pass
    """
    out, _ = _pytest(_project(tmp_path, "announce", body)).communicate(timeout=120)
    assert "2 passed" in out, out[-2000:]
    lines = [line for line in out.splitlines() if "chaosrec: faults act on Toxiproxy" in line]
    assert len(lines) == 1 and "(allowed hosts: loopback only)" in lines[0]


# -- pids are checked before any signal -------------------------------------------------------


def test_stack_down_never_signals_a_process_a_stale_state_file_names(
    tmp_path: Path, wait_for: Callable[..., float]
) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        cache = tmp_path / "cache"
        state_dir = cache / "stacks" / "default"
        state_dir.mkdir(parents=True)
        me = ProcessIdentity.of(bystander.pid)
        assert me is not None
        state = {"status": "ready", "name": "default", "supervisor_pid": bystander.pid,
                 "supervisor": me.to_dict()}  # fmt: skip
        (state_dir / "state.json").write_text(json.dumps(state))
        down = subprocess.run(
            [sys.executable, "-m", "chaosrec", "stack", "down"],
            env={**os.environ, "CHAOSREC_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert down.returncode == 0, down.stderr
        assert "is not running (stale state file" in down.stdout
        assert pid_alive(bystander.pid)  # the old code SIGTERMed it
    finally:
        bystander.kill()
        bystander.wait()


# -- scratch folders ---------------------------------------------------------------------------

HOLD_SCRATCH = """
import os, pathlib, time

def test_hold(toxiproxy):
    pathlib.Path(os.environ["READY_FILE"]).write_text("up")
    time.sleep(120)
"""


def _scratch(tmp: Path) -> list[Path]:
    return sorted(p for p in tmp.iterdir() if p.name.startswith("chaosrec-toxiproxy-"))


def test_scratch_folders_are_removed_and_a_killed_sessions_are_swept(
    tmp_path: Path, wait_for: Callable[..., float]
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    project = _project(tmp_path, "clean", "def test_x(toxiproxy):\n    pass\n")
    out, _ = _pytest(project, env={"TMPDIR": str(tmp)}).communicate(timeout=120)
    assert "1 passed" in out, out[-2000:]
    assert _scratch(tmp) == []  # a clean run leaves nothing behind
    ready = tmp_path / "ready"
    holder = _pytest(
        _project(tmp_path, "hold", HOLD_SCRATCH), env={"TMPDIR": str(tmp), "READY_FILE": str(ready)}
    )
    wait_for(ready.exists, 120, "the session to start its Toxiproxy")
    (left,) = _scratch(tmp)
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=30)
    assert left.is_dir()
    out, _ = _pytest(project, env={"TMPDIR": str(tmp)}).communicate(timeout=120)
    assert "1 passed" in out, out[-2000:]
    assert f"chaosrec: removed {left}, left by a session that was killed" in out
    assert _scratch(tmp) == []
