"""Faults on a Toxiproxy server chaosrec did not start: owned, exclusive, never left behind.

The shared server is a second toxiproxy-server this module starts itself; each session
is a real child ``pytest`` process with ``--chaosrec-toxiproxy-url`` pointing at it,
killed with real signals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chaosrec.adapters.tools import ensure_toxiproxy
from chaosrec.adapters.toxiproxy import LEDGER_PREFIX, ToxiproxyClient, ToxiproxyServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

HOLD = """
import os, pathlib, time

def test_hold(chaos):
    chaos.latency("shared-a", ms=500)
    chaos.down("shared-b")
    pathlib.Path(os.environ["READY_FILE"]).write_text("injected")
    time.sleep(120)
"""

SWEEP = """
def test_start(toxiproxy):
    assert toxiproxy.client.version()
"""

BUSY = """
import pytest
from chaosrec.errors import TargetBusyError

def test_busy(chaos, toxiproxy):
    with pytest.raises(TargetBusyError, match="shared-b.*held by another live chaosrec session"):
        chaos.latency("shared-b", ms=100)
    assert not toxiproxy.client.proxy("shared-b").enabled      # the holder's fault stands
    assert toxiproxy.client.toxics("shared-b") == []            # and nothing of ours was added
    with chaos.latency("shared-c", ms=100):                     # a free proxy is fine
        assert len(toxiproxy.client.toxics("shared-c")) == 1
"""

ALL = """
import pytest
from chaosrec.errors import UnknownTargetError

def test_all_means_known_proxies(chaos, toxiproxy):
    with pytest.raises(UnknownTargetError, match="target 'all' means the proxies chaosrec knows"):
        chaos.down("all")
    mine = toxiproxy.proxy("mine-only", upstream="127.0.0.1:9")
    try:
        with chaos.down("all"):
            assert not toxiproxy.client.proxy(mine.name).enabled
            assert all(toxiproxy.client.proxy(n).enabled for n in ("shared-a", "shared-b"))
    finally:
        toxiproxy.client.delete_proxy(mine.name)
"""


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[ToxiproxyClient]:
    """A Toxiproxy server other teams could be using, with three proxies of theirs."""
    with ToxiproxyServer(ensure_toxiproxy(), tmp_path / "shared.log") as server:
        for name in ("shared-a", "shared-b", "shared-c"):
            server.client.create_proxy(name, "127.0.0.1:9")
        yield server.client


def _session(tmp_path: Path, name: str, body: str, url: str, **env: str) -> subprocess.Popen[str]:
    project = tmp_path / name
    project.mkdir()
    (project / f"test_{name}.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return subprocess.Popen(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s",
            f"--chaosrec-toxiproxy-url={url}", str(project),
        ],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def _holding(tmp_path: Path, shared: ToxiproxyClient, wait_for: Callable[..., float]) -> Any:
    ready = tmp_path / "ready"
    proc = _session(tmp_path, "hold", HOLD, shared.api_url, READY_FILE=str(ready))
    wait_for(lambda: ready.exists() or proc.poll() is not None, 120, "the faults to be injected")
    assert ready.exists(), proc.communicate()[0][-3000:]
    assert [t.type for t in shared.toxics("shared-a")] == ["latency"]
    assert not shared.proxy("shared-b").enabled
    return proc


def _ledger(client: ToxiproxyClient) -> list[str]:
    return sorted(n for n in client.proxies(include_ledger=True) if n.startswith(LEDGER_PREFIX))


def test_faults_of_a_killed_session_are_swept_by_the_next(
    tmp_path: Path, shared: ToxiproxyClient, wait_for: Callable[..., float]
) -> None:
    proc = _holding(tmp_path, shared, wait_for)
    proc.send_signal(signal.SIGKILL)  # nothing of the session runs after this
    proc.communicate(timeout=30)
    # the faults outlive the session: nobody else would remove them...
    assert [t.type for t in shared.toxics("shared-a")] == ["latency"]
    assert not shared.proxy("shared-b").enabled
    assert any("~claim~" in name for name in _ledger(shared))
    # ...until the next session starts on that server
    started = time.monotonic()
    out = _session(tmp_path, "sweep", SWEEP, shared.api_url).communicate(timeout=120)[0]
    assert "1 passed" in out, out[-3000:]
    assert "chaosrec: swept latency toxic on shared-a (left by dead session" in out
    assert "chaosrec: swept proxy shared-b down (left by dead session" in out
    assert shared.is_clean()
    assert _ledger(shared) == []  # the dead session's entries, and the sweeper's own
    print(f"killed session swept by the next in {time.monotonic() - started:.2f} s (with start)")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_terminated_session_rolls_its_faults_back_itself(
    tmp_path: Path, shared: ToxiproxyClient, wait_for: Callable[..., float], signum: int
) -> None:
    proc = _holding(tmp_path, shared, wait_for)
    sent = time.monotonic()
    proc.send_signal(signum)
    took = wait_for(shared.is_clean, 30, "the session to roll its faults back")
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 128 + signum, out[-3000:]
    assert f"{signal.Signals(signum).name} received" in out
    assert _ledger(shared) == []
    print(f"{signal.Signals(signum).name} to every fault rolled back: {took:.3f} s "
          f"(process exit {time.monotonic() - sent:.2f} s)")  # fmt: skip


def test_a_second_live_session_is_refused_and_undoes_nothing(
    tmp_path: Path, shared: ToxiproxyClient, wait_for: Callable[..., float]
) -> None:
    holder = _holding(tmp_path, shared, wait_for)
    try:
        out = _session(tmp_path, "busy", BUSY, shared.api_url).communicate(timeout=120)[0]
        assert "1 passed" in out, out[-3000:]
        # the second session ended; the first one's faults are untouched
        assert [t.type for t in shared.toxics("shared-a")] == ["latency"]
        assert not shared.proxy("shared-b").enabled
        assert shared.toxics("shared-c") == []
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.communicate(timeout=60)
    assert shared.is_clean()


def test_all_never_means_other_teams_proxies(tmp_path: Path, shared: ToxiproxyClient) -> None:
    out = _session(tmp_path, "all", ALL, shared.api_url).communicate(timeout=120)[0]
    assert "1 passed" in out, out[-3000:]
    assert shared.is_clean()
