"""The git revision a drill run was made from (for the drill history).

Example::

    rev = git_revision(Path.cwd())   # Revision(commit='946a96b...', dirty=False, branch='main')
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Revision", "git_revision"]


@dataclass(frozen=True)
class Revision:
    """A checkout's commit, whether tracked files differ from it, and its branch (None
    on a detached HEAD, as CI checkouts often are)."""

    commit: str
    dirty: bool | None  # None: git could not tell
    branch: str | None


def _git(folder: Path, *args: str, timeout_s: float) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        result = subprocess.run(
            [git, "-C", str(folder), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_revision(folder: Path, *, timeout_s: float = 10.0) -> Revision | None:
    """The revision of the git checkout holding ``folder``; None when it is not in one
    or git is missing. Untracked files do not make it dirty (reports and the history
    file itself live in the checkout)."""
    commit = _git(folder, "rev-parse", "HEAD", timeout_s=timeout_s)
    if not commit:
        return None
    status = _git(folder, "status", "--porcelain", "--untracked-files=no", timeout_s=timeout_s)
    branch = _git(folder, "symbolic-ref", "--quiet", "--short", "HEAD", timeout_s=timeout_s)
    return Revision(
        commit=commit, dirty=None if status is None else bool(status), branch=branch or None
    )
