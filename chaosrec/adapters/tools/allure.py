"""The Allure command line that builds the HTML drill report.

Allure 3 (npm package ``allure``, pinned to :data:`ALLURE_VERSION`) is installed by
``npm install --prefix <tools>/allure-<version> allure@<version>`` into chaosrec's
tools folder (:func:`chaosrec.core.paths.tools_dir`). ``$ALLURE_BIN`` overrides it;
an ``allure`` on ``PATH`` is used when none is installed (it may be Allure 2,
``allure-commandline`` with Java: :func:`allure_version` tells them apart).

Example::

    allure = install_allure()           # found, else installed with npm (~20 s)
    print(allure_version(allure))       # "3.18.0"
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from chaosrec.adapters.tools._run import executable, first_line, from_env, run_tool, tool_output
from chaosrec.core.paths import tools_dir
from chaosrec.errors import SetupError, ToolNotFoundError

__all__ = ["ALLURE_VERSION", "allure_version", "find_allure", "install_allure"]

logger = logging.getLogger(__name__)

#: The Allure 3 release chaosrec installs and is tested against.
ALLURE_VERSION = "3.18.0"
_VERSION = re.compile(r"(\d+\.\d+\.\d+)")


def _allure_prefix() -> Path:
    return tools_dir() / f"allure-{ALLURE_VERSION}"


def find_allure() -> Path | None:
    """The Allure CLI to use: ``$ALLURE_BIN``, chaosrec's pinned install, else ``allure``
    on ``PATH``; ``None`` when there is none.

    Raises:
        ToolNotFoundError: ``$ALLURE_BIN`` is set but is not an executable file.
    """
    explicit = from_env("ALLURE_BIN", "an allure binary")
    if explicit is not None:
        return explicit
    pinned = _allure_prefix() / "node_modules" / ".bin" / "allure"
    if executable(pinned):
        return pinned
    on_path = shutil.which("allure")
    return Path(on_path) if on_path else None


def allure_version(binary: Path) -> str:
    """``"MAJOR.MINOR.PATCH"`` of an Allure CLI (``allure --version``).

    Raises:
        SetupError: the binary cannot be run or prints no version.
    """
    output = tool_output(binary, ["--version"])
    match = _VERSION.search(output)
    if match is None:
        raise SetupError(
            f"`{binary} --version` printed no version ({first_line(output)!r}); "
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
        run_tool(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(scratch), package],
            timeout_s=timeout_s,
            fix="check access to the npm registry, or set ALLURE_BIN to an allure binary",
        )
        if not executable(scratch / "node_modules" / ".bin" / "allure"):
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
