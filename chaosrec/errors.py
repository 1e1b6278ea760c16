"""The exception tree of chaosrec.

Every error chaosrec raises on purpose derives from :class:`ChaosrecError`, so
``except ChaosrecError`` catches them all. Errors about the caller's input are
also ``ValueError`` (or ``TypeError``) so generic code handles them naturally::

    ChaosrecError
    ├── ConfigError (ValueError)          bad argument, topology, profile or option
    │   ├── UnknownTargetError            a region / replica / proxy that does not exist
    │   └── TargetNotAllowedError         a non-loopback host the run did not allow
    ├── SetupError                        a required tool is missing or failed to install
    │   ├── ToolNotFoundError             e.g. no toxiproxy-server binary and no Go toolchain
    │   └── MissingExtraError (ImportError) an optional dependency is not installed: the
    │                                     message names the extra (pip install 'chaosrec[X]')
    ├── StackError                        the embedded stack failed to start or stop
    │   ├── PortInUseError                a fixed port asked for is already taken
    │   ├── ProcessStartError             a process exited or never became ready
    │   └── ModelLoadError                Triton could not load the model
    ├── ToxiproxyError                    the Toxiproxy API refused a request or is unreachable
    ├── KubernetesError                   the Kubernetes API refused a fault's request
    │   └── EvictionBlocked               a drain's eviction was refused (429): a
    │                                     PodDisruptionBudget allows no disruption now
    ├── TargetBusyError                   another live chaosrec session holds a fault there
    ├── ModelError                        training / evaluation / export of the reference model
    ├── RollbackError                     a fault could not be reverted (never swallowed)
    ├── BackupError                       a model backup is missing or damaged, or a restore
    │                                     did not verify
    ├── HistoryError                      the drill history store cannot be opened, migrated,
    │                                     read or written (its URL shown without credentials)
    ├── UnsupportedFaultError (ConfigError) the target cannot perform this fault (e.g. remote GPU)
    └── DrillAssertionError (AssertionError)
        ├── SLOViolation                  an objective failed; carries the verdict
        │   └── ScheduleViolation         a fault schedule broke an invariant; carries the
        │                                 minimal schedule's run and its replay file
        ├── DrillInconclusive             the measurement cannot be trusted; carries the verdict
        ├── SteadyStateDeviated           a steady-state hypothesis did not hold
        └── GuardrailTripped              a stop condition aborted the drill; faults rolled back

Messages are one line: what is wrong, then how to fix it. Where a process log
explains the failure, its tail is attached with ``add_note``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BackupError",
    "ChaosrecError",
    "ConfigError",
    "DrillAssertionError",
    "DrillInconclusive",
    "EvictionBlocked",
    "GuardrailTripped",
    "HistoryError",
    "KubernetesError",
    "MissingExtraError",
    "ModelError",
    "ModelLoadError",
    "PortInUseError",
    "ProcessStartError",
    "RollbackError",
    "SLOViolation",
    "ScheduleViolation",
    "SetupError",
    "StackError",
    "SteadyStateDeviated",
    "TargetBusyError",
    "TargetNotAllowedError",
    "ToolNotFoundError",
    "ToxiproxyError",
    "UnknownTargetError",
    "UnsupportedFaultError",
]


class ChaosrecError(Exception):
    """Base class of every error chaosrec raises deliberately."""


class ConfigError(ChaosrecError, ValueError):
    """An argument, option, topology or profile is invalid; nothing was started or injected."""


class UnknownTargetError(ConfigError):
    """A fault or lookup named a region, replica or proxy that the topology does not have."""


class TargetNotAllowedError(ConfigError):
    """A URL chaosrec was about to act on is not on loopback and the run did not allow
    its host; nothing was injected. The message says how to allow it."""


class SetupError(ChaosrecError):
    """A tool chaosrec needs is missing or could not be installed."""


class ToolNotFoundError(SetupError):
    """A required executable (toxiproxy-server, tritonserver, go) could not be found."""


class MissingExtraError(SetupError, ImportError):
    """An optional dependency is not installed. The message says which feature needs
    it and the command that installs it: ``pip install 'chaosrec[EXTRA]'``."""

    def __init__(self, feature: str, extra: str, package: str) -> None:
        super().__init__(
            f"{feature} needs {package}, which is not installed; install it with "
            f"pip install 'chaosrec[{extra}]'"
        )
        self.extra = extra
        self.package = package


class StackError(ChaosrecError):
    """The embedded stack could not be started, supervised or stopped."""


class PortInUseError(StackError):
    """A port that was asked for explicitly is already bound by another process."""


class ProcessStartError(StackError):
    """A supervised process exited early or did not become ready in time; its log tail is noted."""


class ModelLoadError(StackError):
    """Triton started but could not load the model; Triton's log tail is noted."""


