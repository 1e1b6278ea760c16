"""Where chaosrec keeps its caches, tools and run folders."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["cache_dir", "runs_dir", "stacks_dir", "tools_dir"]


def cache_dir() -> Path:
    """chaosrec's cache root: ``$CHAOSREC_CACHE_DIR`` or the user's cache directory."""
    override = os.environ.get("CHAOSREC_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("chaosrec"))


def runs_dir() -> Path:
    """Parent of per-run folders (logs, model repositories, Triton scratch files)."""
    return cache_dir() / "runs"


def stacks_dir() -> Path:
    """Parent of the state folders of stacks started with ``chaosrec stack up``."""
    return cache_dir() / "stacks"


def tools_dir() -> Path:
    """The folder where chaosrec keeps the tools it builds or installs (not created here).

    ``$CHAOSREC_TOOLS_DIR`` wins; else ``$CHAOSREC_CACHE_DIR/tools``; else
    ``<user cache dir>/chaosrec/tools`` (``~/.cache/chaosrec/tools`` on Linux).
    Empty variables count as unset.
    """
    explicit = os.environ.get("CHAOSREC_TOOLS_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return cache_dir().expanduser() / "tools"
