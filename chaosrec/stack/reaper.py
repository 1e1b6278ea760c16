"""Clean up after runs that died without tearing down (SIGKILL, OOM, a killed CI job).

Our own children die with us (``PR_SET_PDEATHSIG``), but Triton's Python-backend
stubs are *Triton's* children: when Triton is killed they are orphaned (their
parent becomes PID 1) and keep running. Before a stack starts, the reaper kills
orphaned stubs that run chaosrec's backend, and removes shared-memory regions
left by chaosrec Tritons whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from pathlib import Path

__all__ = ["reap_orphans"]

_SHM_RE = re.compile(r"^chaosrec(\d+)_")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def reap_orphans(backend_dir: Path) -> list[int]:
    """Kill orphaned Python-backend stubs of ``backend_dir``; returns their pids."""
    killed: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return killed
    marker = str(backend_dir)
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        fields = _stat_fields(pid)
        if fields is None or fields[1] != "1":  # only orphans (re-parented to init)
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith(marker) and cmdline.endswith("triton_python_backend_stub"):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
    shm = Path("/dev/shm")
    if shm.is_dir():
        for region in shm.iterdir():
            match = _SHM_RE.match(region.name)
            if match and not _alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    region.unlink()
    return killed
