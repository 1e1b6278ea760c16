"""chaosrec's pytest plugin (entry point ``pytest11``): options, ini keys, markers, fixtures.

Installed with chaosrec, so another project needs no conftest. It only registers
things; the work lives in :mod:`chaosrec.fixtures` and the library below it.

Options (each also an ini key of the same name without dashes)::

    --chaosrec-target=embedded|FILE      the recommender under test (default: embedded)
    --chaosrec-topology=default|quick|FILE   topology of the embedded stack
    --chaosrec-slo-profile=FILE[:NAME]   default objectives for slo.assert_met
    --chaosrec-toxiproxy-url=URL         use this Toxiproxy server instead of starting one
    --chaosrec-search=quick|thorough     how hard the Hypothesis fault-schedule search looks
    --chaosrec-allow-hosts=PATTERNS      non-loopback hosts faults and load may reach
                                         (default: none; also $CHAOSREC_ALLOW_HOSTS)
    --chaosrec-history=URL|off           the drill history store: sqlite:///FILE or
                                         postgresql://...; also $CHAOSREC_HISTORY
                                         (default: sqlite:///.chaosrec/history.sqlite)
    --chaosrec-fail-on-regression        a drill that regressed against its history
                                         fails the run (default: reported only)
    --chaosrec-kubeconfig=FILE           the kube_cluster fixture uses this cluster instead
                                         of starting the local control plane

The regression rule's ini keys (no options): ``chaosrec_regression_runs`` (the history,
default 10 runs), ``chaosrec_regression_min_runs`` (judged from, default 5) and
``chaosrec_regression_busy_lag_ms`` (the load generator's p99 lag over which a run is
too busy to judge, default 5; ``off``).

SIGTERM and SIGHUP (a CI job's timeout or cancellation, a closed terminal) end the
session like Ctrl-C does: the current test stops, every fixture tears down, so every
fault is rolled back before the process exits.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from chaosrec.fixtures import (  # noqa: F401 - registering the fixtures is the point
    chaos,
    drill,
    kube_cluster,
    load,
    recsys,
    slo,
    steady_state,
    toxiproxy,
)
from chaosrec.plugin_state import DRILL_KEY, SETTINGS_KEY, Settings

if TYPE_CHECKING:
    from chaosrec.adapters.history.url import HistoryURL
    from chaosrec.slo.regression import RegressionRule

# The two other fronts' pytest halves; each registers its own options and hooks and keeps
# its optional dependencies (chaoslib, allure, matplotlib) out of import time.
pytest_plugins = ("chaosrec.ctk.pytest_experiments", "chaosrec.reporting.pytest_reporting")

_OPTIONS = (
    ("target", "embedded", "the recommender under test: 'embedded' or a target YAML file"),
    ("topology", "default", "topology of the embedded stack: default, quick or a YAML file"),
    ("slo_profile", "", "SLO profile YAML (FILE or FILE:NAME) giving default objectives"),
    ("toxiproxy_url", "", "use the Toxiproxy server at this URL instead of starting one"),
    ("search", "quick", "fault-schedule search profile: quick (the drill) or thorough"),
    (
        "allow_hosts",
        "",
        "non-loopback hosts (shell-style patterns, comma-separated) that faults and load may "
        "reach; also $CHAOSREC_ALLOW_HOSTS",
    ),
    (
        "kubeconfig",
        "",
        "kubeconfig of the cluster kube_cluster uses (its API server must be an allowed host); "
        "default: chaosrec's local control plane",
    ),
    (
        "history",
        "sqlite:///.chaosrec/history.sqlite",
        "drill history store: sqlite:///FILE (relative to the rootdir), sqlite:////ABS/FILE, "
        "postgresql://USER@HOST:PORT/DB or off; also $CHAOSREC_HISTORY",
    ),
)
_FAIL_ON_REGRESSION = (
    "fail the run when a drill regressed against its history, even if its SLO passed"
)
# the regression rule (chaosrec.slo.regression.RegressionRule), ini keys only
_RULE_KEYS = (
    ("runs", "10", "regression rule: how many of a drill's latest passed runs make its history"),
    ("min_runs", "5", "regression rule: fewest earlier runs before a drill is judged"),
    (
        "busy_lag_ms",
        "5",
        "regression rule: a run whose load generator lagged more than this (p99, ms) is too "
        "busy to judge; off: judge every run",
    ),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaosrec", "chaosrec disaster-recovery drills")
    for name, default, text in _OPTIONS:
        flag = "--chaosrec-" + name.replace("_", "-")
        group.addoption(flag, dest=f"chaosrec_{name}", default=None, help=f"{text}.")
        parser.addini(
            f"chaosrec_{name}", f"{text} (default: {default or 'none'}).", default=default
        )
    group.addoption(
        "--chaosrec-fail-on-regression",
        dest="chaosrec_fail_on_regression",
        action="store_true",
        default=None,
        help=f"{_FAIL_ON_REGRESSION}.",
    )
    parser.addini(
        "chaosrec_fail_on_regression", f"{_FAIL_ON_REGRESSION} (default: false).", type="bool",
        default=False,
    )  # fmt: skip
    for key, default, text in _RULE_KEYS:
        parser.addini(
            f"chaosrec_regression_{key}", f"{text} (default: {default}).", default=default
        )


def _option(config: pytest.Config, name: str) -> str:
    value = config.getoption(f"chaosrec_{name}")
    if value is None:
        value = config.getini(f"chaosrec_{name}")
    return str(value or "")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "drill: a disaster-recovery drill (select with -m drill)")
    config.addinivalue_line(
        "markers",
        "kubernetes: needs a Kubernetes cluster (the kube_cluster fixture: chaosrec's local "
        "control plane unless --chaosrec-kubeconfig)",
    )
    config.stash[SETTINGS_KEY] = _settings(config)
    _teardown_on_termination(config)


_TERMINATING = ("SIGTERM", "SIGHUP")


def _teardown_on_termination(config: pytest.Config) -> None:
    """Turn SIGTERM and SIGHUP into pytest's own orderly exit (teardown included), for
    signals nobody else handles; the previous handlers come back at unconfigure."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    previous: dict[int, Any] = {}

    def terminate(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        pytest.exit(
            f"chaosrec: {name} received; stopping the session, every fault is rolled back",
            returncode=128 + signum,
        )

    for name in _TERMINATING:
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) in (signal.SIG_DFL, None):
            previous[signum] = signal.signal(signum, terminate)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    config.add_cleanup(restore)


