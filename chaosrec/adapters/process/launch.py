"""Helpers shared by everything in chaosrec that launches a child process.

The one rule they enforce: a child chaosrec starts must not outlive the Python
process that started it, even when that process is killed with SIGKILL and no
``finally`` block runs.

Use :func:`child_launch`. It arranges that rule through util-linux's ``setpriv``
when there is one, because a ``preexec_fn`` makes CPython ``fork()`` the whole
parent instead of ``vfork()``-ing it: in a pytest process holding torch
(~900 MB resident) each such spawn took ~60 ms and stalled the parent's other
threads for ~30 ms on an idle machine (measured), several times that on busy
cores. The drill's load generator is one of those threads, so a replica restart
mid-drill showed up as 100-200 ms of send lag, billed to the service.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["child_launch", "child_preexec", "niced_child_preexec", "process_tree", "renice_tree"]

# prctl(2) option: deliver a signal to this process when its parent dies.
_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """Resolve libc's ``prctl`` once, in the parent.

    Loading a shared library between fork and exec may take locks another thread
    held at fork time, so the lookup happens at import and the child only calls
    the already-resolved function.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        # dlopen(NULL): the running program, whose symbols include libc's.
        libc = ctypes.CDLL(None, use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()


def child_preexec() -> None:
    """Make the calling (freshly forked) child receive SIGKILL when its parent dies.

    Pass it as ``subprocess.Popen(..., preexec_fn=child_preexec)``. Linux only;
    elsewhere, or if ``prctl`` fails, it does nothing (best effort: callers must
    still stop their children explicitly).

    Caveats of ``PR_SET_PDEATHSIG`` worth knowing:

    * it fires when the *thread* that forked the child exits, not only the
      process, so start long-lived children from a thread that lives as long as
      they should (normally the main thread);
    * if the parent dies between ``fork`` and this call, the signal is never
      sent (a window of microseconds).

    Example::

        subprocess.Popen(["toxiproxy-server"], preexec_fn=child_preexec,
                         start_new_session=True)
    """
    if _PRCTL is None:
        return
    try:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except Exception:  # noqa: BLE001
        # Raising here would abort the exec with a confusing SubprocessError;
        # the child still runs, it just is not tied to our lifetime.
        return


def niced_child_preexec(increment: int) -> Callable[[], None]:
    """A ``preexec_fn`` that does what :func:`child_preexec` does and also lowers the
    child's CPU priority by ``increment`` (``nice(2)``); its threads and children
    inherit it.

    chaosrec restarts crashed replicas with this: a Triton start is seconds of CPU
    (its Python stub imports torch) that must not starve the replicas and gateway
    serving the drill's traffic on the same cores.
    """

    def preexec() -> None:
        child_preexec()
        try:
            os.nice(increment)
        except OSError:
            return

    return preexec


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants, parents first (Linux ``/proc``; ``[]`` if gone)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text()
        except OSError:
            continue  # exited meanwhile
        out.append(current)
        todo.extend(int(c) for c in children.split())
    return out


def renice_tree(pid: int, value: int) -> bool:
    """Set the nice value of ``pid``, its descendants and all their threads to ``value``.

    On Linux a nice value belongs to each thread, so every task is set. Raising the
    priority again (a lower value) needs root or ``CAP_SYS_NICE``: without it this
    returns False and leaves the tree as it was. Linux only (False elsewhere).
    """
    tree = process_tree(pid)
    ok = bool(tree)
    for current in tree:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{current}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                os.setpriority(os.PRIO_PROCESS, tid, value)
            except ProcessLookupError:
                continue
            except PermissionError:
                ok = False
    return ok


@functools.cache
def _setpriv() -> str | None:
    """util-linux ``setpriv`` if it is installed and knows ``--pdeathsig`` (2.33+)."""
    if not sys.platform.startswith("linux"):
        return None
    path = shutil.which("setpriv")
    if path is None:
        return None
    try:
        out = subprocess.run(
            [path, "--help"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "--pdeathsig" in out else None


def child_launch(
    argv: Sequence[str], *, nice: int = 0
) -> tuple[list[str], Callable[[], None] | None]:
    """The ``argv`` and ``preexec_fn`` to pass to ``subprocess.Popen`` for a child that
    dies with this process (SIGKILL on our death), ``nice`` steps below our priority.

    With ``setpriv`` the command is wrapped (``[nice -n N] setpriv --pdeathsig KILL --
    argv...``; each ``exec``s the next, so the pid is the child's) and no
    ``preexec_fn`` is needed, which keeps the spawn a cheap ``vfork``. Without it,
    the fallback is :func:`child_preexec` / :func:`niced_child_preexec`.

    The guarantee starts once the wrapper has exec'd ``argv`` (``setpriv`` arms the
    death signal just before; a few milliseconds after ``Popen`` returns). A parent
    killed inside that window leaves the child running: the next session's orphan
    sweep is what catches it.

    Example::

        argv, preexec = child_launch(["toxiproxy-server"])
        subprocess.Popen(argv, preexec_fn=preexec, start_new_session=True)
    """
    setpriv = _setpriv()
    if setpriv is not None and shutil.which(argv[0]) is None:
        # what Popen itself raises, before the wrapper would turn it into an exit code 127
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
    if setpriv is None:
        return list(argv), (niced_child_preexec(nice) if nice else child_preexec)
    prefix = [setpriv, "--pdeathsig", "KILL", "--"]
    nice_bin = shutil.which("nice") if nice else None
    if nice_bin is not None:
        prefix = [nice_bin, "-n", str(nice), *prefix]
    return [*prefix, *argv], None