class ToxiproxyError(ChaosrecError):
    """The Toxiproxy API is unreachable or answered with an error."""


class KubernetesError(ChaosrecError):
    """The Kubernetes API refused a request a fault made (RBAC, a missing object, a
    budget); the message names the request and the API's answer. ``forbidden`` is True
    when RBAC refused it (the API changed nothing)."""

    forbidden: bool = False


class EvictionBlocked(KubernetesError):
    """Draining a node stopped because an eviction was refused (HTTP 429): a
    PodDisruptionBudget allows no disruption now. ``pod`` is the refused pod, ``budget``
    the budget (when the API named it), ``node`` the node; pods evicted before it stay
    evicted and the node is uncordoned by the fault's rollback."""

    def __init__(self, message: str, *, pod: str, budget: str, node: str) -> None:
        super().__init__(message)
        self.pod = pod
        self.budget = budget
        self.node = node


class TargetBusyError(ChaosrecError):
    """Another live chaosrec session holds a fault on this target (a Toxiproxy proxy
    shared between sessions): the fault was refused before anything was injected. The
    message names the holder (host, pid)."""


class ModelError(ChaosrecError):
    """Training, evaluating or exporting the reference recommender failed."""


class RollbackError(ChaosrecError):
    """A fault could not be reverted; the system may still be faulted. Never swallowed."""


class BackupError(ChaosrecError):
    """A model backup is missing or damaged, or a restored model folder did not verify
    against the backup's checksums; the message names the files."""


class HistoryError(ChaosrecError):
    """The drill history store (SQLite file or PostgreSQL database) could not be opened,
    migrated, read or written; or it was written by a newer chaosrec whose schema this one
    cannot use. The message names the store by its URL without credentials; the run's
    drills and reports are not affected."""


class UnsupportedFaultError(ConfigError):
    """The target cannot perform this fault (e.g. GPU faults on a remote deployment)."""


class DrillAssertionError(ChaosrecError, AssertionError):
    """A drill's check failed; ``verdict`` holds the measurements (may be None)."""

    def __init__(self, message: str, verdict: object = None) -> None:
        super().__init__(message)
        self.verdict = verdict


class SLOViolation(DrillAssertionError):
    """At least one service-level objective failed; the message shows measured vs target."""


class ScheduleViolation(SLOViolation):
    """A fault schedule broke an invariant (the Hypothesis fault-schedule search):
    ``run`` holds the minimal failing run (a ``chaosrec.schedules.ScheduleRun``) and
    ``path`` the JSON file that replays it (None if it was not saved)."""

    def __init__(
        self, message: str, verdict: object = None, *, run: object, path: Path | None
    ) -> None:
        super().__init__(message, verdict)
        self.run = run
        self.path = path


class DrillInconclusive(DrillAssertionError):
    """The drill's numbers cannot be trusted (fault never met traffic, too few samples)."""


class SteadyStateDeviated(DrillAssertionError):
    """A steady-state hypothesis did not hold; the message lists each probe and tolerance."""


class GuardrailTripped(DrillAssertionError):
    """A stop condition (guardrail) became true, so the drill was aborted and every fault rolled
    back. The message starts with ``guardrail tripped:`` and names the condition and the value."""
