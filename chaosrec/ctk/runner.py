"""Run Chaos Toolkit experiments in process through chaoslib, the way chaosrec wants them run.

* Every check happens before anything is injected: the file must parse, chaoslib must
  validate it (a Python activity's function must exist and its arguments must bind to
  the signature), every ``${key}`` an activity uses must be in the configuration, and
  the target must resolve.
* Rollbacks always run (chaoslib's default skips them after a failed run), and the
  chaosrec control is added to every run, so no fault survives a failure, a guardrail
  trip or Ctrl-C.
* :func:`failures` reads a journal and says which probe deviated or which activity failed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from chaosrec.core.extras import require
from chaosrec.errors import ConfigError, GuardrailTripped, RollbackError, SteadyStateDeviated

__all__ = ["SETTINGS", "check_journal", "failures", "load", "run", "validate"]

#: chaoslib settings for every chaosrec run: rollbacks always, the chaosrec control global
SETTINGS: dict[str, Any] = {
    "runtime": {"rollbacks": {"strategy": "always"}},
    "controls": {"chaosrec": {"provider": {"type": "python", "module": "chaosrec.ctk.control"}}},
}
_VAR = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")


def _chaoslib() -> None:
    require("chaoslib", extra="ctk", feature="the Chaos Toolkit front")


def load(path: str | Path) -> dict[str, Any]:
    """Parse an experiment file (YAML or JSON); :class:`ConfigError` names the file."""
    _chaoslib()
    from chaoslib.exceptions import ChaosException
    from chaoslib.loader import load_experiment

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"experiment {path} does not exist")
    try:
        experiment: dict[str, Any] = load_experiment(str(path))
    except ChaosException as err:
        raise ConfigError(f"{path}: cannot load the experiment: {err}") from err
    except Exception as err:  # YAML/JSON parse errors come in many types
        raise ConfigError(f"{path}: malformed experiment file: {err}".splitlines()[0]) from err
    if not isinstance(experiment, dict):
        raise ConfigError(f"{path}: an experiment must be a mapping with title and method")
    return experiment


def _activities(experiment: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    for group in (hypothesis.get("probes"), experiment.get("method"), experiment.get("rollbacks")):
        found += [a for a in group or [] if isinstance(a, dict)]
    return found


def validate(experiment: dict[str, Any], source: str = "experiment") -> None:
    """chaoslib's validation plus chaosrec's checks; :class:`ConfigError` with one line."""
    _chaoslib()
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid

    try:
        ensure_experiment_is_valid(experiment)
    except ChaosException as err:
        raise ConfigError(f"{source}: invalid experiment: {err}") from err
    known = set(experiment.get("configuration") or {}) | set(experiment.get("secrets") or {})
    for activity in _activities(experiment):
        arguments = (activity.get("provider") or {}).get("arguments") or {}
        for name, value in arguments.items():
            for key in _VAR.findall(str(value)):
                if key not in known:
                    raise ConfigError(
                        f"{source}: activity {activity.get('name')!r} argument {name}="
                        f"{value!r} uses ${{{key}}} but the configuration has no key {key!r}; "
                        "add it under configuration"
                    )


def run(
    path: str | Path,
    *,
    target: Any = None,
    configuration: dict[str, Any] | None = None,
    drill: Any = None,
) -> dict[str, Any]:
    """Load, validate and run an experiment in process; returns chaoslib's journal.

    :param target: a :class:`~chaosrec.drill.target.RecsysTarget` to act on (pytest passes its
        ``recsys``); default: resolved from the experiment's configuration.
    :param configuration: values overriding the experiment's configuration.
    :param drill: a :class:`~chaosrec.drill.Drill` recording the run's faults and verdicts.
    """
    from chaosrec.ctk import context

    experiment = load(path)
    validate(experiment, str(path))
    from chaoslib.configuration import load_configuration
    from chaoslib.exceptions import ChaosException
    from chaoslib.run import Runner
    from chaoslib.types import Strategy

    try:
        config = load_configuration(experiment.get("configuration") or {}, configuration)
    except ChaosException as err:
        raise ConfigError(f"{path}: configuration: {err}") from err
    if target is not None:
        context.bind(target)
    else:
        context.reset()
    try:
        current = context.session(config)  # the target must resolve before any fault
        if drill is not None:
            current.chaos.listeners.remove(current.drill.on_fault)
            current.drill = drill
            current.chaos.listeners.append(drill.on_fault)
        with Runner(Strategy.DEFAULT) as runner:
            journal: dict[str, Any] = runner.run(
                experiment,
                settings=SETTINGS,
                experiment_vars=(configuration or {}, {}),
            )
    finally:
        ending = context.current()
        leftovers = [f.label for f in ending.chaos.active()] if ending else []
        if target is not None:
            context.bind(None)
        else:
            context.reset()
    if leftovers:
        raise RollbackError(
            f"{path}: faults still active after the run: {leftovers}; check the target"
        )
    return journal


def failures(journal: dict[str, Any]) -> list[str]:
    """Why a journal is not a clean pass: deviated probes, failed activities, interruption."""
    problems: list[str] = []
    states = journal.get("steady_states") or {}
    for phase in ("before", "after"):
        state = states.get(phase) or {}
        for probe in state.get("probes") or []:
            if probe.get("tolerance_met") is False:
                name = probe.get("activity", {}).get("name")
                tolerance = probe.get("activity", {}).get("tolerance")
                problems.append(
                    f"steady state {phase} the method: probe {name!r} measured "
                    f"{_short(probe.get('output'))}, tolerance {tolerance}"
                )
            elif probe.get("status") == "failed":
                problems.append(
                    f"steady state {phase}: probe {probe.get('activity', {}).get('name')!r} "
                    f"raised {_short(probe.get('exception'))}"
                )
    for section in ("run", "rollbacks"):
        for entry in journal.get(section) or []:
            if entry.get("status") == "failed":
                problems.append(
                    f"{'method' if section == 'run' else 'rollback'} activity "
                    f"{entry.get('activity', {}).get('name')!r} failed: "
                    f"{_short(entry.get('exception'))}"
                )
    extra = journal.get("chaosrec") or {}
    if extra.get("guardrail"):
        problems.append(extra["guardrail"]["message"])
    if extra.get("interrupted"):
        problems.append(f"interrupted before the method: {extra['interrupted']}")
    status = journal.get("status")
    if status not in ("completed", None) and not problems:
        problems.append(f"the run ended with status {status!r}")
    return problems


def check_journal(journal: dict[str, Any], source: str = "experiment") -> None:
    """Raise if the run did not pass: :class:`GuardrailTripped`, :class:`SteadyStateDeviated`
    or an ``AssertionError`` naming the failed activity."""
    problems = failures(journal)
    if not problems:
        return
    text = f"{source}: " + "; ".join(problems)
    guard = (journal.get("chaosrec") or {}).get("guardrail")
    if guard:
        raise GuardrailTripped(text, guard)
    if journal.get("deviated") or any(p.startswith("steady state") for p in problems):
        raise SteadyStateDeviated(text, journal.get("steady_states"))
    raise AssertionError(text)


def _short(value: object, limit: int = 300) -> str:
    if isinstance(value, list):
        lines = "".join(str(v) for v in value).strip().splitlines()
        value = lines[-1] if lines else ""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