def _settings(config: pytest.Config) -> Settings:
    """Validate the options now, so a typo fails before any test (or fault) runs."""
    from chaosrec.core.topology import BUILTIN_TOPOLOGIES

    target = _option(config, "target") or "embedded"
    if target != "embedded" and not Path(target).is_file():
        raise pytest.UsageError(
            f"--chaosrec-target={target!r}: use 'embedded' or the path of a target YAML file"
        )
    topology = _option(config, "topology") or "default"
    if topology not in BUILTIN_TOPOLOGIES and not Path(topology).is_file():
        raise pytest.UsageError(
            f"--chaosrec-topology={topology!r}: use one of {sorted(BUILTIN_TOPOLOGIES)} "
            "or the path of a topology YAML file"
        )
    url = _option(config, "toxiproxy_url") or None
    if url is not None and not url.startswith(("http://", "https://")):
        raise pytest.UsageError(
            f"--chaosrec-toxiproxy-url={url!r}: must be an http:// URL of a Toxiproxy API"
        )
    from chaosrec.core.guard import TargetGuard
    from chaosrec.errors import ConfigError

    guard = TargetGuard.from_env(_option(config, "allow_hosts"))
    try:
        if url is not None:
            guard.check_url(url, "--chaosrec-toxiproxy-url")
        if target != "embedded":
            _check_target_file(Path(target), guard)
    except ConfigError as err:
        raise pytest.UsageError(str(err)) from err
    profile_spec = _option(config, "slo_profile")
    profile: dict[str, Any] = {}
    if profile_spec:
        from chaosrec.slo.profile import load_slo_profile

        try:
            profile = load_slo_profile(profile_spec)
        except ConfigError as err:
            raise pytest.UsageError(f"--chaosrec-slo-profile: {err}") from err
    search = _option(config, "search") or "quick"
    from chaosrec.schedules.profiles import SEARCH_PROFILES

    if search not in SEARCH_PROFILES:
        raise pytest.UsageError(
            f"--chaosrec-search={search!r}: use one of {sorted(SEARCH_PROFILES)}"
        )
    kubeconfig = _option(config, "kubeconfig") or None
    if kubeconfig is not None:
        from chaosrec.adapters.kubernetes.api import kubeconfig_server

        try:
            guard.check_url(
                kubeconfig_server(Path(kubeconfig)), f"--chaosrec-kubeconfig={kubeconfig}"
            )
        except ConfigError as err:
            raise pytest.UsageError(str(err)) from err
    history = _history(config)
    regression = _regression_rule(config)
    fail_on_regression = bool(
        config.getoption("chaosrec_fail_on_regression")
        or config.getini("chaosrec_fail_on_regression")
    )
    return Settings(
        history=history,
        regression=regression,
        fail_on_regression=fail_on_regression,
        kubeconfig=kubeconfig,
        search=search,
        target=target,
        topology=topology,
        slo_profile=profile,
        slo_profile_source=profile_spec or None,
        toxiproxy_url=url,
        allow_hosts=guard.allow_hosts,
    )


