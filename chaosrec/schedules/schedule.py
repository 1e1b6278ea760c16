"""Fault schedules: which faults hit which targets, how hard, from when to when.

A :class:`FaultSchedule` is plain data (no I/O, no Hypothesis): a horizon and a
tuple of :class:`ScheduledFault`, each a fault kind of :class:`~chaosrec.faults.injector.Chaos`,
a target, its magnitude parameters and a ``[start_s, stop_s)`` window on the load
run's clock. Schedules are checked when built (:class:`~chaosrec.errors.ConfigError`
naming the fault, the field, its value and what is allowed), so a bad schedule
fails before anything is injected, and they round-trip through JSON so a failing
schedule found by the search replays from its file::

    schedule = FaultSchedule(
        horizon_s=3.0,
        faults=(ScheduledFault("region_outage", "region-a", {"mode": "refuse"}, 0.5, 1.5),),
    )
    schedule.save(Path("minimal.json"))
    assert FaultSchedule.load(Path("minimal.json")) == schedule
    print(schedule.describe())
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosrec.core.validation import (
    check_choice,
    check_fraction,
    check_non_negative,
    check_positive,
)
from chaosrec.errors import ConfigError

__all__ = [
    "FAULT_KINDS",
    "SCHEDULE_FORMAT_VERSION",
    "FaultSchedule",
    "ScheduledFault",
]

SCHEDULE_FORMAT_VERSION = 1
_MAX_HORIZON_S = 600.0
_MAX_MS = 60_000.0

# Mirrors chaosrec.faults.injector (REGION_OUTAGE_MODES, GPU_LOSS_MODES) without importing
# the injector: a schedule is data, checkable where no stack or Toxiproxy client exists.
_REGION_OUTAGE_MODES = ("refuse", "blackhole", "kill")
_GPU_LOSS_MODES = ("error", "unload", "kill")

#: fault kind -> {parameter: its default}; every parameter is optional
FAULT_KINDS: Mapping[str, Mapping[str, float | str]] = {
    "latency": {"ms": 200.0, "jitter_ms": 0.0},
    "blackhole": {},
    "down": {},
    "region_outage": {"mode": "refuse"},
    "gpu_loss": {"mode": "error"},
    "gpu_degrade": {"slowdown": 4.0},
    "gpu_oom": {"fraction": 0.3},
    "crash": {},
}

#: parameter names of schedules saved before the units moved into the names
_LEGACY_PARAMS: Mapping[tuple[str, str], str] = {
    ("latency", "jitter"): "jitter_ms",
    ("gpu_oom", "rate"): "fraction",
}


def _check_param(where: str, kind: str, name: str, value: object) -> float | str:
    label = f"{where}.params.{name}"
    if kind == "latency":
        return check_non_negative(label, value, maximum=_MAX_MS)
    if kind == "region_outage":
        return check_choice(label, value, _REGION_OUTAGE_MODES)
    if kind == "gpu_loss":
        return check_choice(label, value, _GPU_LOSS_MODES)
    if kind == "gpu_degrade":
        slowdown = check_positive(label, value, maximum=1000)
        if slowdown <= 1:
            raise ConfigError(f"{label}={value!r} must be > 1 (1 means no slowdown)")
        return slowdown
    if kind == "gpu_oom":
        return check_fraction(label, value)
    raise ConfigError(f"{label}: {kind} takes no parameters")  # pragma: no cover - guarded


@dataclass(frozen=True)
class ScheduledFault:
    """One fault of a schedule: ``kind`` on ``target`` from ``start_s`` to ``stop_s``.

    :param kind: a key of :data:`FAULT_KINDS` (a :class:`~chaosrec.faults.injector.Chaos`
        method name).
    :param target: ``"all"``, a region (``"region-a"``) or a replica (``"region-a.r0"``);
        ``region_outage`` needs a region, ``crash`` a replica or region. Resolved against
        the topology when the schedule is played, before the first fault.
    :param params: magnitudes (see :data:`FAULT_KINDS`); missing ones take the default.
    :param start_s: when the fault is injected, seconds on the load run's clock.
    :param stop_s: when it is reverted (> ``start_s``). A ``crash`` is over at once (the
        supervisor restarts the replica); its window is how long the schedule treats the
        replica as impaired.
    """

    kind: str
    target: str
    params: Mapping[str, float | str] = field(default_factory=dict)
    start_s: float = 0.0
    stop_s: float = 1.0

    def __post_init__(self) -> None:
        self.validate("fault")

    def validate(self, where: str) -> None:
        """Raise :class:`ConfigError` naming ``where`` (e.g. ``faults[2]``) if invalid."""
        check_choice(f"{where}.kind", self.kind, tuple(FAULT_KINDS))
        if not isinstance(self.target, str) or not self.target:
            raise ConfigError(
                f"{where}.target={self.target!r} must be 'all', a region or a replica id"
            )
        if not isinstance(self.params, Mapping):
            raise ConfigError(f"{where}.params={self.params!r} must be a mapping")
        params = {_LEGACY_PARAMS.get((self.kind, k), k): v for k, v in self.params.items()}
        object.__setattr__(self, "params", params)
        allowed = FAULT_KINDS[self.kind]
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise ConfigError(
                f"{where}.params has unknown key(s) {unknown} for {self.kind}; "
                f"allowed: {sorted(allowed) or 'none'}"
            )
        checked = {k: _check_param(where, self.kind, k, v) for k, v in self.params.items()}
        # normalise (ints -> floats) so equality survives a JSON round trip
        object.__setattr__(self, "params", dict(sorted(checked.items())))
        start = check_non_negative(f"{where}.start_s", self.start_s, maximum=_MAX_HORIZON_S)
        stop = check_positive(f"{where}.stop_s", self.stop_s, maximum=_MAX_HORIZON_S)
        if stop <= start:
            raise ConfigError(
                f"{where}: stop_s={self.stop_s!r} must be after start_s={self.start_s!r}"
            )
        object.__setattr__(self, "start_s", start)
        object.__setattr__(self, "stop_s", stop)

    def param(self, name: str) -> float | str:
        """The parameter's value, or its default from :data:`FAULT_KINDS`."""
        return self.params.get(name, FAULT_KINDS[self.kind][name])

    @property
    def duration_s(self) -> float:
        return self.stop_s - self.start_s

    def label(self) -> str:
        """``kind(target, k=v, ...)``: the same shape as the injector's fault labels."""
        shown = "".join(
            f", {k}={v:g}" if isinstance(v, float) else f", {k}={v}"
            for k, v in sorted(self.params.items())
        )
        return f"{self.kind}({self.target}{shown})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "params": dict(self.params),
            "start_s": self.start_s,
            "stop_s": self.stop_s,
        }

    @classmethod
    def from_dict(cls, data: object, where: str = "fault") -> ScheduledFault:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}={data!r} must be a mapping with kind, target, start_s")
        keys = {"kind", "target", "params", "start_s", "stop_s"}
        unknown = sorted(set(data) - keys)
        if unknown:
            raise ConfigError(f"{where} has unknown key(s) {unknown}; allowed: {sorted(keys)}")
        missing = sorted({"kind", "target", "start_s", "stop_s"} - set(data))
        if missing:
            raise ConfigError(f"{where} is missing {missing}")
        fault = cls.__new__(cls)
        object.__setattr__(fault, "kind", data["kind"])
        object.__setattr__(fault, "target", data["target"])
        object.__setattr__(fault, "params", data.get("params") or {})
        object.__setattr__(fault, "start_s", data["start_s"])
        object.__setattr__(fault, "stop_s", data["stop_s"])
        fault.validate(where)
        return fault


