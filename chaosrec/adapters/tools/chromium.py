"""A headless Chromium, to check that a generated report renders.

Debian's ``chromium`` package (``apt-get install -y chromium``); ``$CHROMIUM_BIN``
overrides it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from chaosrec.adapters.tools._run import from_env, run_tool
from chaosrec.errors import SetupError, ToolNotFoundError

__all__ = ["find_chromium", "install_chromium"]

_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> Path | None:
    """A Chromium/Chrome binary: ``$CHROMIUM_BIN``, else the first known name on ``PATH``.

    Raises:
        ToolNotFoundError: ``$CHROMIUM_BIN`` is set but is not an executable file.
    """
    explicit = from_env("CHROMIUM_BIN", "a chromium binary")
    if explicit is not None:
        return explicit
    for name in _CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def install_chromium(timeout_s: float = 900.0) -> Path:
    """Return a Chromium binary, installing Debian's ``chromium`` with apt-get if needed.

    Raises:
        ToolNotFoundError: none found and this is not a root shell with ``apt-get``
            (the message says what to run instead).
        SetupError: ``apt-get`` failed; its output tail is noted.
    """
    found = find_chromium()
    if found is not None:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise ToolNotFoundError(
            "no chromium found (CHROMIUM_BIN unset, none on PATH) and chaosrec can install it "
            "only as root with apt-get; run `sudo apt-get install -y chromium` or set "
            "CHROMIUM_BIN (needed only to check rendered reports)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    fix = "check access to Debian's package mirrors, or install chromium yourself"
    run_tool([apt, "update"], env=env, timeout_s=timeout_s, fix=fix)
    run_tool(
        [apt, "install", "-y", "--no-install-recommends", "chromium"],
        env=env,
        timeout_s=timeout_s,
        fix=fix,
    )
    found = find_chromium()
    if found is None:
        raise SetupError("apt-get installed chromium but no chromium is on PATH; check PATH")
    return found
