"""What every external-tool adapter needs: run a tool with a deadline, read its version,
honour an ``$X_BIN`` override. One implementation for Toxiproxy, Allure, Chromium and
the Kubernetes binaries."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from chaosrec.errors import SetupError, ToolNotFoundError

__all__ = ["executable", "first_line", "from_env", "output_tail", "run_tool", "tool_output"]

_TAIL_LINES = 25


def executable(path: Path) -> bool:
    """An existing file we may execute."""
    return path.is_file() and os.access(path, os.X_OK)


def from_env(variable: str, what: str) -> Path | None:
    """The tool ``$variable`` names, or None when it is unset or empty.

    Raises:
        ToolNotFoundError: it is set but is not an executable file (an explicit choice
            that does not work is an error, not silently skipped).
    """
    raw = os.environ.get(variable)
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.exists():
        raise ToolNotFoundError(
            f"{variable}={raw} points at a missing file; set it to {what} or unset it"
        )
    if not executable(path):
        raise ToolNotFoundError(
            f"{variable}={raw} is not an executable file; run `chmod +x {raw}`, "
            f"point it at {what}, or unset it"
        )
    return path


def output_tail(text: str, lines: int = _TAIL_LINES) -> str:
    """The last ``lines`` lines of a tool's output."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run_tool(
    argv: Sequence[str],
    *,
    timeout_s: float,
    fix: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """Run a set-up command to completion; its combined output.

    Raises:
        SetupError: it could not start, timed out or exited non-zero; the message
            names the command and ``fix`` (what to do about it), and the tail of
            its output is attached as a note.
    """
    shown = " ".join(str(a) for a in argv)
    try:
        result = subprocess.run(
            [str(a) for a in argv],
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raw = err.output or b""
        output = raw if isinstance(raw, str) else raw.decode(errors="replace")
        error = SetupError(f"`{shown}` did not finish within {timeout_s:g} s; {fix}")
        if output.strip():
            error.add_note(f"last lines of its output:\n{output_tail(output)}")
        raise error from err
    except OSError as err:
        raise SetupError(f"cannot run `{shown}`: {err.strerror or err}; {fix}") from err
    if result.returncode != 0:
        error = SetupError(f"`{shown}` failed with exit code {result.returncode}; {fix}")
        error.add_note(f"last lines of its output:\n{output_tail(result.stdout)}")
        raise error
    return result.stdout


def tool_output(binary: Path, args: Sequence[str], *, timeout_s: float = 60.0) -> str:
    """What ``binary *args`` prints (stdout then stderr), whatever its exit code; for
    version probes.

    Raises:
        SetupError: the binary cannot be run at all.
    """
    try:
        result = subprocess.run(
            [str(binary), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as err:
        raise SetupError(
            f"cannot run {binary} {' '.join(args)}: {err}; reinstall it with `chaosrec setup`"
        ) from err
    return result.stdout + result.stderr


def first_line(output: str) -> str:
    """The first line of a tool's output, for messages (``<nothing>`` if empty)."""
    text = output.strip()
    return text.splitlines()[0][:200] if text else "<nothing>"
