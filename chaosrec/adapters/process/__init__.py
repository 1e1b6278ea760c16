"""Processes chaosrec starts: one manager, identities checked before any signal, a ledger
that lets the next session sweep what a killed one left."""

from chaosrec.adapters.process.identity import ProcessIdentity, pid_alive
from chaosrec.adapters.process.ledger import Swept, sweep
from chaosrec.adapters.process.manager import ManagedProcess, StartFailed, log_tail

__all__ = [
    "ManagedProcess",
    "ProcessIdentity",
    "StartFailed",
    "Swept",
    "log_tail",
    "pid_alive",
    "sweep",
]
