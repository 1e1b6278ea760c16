"""Scratch folders owned by a process: removed when it is done, swept when it was killed.

A drill session keeps logs, model repositories and Triton's scratch files in a
folder of its own (11-23 MB). :func:`scratch_dir` names it after the owning process
(``chaosrec-<kind>-<pid>-<start ticks>-<random>`` in the system's temp folder), so
:func:`sweep_scratch`, run when a session starts, can remove folders whose owner is
no longer running (a session killed before its teardown) and leave live sessions'
alone.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from chaosrec.adapters.process.identity import ProcessIdentity

__all__ = ["scratch_dir", "sweep_scratch"]

_NAME = re.compile(r"^chaosrec-(?P<kind>[a-z]+)-(?P<pid>\d+)-(?P<start>\d+)-[A-Za-z0-9_]+$")


def scratch_dir(kind: str) -> Path:
    """A new folder for this process's ``kind`` of scratch files (``kind``: lowercase letters)."""
    if not re.fullmatch(r"[a-z]+", kind):
        raise ValueError(f"kind={kind!r} must be lowercase letters")
    me = ProcessIdentity.current()
    return Path(tempfile.mkdtemp(prefix=f"chaosrec-{kind}-{me.pid}-{me.start_ticks}-"))


def sweep_scratch(root: Path | None = None) -> list[Path]:
    """Remove scratch folders whose owning process is gone; the folders removed."""
    folder = Path(root or tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _NAME.match(entry.name)
        if match is None or not entry.is_dir() or entry.is_symlink():
            continue
        owner = ProcessIdentity(int(match["pid"]), int(match["start"]))
        if owner.is_running():
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
    return removed