@dataclass(frozen=True)
class FaultSchedule:
    """Faults over ``[0, horizon_s]`` of a load run; may be empty (the steady state).

    Faults may overlap, also on the same target: each is injected and reverted on its
    own. Every fault must stop by ``horizon_s``; the runner keeps the load going a
    little longer to see recovery.
    """

    faults: tuple[ScheduledFault, ...] = ()
    horizon_s: float = 4.0

    def __post_init__(self) -> None:
        horizon = check_positive("horizon_s", self.horizon_s, maximum=_MAX_HORIZON_S)
        object.__setattr__(self, "horizon_s", horizon)
        faults = tuple(self.faults)
        for i, fault in enumerate(faults):
            if not isinstance(fault, ScheduledFault):
                raise ConfigError(f"faults[{i}]={fault!r} must be a ScheduledFault")
            if fault.stop_s > horizon + 1e-9:
                raise ConfigError(
                    f"faults[{i}]: stop_s={fault.stop_s:g} is after horizon_s={horizon:g}; "
                    "stop the fault earlier or lengthen the horizon"
                )
        object.__setattr__(self, "faults", faults)

    def __len__(self) -> int:
        return len(self.faults)

    @property
    def last_stop_s(self) -> float:
        """When the last fault is reverted (0 for an empty schedule)."""
        return max((f.stop_s for f in self.faults), default=0.0)

    def describe(self) -> str:
        """One line per fault, in start order, with its window::

        schedule over 3.0 s, 1 fault:
          1. t=0.50-1.50 s  region_outage(region-a, mode=refuse)
        """
        n = len(self.faults)
        head = f"schedule over {self.horizon_s:g} s, {n} fault{'s' if n != 1 else ''}"
        if not n:
            return head + " (steady state)"
        order = sorted(self.faults, key=lambda f: (f.start_s, f.stop_s))
        lines = [
            f"  {i}. t={f.start_s:.2f}-{f.stop_s:.2f} s  {f.label()}"
            for i, f in enumerate(order, start=1)
        ]
        return head + ":\n" + "\n".join(lines)

    # -- JSON -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "chaosrec.fault_schedule",
            "version": SCHEDULE_FORMAT_VERSION,
            "horizon_s": self.horizon_s,
            "faults": [f.to_dict() for f in self.faults],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: object, source: str = "schedule") -> FaultSchedule:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: a fault schedule must be a mapping with 'faults'")
        version = data.get("version", SCHEDULE_FORMAT_VERSION)
        if version != SCHEDULE_FORMAT_VERSION:
            raise ConfigError(
                f"{source}: version={version!r} is not supported; "
                f"this chaosrec reads version {SCHEDULE_FORMAT_VERSION}"
            )
        faults = data.get("faults")
        if not isinstance(faults, list):
            raise ConfigError(f"{source}: 'faults' must be a list (may be empty)")
        horizon = data.get("horizon_s")
        if horizon is None:
            raise ConfigError(f"{source}: 'horizon_s' is required (seconds)")
        try:
            return cls(
                tuple(
                    ScheduledFault.from_dict(f, f"{source}: faults[{i}]")
                    for i, f in enumerate(faults)
                ),
                horizon,
            )
        except ConfigError as err:
            if str(err).startswith(source):
                raise
            raise ConfigError(f"{source}: {err}") from err

    @classmethod
    def from_json(cls, text: str, source: str = "schedule") -> FaultSchedule:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{source}: not valid JSON ({err})") from err
        return cls.from_dict(data, source)

    def save(self, path: Path) -> Path:
        """Write the schedule as JSON (parent folders created); returns ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> FaultSchedule:
        """Read a schedule written by :meth:`save`; errors name the file."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"cannot read fault schedule {path}: {err}") from err
        return cls.from_json(text, str(path))
