"""The one process manager: every process chaosrec starts (Toxiproxy, Triton replicas,
the gateway, a stack's supervisor, the Kubernetes control plane) is a :class:`ManagedProcess`.

What it guarantees, in order of a process's life:

* **Start.** The child gets its own session and process group (a terminal's Ctrl-C
  reaches only Python, which tears children down in order), dies with this Python
  process even after SIGKILL (``PR_SET_PDEATHSIG``, :mod:`.launch`), and is written
  to the :mod:`.ledger` so the next session sweeps it if that guarantee had a gap.
  Its output is appended to ``log_path``.
* **Readiness.** ``ready_check`` is polled every ``poll_s`` until it returns True;
  exceptions count as "not ready yet", except :class:`StartFailed`, which ends the
  wait at once (a server logged that it cannot bind its port, say). A process that
  exits, is not ready in time, or fails a check is stopped before
  :class:`~chaosrec.errors.ProcessStartError` is raised with the tail of what *this*
  start logged attached as a note.
* **Signals go to the right process.** The exit status is read without reaping
  (``waitid(WNOWAIT)``), so the pid, and the process group it leads, stay reserved
  for us until :meth:`ManagedProcess.stop` reaps it: a signal can never reach a
  process that reused the number.
* **Stop.** SIGTERM to the whole group, ``stop_grace_s`` for the leader to exit,
  SIGKILL to the group (the leader, and whatever it left behind, such as Triton's
  Python-backend stubs), then reap and remove the ledger entry.

Example::

    proc = ManagedProcess(
        "toxiproxy", [binary, "-port", "8474"], log_path=run_dir / "toxiproxy.log",
        ready_check=lambda: httpx.get("http://127.0.0.1:8474/version").is_success,
    )
    proc.start().wait_ready()
    ...
    proc.stop()
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Self

from chaosrec.adapters.process import ledger
from chaosrec.adapters.process.identity import ProcessIdentity
from chaosrec.adapters.process.launch import child_launch
from chaosrec.errors import ProcessStartError

__all__ = ["ManagedProcess", "StartFailed", "log_tail"]

_TAIL_LINES = 25


class StartFailed(ProcessStartError):
    """Raised by a readiness check to end the wait at once: the process cannot become
    ready (e.g. it logged that its port is taken). The process is stopped first."""


def log_tail(path: Path, lines: int = _TAIL_LINES, *, offset: int = 0) -> str:
    """The last ``lines`` lines of ``path`` after byte ``offset`` ('' if there is none)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(offset, size - 64_000))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


