"""The report's external tools: the Allure command line and a headless Chromium.

* **Allure 3** (npm package ``allure``, pinned to :data:`ALLURE_VERSION`) is installed by
  ``npm install --prefix <tools>/allure-<version> allure@<version>`` into chaosrec's tools
  folder (:func:`chaosrec.adapters.tools.toxiproxy.tools_dir`). ``$ALLURE_BIN`` overrides
  it; an ``allure``
  on ``PATH`` is used when none is installed (it may be Allure 2, ``allure-commandline``
  with Java: :func:`allure_version` tells them apart).
* **Chromium** is Debian's ``chromium`` package (``apt-get install -y chromium``), needed
  only to check that a generated report renders. ``$CHROMIUM_BIN`` overrides it.

Example::

    allure = install_allure()           # found, else installed with npm (~20 s)
    print(allure_version(allure))       # "3.18.0"
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from chaosrec.adapters.tools.toxiproxy import tools_dir
from chaosrec.errors import SetupError, ToolNotFoundError

__all__ = [
    "ALLURE_VERSION",
    "allure_version",
    "find_allure",
    "find_chromium",
    "install_allure",
    "install_chromium",
]

logger = logging.getLogger(__name__)

#: The Allure 3 release chaosrec installs and is tested against.
ALLURE_VERSION = "3.18.0"
_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_VERSION = re.compile(r"(\d+\.\d+\.\d+)")


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _allure_prefix() -> Path:
    return tools_dir() / f"allure-{ALLURE_VERSION}"


def find_allure() -> Path | None:
    """The Allure CLI to use: ``$ALLURE_BIN``, chaosrec's pinned install, else ``allure``
    on ``PATH``; ``None`` when there is none.

    Raises:
        ToolNotFoundError: ``$ALLURE_BIN`` is set but is not an executable file.
    """
    explicit = os.environ.get("ALLURE_BIN")
    if explicit:
        path = Path(explicit).expanduser()
        if not _executable(path):
            raise ToolNotFoundError(
                f"ALLURE_BIN={explicit!r} is not an executable file; point it at an allure "
                "binary or unset it to use the one `chaosrec setup` installs"
            )
        return path
    pinned = _allure_prefix() / "node_modules" / ".bin" / "allure"
    if _executable(pinned):
        return pinned
    on_path = shutil.which("allure")
    return Path(on_path) if on_path else None


def allure_version(binary: Path) -> str:
    """``"MAJOR.MINOR.PATCH"`` of an Allure CLI (``allure --version``).

    Raises:
        SetupError: the binary cannot be run or prints no version.
    """
    try:
        result = subprocess.run(
            [str(binary), "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as err:
        raise SetupError(
            f"cannot run {binary} --version: {err}; reinstall it with `chaosrec setup`"
        ) from err
    match = _VERSION.search(result.stdout + result.stderr)
    if result.returncode != 0 or match is None:
        raise SetupError(
            f"`{binary} --version` exited {result.returncode} without a version; "
            "reinstall it with `chaosrec setup` or unset ALLURE_BIN"
        )
    return match.group(1)


def install_allure(force: bool = False, timeout_s: float = 600.0) -> Path:
    """Return an Allure CLI, installing npm ``allure@ALLURE_VERSION`` if none is found.

    The package goes into a scratch folder inside the tools folder first and is then
    renamed to ``allure-<version>``, so a half-finished install is never picked up.

    Raises:
        ToolNotFoundError: none found and ``npm`` is not on ``PATH``.
        SetupError: ``npm install`` failed or timed out; its output tail is noted.
    """
    if not force:
        found = find_allure()
        if found is not None:
            return found
    npm = shutil.which("npm")
    if npm is None:
        raise ToolNotFoundError(
            "no Allure CLI found (ALLURE_BIN unset, none in "
            f"{_allure_prefix()}, none on PATH) and no npm to install one; install Node.js "
            "(Debian: apt-get install -y npm) and run `chaosrec setup`, or set ALLURE_BIN"
        )
    prefix = _allure_prefix()
    prefix.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".allure-install-", dir=prefix.parent))
    package = f"allure@{ALLURE_VERSION}"
    try:
        logger.info("installing %s with npm", package)
        try:
            result = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--prefix", str(scratch), package],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise SetupError(
                f"`npm install {package}` did not finish within {timeout_s:g} s; check access "
                "to the npm registry or raise timeout_s"
            ) from err
        if result.returncode != 0:
            error = SetupError(
                f"`npm install {package}` failed with exit code {result.returncode}; fix the "
                "problem in npm's output below, or set ALLURE_BIN to an allure binary"
            )
            error.add_note("last lines of npm's output:\n" + _tail(result.stdout))
            raise error
        if not _executable(scratch / "node_modules" / ".bin" / "allure"):
            raise SetupError(
                f"`npm install {package}` left no node_modules/.bin/allure in {scratch}; "
                "check npm's configuration (bin-links must not be disabled)"
            )
        if prefix.exists():
            shutil.rmtree(prefix)
        os.replace(scratch, prefix)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    installed = prefix / "node_modules" / ".bin" / "allure"
    logger.info("installed %s", installed)
    return installed


def find_chromium() -> Path | None:
    """A Chromium/Chrome binary: ``$CHROMIUM_BIN``, else the first known name on ``PATH``.

    Raises:
        ToolNotFoundError: ``$CHROMIUM_BIN`` is set but is not an executable file.
    """
    explicit = os.environ.get("CHROMIUM_BIN")
    if explicit:
        path = Path(explicit).expanduser()
        if not _executable(path):
            raise ToolNotFoundError(
                f"CHROMIUM_BIN={explicit!r} is not an executable file; point it at a "
                "chromium binary or unset it"
            )
        return path
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
    for command in (
        [apt, "update"],
        [apt, "install", "-y", "--no-install-recommends", "chromium"],
    ):
        try:
            result = subprocess.run(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise SetupError(
                f"`{' '.join(command)}` did not finish within {timeout_s:g} s; check access "
                "to Debian's package mirrors"
            ) from err
        if result.returncode != 0:
            error = SetupError(
                f"`{' '.join(command)}` failed with exit code {result.returncode}; fix the "
                "problem in apt's output below, or install chromium yourself"
            )
            error.add_note("last lines of apt's output:\n" + _tail(result.stdout))
            raise error
    found = find_chromium()
    if found is None:
        raise SetupError("apt-get installed chromium but no chromium is on PATH; check PATH")
    return found


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
