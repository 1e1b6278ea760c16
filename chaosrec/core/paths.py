"""Where chaosrec keeps its caches, tools and run folders."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["cache_dir", "runs_dir", "stacks_dir"]


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
