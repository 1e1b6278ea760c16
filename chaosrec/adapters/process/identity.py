"""Who a pid is: the check chaosrec makes before it signals any process it did not just reap.

A pid alone names nothing for long: once a process exits and is reaped, the kernel
hands its number to the next process. A state file or ledger that says "pid 4242
is our supervisor" is only true while 4242 is the *same* process, so chaosrec
records a :class:`ProcessIdentity` (pid, start time in clock ticks since boot, and
the command line) and compares all three before sending a signal. A stale file
then names a process that is gone, or an unrelated one with a different start
time, and nothing is signalled.

Linux ``/proc`` only; elsewhere identities cannot be read and every check says
"not the same process" (safe: nothing is signalled).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ProcessIdentity", "pid_alive", "process_group_members"]


def _stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (field 3 onwards)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _cmdline(pid: int) -> tuple[str, ...] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def pid_alive(pid: object) -> bool:
    """True for a running process; False for none, a dead one or an unreaped zombie."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as it was when recorded: pid, start time and command line.

    ``start_ticks`` is field 22 of ``/proc/<pid>/stat`` (clock ticks after boot):
    two processes that ever had the same pid never share it.
    """

    pid: int
    start_ticks: int
    cmdline: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity | None:
        """The identity of the running process ``pid`` (None if there is none)."""
        fields = _stat(pid)
        if fields is None or fields[0] == "Z":
            return None
        cmdline = _cmdline(pid) or ()
        return cls(pid, int(fields[19]), cmdline)

    @classmethod
    def current(cls) -> ProcessIdentity:
        """This process's identity (pid only, start 0, where /proc is missing)."""
        return cls.of(os.getpid()) or cls(os.getpid(), 0)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessIdentity | None:
        """Parse :meth:`to_dict`'s output; None when it is not a well-formed identity."""
        pid, start = data.get("pid"), data.get("start_ticks")
        cmdline = data.get("cmdline", [])
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            return None
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            return None
        if not isinstance(cmdline, list) or not all(isinstance(a, str) for a in cmdline):
            return None
        return cls(pid, start, tuple(cmdline))

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "start_ticks": self.start_ticks, "cmdline": list(self.cmdline)}

    def is_running(self) -> bool:
        """True if ``pid`` is still this process (same start time, not a zombie)."""
        now = ProcessIdentity.of(self.pid)
        return now is not None and now.start_ticks == self.start_ticks

    def is_running_command(self, *needles: str) -> bool:
        """:meth:`is_running`, and the command line still contains every ``needle``
        (a process that exec'd something else since is not the one recorded)."""
        now = ProcessIdentity.of(self.pid)
        if now is None or now.start_ticks != self.start_ticks:
            return False
        text = " ".join(now.cmdline)
        return all(needle in text for needle in needles)

    def describe(self) -> str:
        command = " ".join(self.cmdline)[:120] or "?"
        return f"pid {self.pid} ({command})"


def process_group_members(pgid: int, *, started_after: int = 0) -> list[int]:
    """Live processes whose process group is ``pgid`` and that started at or after
    ``started_after`` (clock ticks since boot). Linux ``/proc``; ``[]`` elsewhere."""
    members: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return members
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        # fields: [0] state, [1] ppid, [2] pgrp, ... [19] starttime
        if fields is None or fields[0] == "Z" or int(fields[2]) != pgid:
            continue
        if int(fields[19]) >= started_after:
            members.append(int(entry.name))
    return members
