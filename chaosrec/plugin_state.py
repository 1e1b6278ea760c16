"""Per-run plugin state kept in ``config.stash`` (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from chaosrec.adapters.history.url import HistoryURL
from chaosrec.drill import Drill
from chaosrec.slo.regression import RegressionRule

__all__ = ["ANNOUNCED_KEY", "DRILL_KEY", "JOURNAL_KEY", "SETTINGS_KEY", "Settings"]


@dataclass(frozen=True)
class Settings:
    """The validated ``chaosrec`` options of this pytest run."""

    target: str = "embedded"  # or a path to a remote target YAML file
    topology: str = "default"
    slo_profile: dict[str, Any] = field(default_factory=dict)
    slo_profile_source: str | None = None
    toxiproxy_url: str | None = None
    search: str = "quick"  # the fault-schedule search profile (chaosrec.schedules.profiles)
    allow_hosts: tuple[str, ...] = ()  # non-loopback hosts faults and load may reach
    history: HistoryURL | None = None  # the drill history store; None: off
    fail_on_regression: bool = False  # a regressed drill fails the run
    regression: RegressionRule = field(default_factory=RegressionRule)  # the rule's ini keys
    kubeconfig: str | None = None  # the cluster of kube_cluster; None: the local one


SETTINGS_KEY = pytest.StashKey[Settings]()
DRILL_KEY = pytest.StashKey[Drill]()
# The targets were announced on the terminal (once per session, before the first fault).
ANNOUNCED_KEY = pytest.StashKey[bool]()
# The Chaos Toolkit journal of an experiment-based drill, for the report.
JOURNAL_KEY = pytest.StashKey[dict[str, Any]]()