def _history(config: pytest.Config) -> HistoryURL | None:
    """The history store's URL: the option, else ``$CHAOSREC_HISTORY``, else the ini key,
    else ``.chaosrec/history.sqlite`` under the rootdir; None when ``off``. Checked here
    (syntax, psycopg for PostgreSQL); the store is opened after collection."""
    import os

    from chaosrec.adapters.history.url import parse_history_url
    from chaosrec.errors import ConfigError

    value, source = config.getoption("chaosrec_history"), "--chaosrec-history"
    if value is None and os.environ.get("CHAOSREC_HISTORY"):
        value, source = os.environ["CHAOSREC_HISTORY"], "CHAOSREC_HISTORY"
    if value is None:
        value, source = config.getini("chaosrec_history"), "chaosrec_history (ini)"
    try:
        url = parse_history_url(str(value), base=config.rootpath, source=source)
        if url is not None and url.scheme == "postgresql":
            from chaosrec.core.extras import require

            require("psycopg", extra="history", feature=f"{source}={url.shown}")
    except (ConfigError, ImportError) as err:
        raise pytest.UsageError(str(err)) from err
    return url


def _regression_rule(config: pytest.Config) -> RegressionRule:
    """The regression rule from the ini keys (one line naming the key when one is wrong)."""
    from chaosrec.errors import ConfigError
    from chaosrec.slo.regression import RegressionRule

    values: dict[str, Any] = {}
    for key, kind in (("runs", int), ("min_runs", int), ("busy_lag_ms", float)):
        raw = str(config.getini(f"chaosrec_regression_{key}")).strip()
        if key == "busy_lag_ms" and raw.lower() in ("off", "none"):
            values[key] = None
            continue
        try:
            values[key] = kind(raw)
        except ValueError:
            what = "a whole number" if kind is int else "a number of ms, or off"
            raise pytest.UsageError(
                f"chaosrec_regression_{key}={raw!r} (ini): use {what}"
            ) from None
    try:
        return RegressionRule(**values)
    except ConfigError as err:
        raise pytest.UsageError(f"chaosrec_regression_* (ini): {err}") from err


def _check_target_file(path: Path, guard: Any) -> None:
    """Every URL of a remote target file must be on an allowed host (before any test)."""
    from chaosrec.drill.target import load_remote_config

    data = load_remote_config(path)
    for key in ("gateway_url", "toxiproxy_url"):
        if isinstance(data.get(key), str):
            guard.check_url(data[key], f"{path}: {key}")
    for replica, triton in (data.get("triton_urls") or {}).items():
        guard.check_url(str(triton), f"{path}: triton_urls.{replica}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if call.when != "call":
        return
    recorder = item.stash.get(DRILL_KEY, None)
    if recorder is not None:
        report.user_properties.append(("chaosrec_drill", recorder.to_dict()))
    from chaosrec.errors import DrillInconclusive

    if call.excinfo is not None and call.excinfo.errisinstance(DrillInconclusive):
        report.user_properties.append(("chaosrec_outcome", "inconclusive"))


# The drill table at the end of the run is printed by chaosrec.reporting.pytest_reporting.