class ManagedProcess:
    """One child process with a readiness check; see the module docs for the guarantees.

    :param name: how messages name it (``"toxiproxy"``, ``"triton[region-a.r0]"``).
    :param argv: the command.
    :param log_path: file its stdout and stderr are appended to (parents created).
    :param ready_check: returns True once the process serves; None: ready when started.
    :param env: the child's environment (default: ours).
    :param cwd: the child's working directory.
    :param ready_timeout_s: how long :meth:`wait_ready` waits by default.
    :param poll_s: seconds between readiness checks.
    :param stop_grace_s: seconds between SIGTERM and SIGKILL in :meth:`stop`.
    :param detached: outlive this Python process (no death signal, no ledger entry);
        for a stack's supervisor started by ``chaosrec stack up``.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        ready_check: Callable[[], bool] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ready_timeout_s: float = 30.0,
        poll_s: float = 0.05,
        stop_grace_s: float = 3.0,
        detached: bool = False,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.ready_check = ready_check
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.ready_timeout_s = ready_timeout_s
        self.poll_s = poll_s
        self.stop_grace_s = stop_grace_s
        self.detached = detached
        self.started_at: float | None = None  # time.monotonic()
        self.ready_at: float | None = None
        self.identity: ProcessIdentity | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_offset = 0
        self._entry: Path | None = None

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.alive else "stopped"
        return f"ManagedProcess({self.name!r}, {state})"

    # -- state ----------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit code once it exited (negative: killed by that signal), else None.
        Reading it does not reap the process (see the module docs)."""
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is not None:
            return proc.returncode
        if os.name != "posix":
            return proc.poll()
        try:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return proc.poll()
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    @property
    def alive(self) -> bool:
        return self._proc is not None and self.returncode is None

    def log_tail(self, lines: int = _TAIL_LINES) -> str:
        """What the current (or last) start logged, its last ``lines`` lines."""
        return log_tail(self.log_path, lines, offset=self._log_offset)

    # -- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, *, nice: int = 0) -> Self:
        """Spawn the process, ``nice`` steps below our CPU priority; never blocks.
        A previous run of this object that exited is reaped first.

        Raises:
            ProcessStartError: the command cannot be executed.
        """
        if self.alive:
            return self
        self._reap()
        if not self.detached:
            ledger.sweep_once()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log = self.log_path.open("ab")
        self._log_offset = self._log.tell()
        self._log.write(f"--- chaosrec: starting {self.name}: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        try:
            if self.detached:
                argv, preexec = list(self.argv), None
            else:
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
                f"{self.name}: cannot execute {self.argv[0]!r}: {err.strerror or err}; "
                "check the path and that it is an executable"
            ) from err
        self.started_at = time.monotonic()
        self.ready_at = None
        self.identity = ProcessIdentity.of(self._proc.pid)
        if not self.detached and self.identity is not None:
            self._entry = ledger.record(self.name, self.identity)
        return self

    def wait_ready(self, timeout_s: float | None = None) -> float:
        """Block until ready; return seconds since start. Stops the process on failure.

        Raises:
            ProcessStartError: it exited, was not ready within the timeout, or a
                check raised :class:`StartFailed` (re-raised as is); the log tail
                of this start is attached as a note.
        """
        if self._proc is None or self.started_at is None:
            raise ProcessStartError(f"{self.name}: wait_ready() called before start()")
        timeout = self.ready_timeout_s if timeout_s is None else timeout_s
        deadline = self.started_at + timeout
        while True:
            code = self.returncode
            if code is not None:
                self._fail(
                    ProcessStartError(f"{self.name} exited with code {code} before it was ready")
                )
            if self.ready_check is None:
                ready = True
            else:
                try:
                    ready = bool(self.ready_check())
                except StartFailed as err:
                    self._fail(err)
                except Exception:  # noqa: BLE001 - not ready yet
                    ready = False
            if ready:
                self.ready_at = time.monotonic()
                return self.ready_at - self.started_at
            if time.monotonic() > deadline:
                self._fail(
                    ProcessStartError(
                        f"{self.name} (pid {self.pid}) was not ready after {timeout:g} s"
                    )
                )
            time.sleep(self.poll_s)

    def _fail(self, error: ProcessStartError) -> None:
        tail = self.log_tail()
        self.stop()
        if "see its log" not in str(error):
            error.args = (f"{error}; see its log {self.log_path}",)
        if tail:
            error.add_note(f"last lines of {self.log_path}:\n{tail}")
        raise error

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process alone (no-op unless it is running)."""
        if self.alive and self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signum)

    def kill_group(self, signum: int | None = None) -> None:
        """Signal the process's whole group: it and the helpers it spawned (Triton's
        Python-backend stubs), which would otherwise be orphaned and keep running.
        Safe after the leader exited, as long as it was not reaped (see module docs).
        Default: SIGKILL."""
        if signum is None:
            signum = signal.SIGKILL
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return  # reaped (or never started): the group id may name someone else now
        try:
            os.killpg(proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            self.signal(signum)

    def stop(self, grace_s: float | None = None) -> int | None:
        """SIGTERM to the group, up to ``grace_s`` (default ``stop_grace_s``) for the
        process to exit, SIGKILL to the group, then reap. Idempotent; the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None:
            grace = self.stop_grace_s if grace_s is None else grace_s
            if self.returncode is None:
                self.kill_group(signal.SIGTERM)
                deadline = time.monotonic() + grace
                while self.returncode is None and time.monotonic() < deadline:
                    time.sleep(0.01)
            self.kill_group(signal.SIGKILL)  # the leader if still up, and any leftovers
            proc.wait()
        self._reap()
        return proc.returncode

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Wait up to ``timeout_s`` for the process to exit (without reaping it);
        its exit code, or None while it runs."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._proc is not None:
            code = self.returncode
            if code is not None:
                return code
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
        return None

    def _reap(self) -> None:
        """Forget an exited run: reap it, drop its ledger entry, close the log."""
        if self._proc is not None and self.returncode is not None:
            self._proc.wait()
            ledger.forget(self._entry)
            self._entry = None
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
