"""A supervised subprocess: started with its log in a file, waited on until ready, stopped for sure.

Children get ``PR_SET_PDEATHSIG`` so they die with the Python process that
started them, even after SIGKILL; and their own session, so a terminal's Ctrl-C
reaches only Python, which then tears them down in order.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from chaosrec.adapters.process.launch import child_launch
from chaosrec.errors import ProcessStartError

__all__ = ["ManagedProcess", "log_tail"]


def log_tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log file ('' if there is none)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64_000))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """One child process with a readiness check.

    ``ready_check`` is called repeatedly (every ``poll_s``) until it returns True;
    exceptions it raises count as "not ready yet". ``start()`` never blocks;
    ``wait_ready()`` does, and on failure kills the process and raises
    :class:`ProcessStartError` with the log tail attached as a note.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        ready_check: Callable[[], bool],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ready_timeout_s: float = 30.0,
        poll_s: float = 0.05,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.ready_check = ready_check
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.ready_timeout_s = ready_timeout_s
        self.poll_s = poll_s
        self.started_at: float | None = None
        self.ready_at: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, nice: int = 0) -> None:
        """Spawn the process (logs appended to ``log_path``), ``nice`` steps below our
        own CPU priority when given (see :func:`chaosrec.adapters.process.launch.child_launch`)."""
        if self.alive:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log = self.log_path.open("ab")
        self._log.write(f"--- chaosrec: starting {self.name}: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        try:
            argv, preexec = child_launch(self.argv, nice=nice)
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                preexec_fn=preexec,
                start_new_session=True,
            )
        except OSError as err:
            self._close_log()
            raise ProcessStartError(
                f"{self.name}: cannot execute {self.argv[0]!r}: {err.strerror}; "
                "check the path and that it is executable"
            ) from err
        self.started_at = time.monotonic()
        self.ready_at = None

    def wait_ready(self, timeout_s: float | None = None) -> float:
        """Block until ready; return seconds since start. Kills the process on failure."""
        if self._proc is None or self.started_at is None:
            raise ProcessStartError(f"{self.name}: wait_ready() called before start()")
        timeout = self.ready_timeout_s if timeout_s is None else timeout_s
        deadline = self.started_at + timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                self._fail(f"{self.name} exited with code {code} before it was ready")
            try:
                if self.ready_check():
                    self.ready_at = time.monotonic()
                    return self.ready_at - self.started_at
            except Exception:  # noqa: BLE001
                pass
            if time.monotonic() > deadline:
                self._fail(f"{self.name} was not ready after {timeout:.0f} s")
            time.sleep(self.poll_s)

    def _fail(self, message: str) -> None:
        self.stop()
        err = ProcessStartError(f"{message}; see its log {self.log_path}")
        tail = log_tail(self.log_path)
        if tail:
            err.add_note(f"last lines of {self.log_path}:\n{tail}")
        raise err

    def signal(self, signum: int) -> None:
        """Send a signal to the process (no-op if it is not running)."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signum)

    def kill_group(self, signum: int | None = None) -> None:
        """Signal the process's whole group: it and the helpers it spawned (Triton's
        Python-backend stubs), which would otherwise be orphaned and keep running."""
        if signum is None:
            signum = signal.SIGKILL
        if self._proc is None or self._proc.poll() is not None:
            return
        try:
            os.killpg(self._proc.pid, signum)  # the child leads its own session and group
        except (ProcessLookupError, PermissionError):
            self.signal(signum)

    def stop(self, grace_s: float = 3.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace_s``; returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.kill_group(signal.SIGKILL)
                proc.wait(timeout=10)
        self._close_log()
        return proc.returncode

    def wait(self, timeout_s: float | None = None) -> int | None:
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
