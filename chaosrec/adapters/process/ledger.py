"""The process ledger: what every chaosrec session started, so the next one can sweep it.

Children chaosrec starts die with the session that started them (``PR_SET_PDEATHSIG``,
see :mod:`chaosrec.adapters.process.launch`), but that guarantee has gaps: the
death signal reaches only the direct child (a Triton's Python-backend stubs
survive it), and a session killed in the few milliseconds between spawning a child
and the child arming the signal leaves it running. So every child is also written
to a ledger (one small JSON file per child under ``<cache>/processes/``) with its
:class:`~chaosrec.adapters.process.identity.ProcessIdentity` and the identity of
the session that owns it, and removed when it is stopped.

:func:`sweep` (called when a session starts processes) finds entries whose owner
is no longer running and kills what is left of them: the child itself if it is
still the recorded process (same pid *and* start time), and the orphaned members
of its process group that started after it. A stale entry never leads to a signal
to an unrelated process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaosrec.adapters.process.identity import ProcessIdentity, process_group_members
from chaosrec.core.paths import cache_dir

__all__ = ["Swept", "forget", "ledger_dir", "record", "sweep", "sweep_once"]


def ledger_dir() -> Path:
    """``<chaosrec cache>/processes``: one ``<owner>-<child>.json`` per live child."""
    return cache_dir() / "processes"


@dataclass(frozen=True)
class Swept:
    """A process (or a group's leftovers) killed because its session was gone."""

    name: str
    pids: tuple[int, ...]
    owner_pid: int

    def describe(self) -> str:
        pids = ", ".join(str(p) for p in self.pids)
        return f"{self.name} (pid {pids}) left by dead session {self.owner_pid}"


_owner: ProcessIdentity | None = None


def _this_session() -> ProcessIdentity:
    global _owner
    if _owner is None or _owner.pid != os.getpid():  # recomputed after a fork
        _owner = ProcessIdentity.current()
    return _owner


def _entry_path(child: ProcessIdentity) -> Path:
    owner = _this_session()
    return ledger_dir() / f"{owner.pid}-{owner.start_ticks}-{child.pid}-{child.start_ticks}.json"


def record(name: str, child: ProcessIdentity) -> Path | None:
    """Write ``child`` (started by this session) to the ledger; the entry's path, or
    None if the ledger cannot be written (the child then relies on the death signal)."""
    path = _entry_path(child)
    data = {"name": name, "child": child.to_dict(), "owner": _this_session().to_dict()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        return None
    return path


def forget(entry: Path | None) -> None:
    """Remove a ledger entry (its child was stopped and reaped)."""
    if entry is not None:
        with contextlib.suppress(OSError):
            entry.unlink()


def _read(path: Path) -> tuple[str, ProcessIdentity, ProcessIdentity] | None:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    child = ProcessIdentity.from_dict(data.get("child") or {})
    owner = ProcessIdentity.from_dict(data.get("owner") or {})
    if child is None or owner is None:
        return None
    return str(data.get("name", "?")), child, owner


def sweep() -> list[Swept]:
    """Kill what sessions that are no longer running left behind; returns what was swept.

    Entries of live sessions (this one included) are left alone. Unreadable entries
    are removed without signalling anything.
    """
    swept: list[Swept] = []
    folder = ledger_dir()
    if not folder.is_dir():
        return swept
    for path in sorted(folder.glob("*.json")):
        parsed = _read(path)
        if parsed is None:
            forget(path)
            continue
        name, child, owner = parsed
        if owner.is_running():
            continue
        killed: list[int] = []
        if child.is_running():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)  # it leads its own group
                killed.append(child.pid)
        else:
            # The child is gone; its group may not be (a Triton's stubs). A group id
            # cannot be handed out again while members still use it, and members that
            # started after the recorded child cannot predate it.
            for pid in process_group_members(child.pid, started_after=child.start_ticks):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
        forget(path)
        if killed:
            swept.append(Swept(name, tuple(killed), owner.pid))
    return swept


_swept_in: int | None = None


def sweep_once() -> list[Swept]:
    """:func:`sweep`, at most once per process (the first start of a child calls it);
    what was swept is logged as a warning on the ``chaosrec`` logger."""
    global _swept_in
    if _swept_in == os.getpid():
        return []
    _swept_in = os.getpid()
    swept = sweep()
    if swept:
        import logging

        log = logging.getLogger("chaosrec")
        for item in swept:
            log.warning("swept %s", item.describe())
    return swept
