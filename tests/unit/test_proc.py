"""Child-process launching: children die with their parent, restarts run at a lower
priority, renicing reaches every thread of a process tree, and failed restarts back
off."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaosrec.adapters.process.launch import child_launch, renice_tree

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc only")


def _nice_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])  # field 19, "nice"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(5)


def _launch(argv: list[str], spawned: list[Any], nice: int = 0) -> subprocess.Popen[bytes]:
    command, preexec = child_launch(argv, nice=nice)
    proc = subprocess.Popen(command, preexec_fn=preexec, start_new_session=True)
    spawned.append(proc)
    return proc


def test_launched_child_runs_nice_steps_lower(spawned: list[Any], wait_for: Any) -> None:
    own = os.getpriority(os.PRIO_PROCESS, 0)
    proc = _launch(["sleep", "30"], spawned, nice=7)
    # the wrapper execs into sleep under the same pid
    wait_for(lambda: Path(f"/proc/{proc.pid}/comm").read_text().strip() == "sleep", 5, "exec")
    assert _nice_of(proc.pid) == min(own + 7, 19)


def test_launched_child_dies_when_its_parent_is_killed(tmp_path: Path, wait_for: Any) -> None:
    script = textwrap.dedent(
        """
        import subprocess, sys, time
        from chaosrec.adapters.process.launch import child_launch
        argv, preexec = child_launch(["sleep", "60"])
        child = subprocess.Popen(argv, preexec_fn=preexec, start_new_session=True)
        print(child.pid, flush=True)
        time.sleep(60)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None
            child_pid = int(parent.stdout.readline())
            assert _alive(child_pid)
            # setpriv arms the death signal just before it execs the command: killing
            # the parent inside that window (milliseconds) would leave the child alone
            wait_for(
                lambda: Path(f"/proc/{child_pid}/comm").read_text().strip() == "sleep",
                5,
                "setpriv to exec the child",
            )
            parent.kill()  # SIGKILL: no finally block or atexit handler runs in the parent
            parent.wait(5)
            wait_for(lambda: not _alive(child_pid), 5, f"child {child_pid} to die with its parent")
        finally:
            if parent.poll() is None:
                parent.kill()


def test_renice_tree_reaches_every_thread_and_child(
    spawned: list[Any], wait_for: Any, tree_nices: Any
) -> None:
    own = os.getpriority(os.PRIO_PROCESS, 0)
    # a parent with a child, both 5 steps lower
    proc = _launch(["sh", "-c", "sleep 30 & sleep 30; wait"], spawned, nice=5)
    wait_for(lambda: len(tree_nices(proc.pid)) >= 3, 5, "the shell to start both sleeps")
    assert set(tree_nices(proc.pid)) == {min(own + 5, 19)}
    raised = renice_tree(proc.pid, own)
    if os.geteuid() == 0:
        assert raised
        assert set(tree_nices(proc.pid)) == {own}
    else:  # raising a priority back needs CAP_SYS_NICE: reported, tree left alone
        assert not raised
        assert set(tree_nices(proc.pid)) == {min(own + 5, 19)}


def test_renice_tree_of_a_missing_process_is_false() -> None:
    assert renice_tree(2**22 + 12345, 0) is False


def test_restart_backoff_doubles_up_to_its_cap() -> None:
    from chaosrec.stack.stack import restart_backoff_s

    assert [restart_backoff_s(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert restart_backoff_s(0) == 0.5
