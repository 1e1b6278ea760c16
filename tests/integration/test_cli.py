"""`chaosrec stack up | status | down` as a user runs them, in a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration


def _chaosrec(
    *args: str, env: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaosrec", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def _alive(pid: int) -> bool:
    """Running and not a zombie (an exited child not yet reaped by its new parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_stack_up_status_down(tmp_path: Path) -> None:
    name = f"cli-test-{os.getpid()}"
    env = dict(os.environ)
    up = _chaosrec("stack", "up", "--name", name, "--topology", "quick", env=env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "ready in" in up.stdout
        status = _chaosrec("stack", "status", "--name", name, "--json", env=env)
        assert status.returncode == 0, status.stderr
        state = json.loads(status.stdout)
        pids = [state["gateway"]["pid"], state["toxiproxy"]["pid"], state["supervisor_pid"]]
        pids += [r["pid"] for r in state["replicas"]]
        assert all(_alive(p) for p in pids)
        resp = httpx.get(f"{state['gateway']['url']}/recommend", params={"user_id": 5}, timeout=5)
        assert resp.status_code == 200 and not resp.json()["degraded"]
        table = _chaosrec("stack", "status", "--name", name, env=env)
        assert "triton region-a.r0" in table.stdout and "toxiproxy 2." in table.stdout
    finally:
        down = _chaosrec("stack", "down", "--name", name, env=env)
    assert down.returncode == 0, down.stderr
    assert f"stack '{name}' stopped" in down.stdout
    assert not any(_alive(p) for p in pids), "a process outlived `chaosrec stack down`"
    after = _chaosrec("stack", "status", "--name", name, env=env)
    assert after.returncode == 3 and "is not running" in after.stdout
