"""Helpers shared by everything in chaosrec that launches a child process.

The one rule they enforce: a child chaosrec starts must not outlive the Python
process that started it, even when that process is killed with SIGKILL and no
``finally`` block runs.
"""

from __future__ import annotations

import ctypes
import signal
import sys
from collections.abc import Callable

__all__ = ["child_preexec"]

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
