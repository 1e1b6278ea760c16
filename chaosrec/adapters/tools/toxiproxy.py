"""Locate, and if needed build, the external tools chaosrec drives.

Today that is one tool: Shopify's ``toxiproxy-server``, pinned to
:data:`TOXIPROXY_VERSION`. :func:`find_toxiproxy` looks in, in order:

1. ``$TOXIPROXY_BIN`` (an explicit choice; an invalid one is an error, not skipped),
2. chaosrec's tools folder (:func:`tools_dir`), file ``toxiproxy-server-v<version>``,
3. ``toxiproxy-server`` on ``$PATH``.

:func:`install_toxiproxy` builds the pinned version with ``go install`` into the
tools folder (about a minute on a machine with an empty Go build cache).

Example::

    binary = ensure_toxiproxy()         # find, else build with Go
    print(toxiproxy_version(binary))    # "2.12.0"
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from chaosrec.adapters.tools._run import (
    executable,
    first_line,
    from_env,
    run_tool,
    tool_output,
)
from chaosrec.core.paths import tools_dir
from chaosrec.errors import SetupError, ToolNotFoundError

__all__ = [
    "TOXIPROXY_MODULE",
    "TOXIPROXY_VERSION",
    "ensure_toxiproxy",
    "find_toxiproxy",
    "install_toxiproxy",
    "tools_dir",
    "toxiproxy_version",
]

logger = logging.getLogger(__name__)

#: The Toxiproxy release chaosrec builds and is tested against.
TOXIPROXY_VERSION = "2.12.0"
#: The Go package whose ``main`` is toxiproxy-server.
TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2/cmd/server"

_BINARY_PREFIX = "toxiproxy-server-v"
_EXE_SUFFIX = ".exe" if sys.platform == "win32" else ""
_VERSIONED_NAME = re.compile(rf"^{re.escape(_BINARY_PREFIX)}(\d+)\.(\d+)\.(\d+){_EXE_SUFFIX}$")
# "toxiproxy-server version 2.12.0" (release builds) or "... version git" (go install builds).
_VERSION_LINE = re.compile(r"version\s+v?(\d+\.\d+\.\d+[\w.+-]*)")
# Go embeds its module list in every binary; a go-installed server reports its
# version as "git", so this is where the real one is found.
_BUILD_INFO = re.compile(rb"\nmod\tgithub\.com/Shopify/toxiproxy/v2\tv(\d+\.\d+\.\d+[\w.+-]*)")


def _installed_path(version: str = TOXIPROXY_VERSION) -> Path:
    return tools_dir() / f"{_BINARY_PREFIX}{version}{_EXE_SUFFIX}"


def _from_tools_dir() -> Path | None:
    pinned = _installed_path()
    if executable(pinned):
        return pinned
    folder = tools_dir()
    if not folder.is_dir():
        return None
    candidates: list[tuple[tuple[int, int, int], Path]] = []
    for entry in folder.iterdir():
        match = _VERSIONED_NAME.match(entry.name)
        if match and executable(entry):
            major, minor, patch = (int(part) for part in match.groups())
            candidates.append(((major, minor, patch), entry))
    if not candidates:
        return None
    return max(candidates)[1]


def find_toxiproxy() -> Path | None:
    """Return the toxiproxy-server binary to use, or ``None`` if there is none.

    Order: ``$TOXIPROXY_BIN``, then the tools folder (the pinned version first,
    else the newest ``toxiproxy-server-v*``), then ``toxiproxy-server`` on ``$PATH``.

    Raises:
        ToolNotFoundError: ``$TOXIPROXY_BIN`` is set but is not an executable file.
    """
    found = from_env("TOXIPROXY_BIN", "a toxiproxy-server binary") or _from_tools_dir()
    if found is not None:
        return found
    on_path = shutil.which("toxiproxy-server")
    return Path(on_path) if on_path else None


def _no_toolchain_error() -> ToolNotFoundError:
    return ToolNotFoundError(
        "no toxiproxy-server found (TOXIPROXY_BIN unset, none in "
        f"{tools_dir()}, none on PATH) and no Go toolchain to build one; "
        "install Go and run `chaosrec setup`, set TOXIPROXY_BIN to a toxiproxy-server binary, "
        "or put toxiproxy-server on PATH"
    )


def install_toxiproxy(force: bool = False, timeout_s: float = 600.0) -> Path:
    """Return a toxiproxy-server binary, building it with Go if none is found.

    Unless ``force`` is true, an existing binary (see :func:`find_toxiproxy`) is
    returned as is. Otherwise runs ``go install`` of :data:`TOXIPROXY_MODULE` at
    :data:`TOXIPROXY_VERSION` into a private temporary folder inside
    :func:`tools_dir`, then renames the result to
    ``tools_dir()/toxiproxy-server-v<version>``. The rename is atomic, so two
    processes installing at once both end with a complete binary. A build takes
    about 50 s with an empty Go build cache.

    Args:
        force: build even if a binary is already found.
        timeout_s: seconds to let ``go install`` run before giving up.

    Raises:
        ToolNotFoundError: no binary was found and ``go`` is not on ``$PATH``.
        SetupError: ``go install`` failed or timed out; its output tail is noted.
    """
    if not force:
        found = find_toxiproxy()
        if found is not None:
            return found
    go = shutil.which("go")
    if go is None:
        raise _no_toolchain_error()

    target = _installed_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    package = f"{TOXIPROXY_MODULE}@v{TOXIPROXY_VERSION}"
    command = [go, "install", package]
    scratch = Path(tempfile.mkdtemp(prefix=".go-install-", dir=target.parent))
    try:
        logger.info(
            "building toxiproxy-server v%s with `go install %s`", TOXIPROXY_VERSION, package
        )
        run_tool(
            command,
            env={**os.environ, "GOBIN": str(scratch)},
            timeout_s=timeout_s,
            fix="check access to the Go module proxy (GOPROXY), or set TOXIPROXY_BIN to a "
            "prebuilt binary",
        )
        built = scratch / f"server{_EXE_SUFFIX}"
        if not built.is_file():
            raise SetupError(
                f"`go install {package}` succeeded but left no {built.name} in GOBIN={scratch}; "
                "check that GOOS/GOARCH are not set for cross-compiling"
            )
        built.chmod(0o755)
        # Same filesystem (scratch is inside the tools folder), so this is an atomic rename.
        os.replace(built, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.info("installed %s", target)
    return target


def ensure_toxiproxy() -> Path:
    """Return a usable toxiproxy-server binary: found if possible, else built with Go.

    Raises:
        ToolNotFoundError: none found and no Go toolchain to build one.
        SetupError: the build failed.
    """
    return install_toxiproxy()


def toxiproxy_version(binary: Path) -> str:
    """Return the Toxiproxy version of ``binary`` as ``"MAJOR.MINOR.PATCH"``, e.g. ``"2.12.0"``.

    Runs ``<binary> -version``. Binaries built by ``go install`` answer ``git``
    there, so the version is then read from the Go build information embedded in
    the file.

    Raises:
        SetupError: the binary cannot be run or its version cannot be determined.
    """
    output = tool_output(Path(binary), ["-version"], timeout_s=10)
    match = _VERSION_LINE.search(output)
    if match:
        return match.group(1)
    try:
        embedded = _BUILD_INFO.search(Path(binary).read_bytes())
    except OSError as err:
        raise SetupError(f"cannot read {binary}: {err}; check its permissions") from err
    if embedded:
        return embedded.group(1).decode()
    raise SetupError(
        f"cannot tell the version of {binary}: `-version` printed {first_line(output)!r} "
        "and the file has no Toxiproxy build info; point TOXIPROXY_BIN at a toxiproxy-server binary"
    )
