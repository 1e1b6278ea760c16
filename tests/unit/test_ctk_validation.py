"""The Chaos Toolkit front without a stack: experiments validate, bad input fails early
and clearly, discovery lists every action and probe, imports stay light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosrec.ctk import actions, context, control, probes, runner
from chaosrec.errors import ConfigError

EXPERIMENTS = sorted((Path(__file__).parents[2] / "experiments").glob("*.yaml"))
REGION_OUTAGE = Path(__file__).parents[2] / "experiments" / "region-outage.yaml"


@pytest.fixture(autouse=True)
def no_session() -> Any:
    """Every test starts and ends with no Chaos Toolkit session in this process."""
    context.bind(None)
    yield
    context.bind(None)


def _edited(tmp_path: Path, change: Any, name: str = "edited.yaml") -> Path:
    experiment = yaml.safe_load(REGION_OUTAGE.read_text(encoding="utf-8"))
    change(experiment)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(experiment), encoding="utf-8")
    return path


def test_the_catalog_has_the_dr_scenarios() -> None:
    names = {p.stem for p in EXPERIMENTS}
    assert {
        "region-outage",
        "gpu-lost",
        "replica-crash",
        "cross-region-latency",
        "bad-model-version",
        "total-outage-fallback",
    } <= names


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_every_experiment_validates_and_rolls_everything_back(path: Path) -> None:
    experiment = runner.load(path)
    runner.validate(experiment, path.name)
    hypothesis = experiment["steady-state-hypothesis"]
    assert hypothesis["probes"] and all("tolerance" in p for p in hypothesis["probes"])
    assert experiment["method"]
    funcs = [r["provider"]["func"] for r in experiment["rollbacks"]]
    assert "rollback_all" in funcs
    modules = [c["provider"]["module"] for c in experiment.get("controls", [])]
    assert "chaosrec.ctk.control" in modules


def test_an_unknown_function_fails_before_anything_runs(tmp_path: Path) -> None:
    def typo(e: dict[str, Any]) -> None:
        e["method"][0]["provider"]["func"] = "inject_region_outgae"

    with pytest.raises(ConfigError, match="inject_region_outgae"):
        runner.run(_edited(tmp_path, typo))
    assert context.current() is None  # no target resolved, nothing injected


def test_an_unknown_argument_fails_before_anything_runs(tmp_path: Path) -> None:
    def typo(e: dict[str, Any]) -> None:
        e["method"][0]["provider"]["arguments"] = {"region": "region-a", "mdoe": "refuse"}

    with pytest.raises(ConfigError, match="mdoe"):
        runner.run(_edited(tmp_path, typo))
    assert context.current() is None


def test_a_malformed_file_fails_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("title: [unclosed\nmethod: -\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.yaml"):
        runner.run(path)
    assert context.current() is None


def test_a_missing_file_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        runner.load(tmp_path / "nope.yaml")


def test_an_argument_using_a_missing_configuration_key_fails(tmp_path: Path) -> None:
    def variable(e: dict[str, Any]) -> None:
        e["method"][0]["provider"]["arguments"]["region"] = "${home_region}"

    with pytest.raises(ConfigError, match="no key 'home_region'"):
        runner.run(_edited(tmp_path, variable))
    assert context.current() is None


def test_a_configuration_from_a_missing_env_var_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECSYS_GATEWAY", raising=False)

    def env(e: dict[str, Any]) -> None:
        e["configuration"] = {"chaosrec_gateway_url": {"type": "env", "key": "RECSYS_GATEWAY"}}

    with pytest.raises(ConfigError, match="RECSYS_GATEWAY"):
        runner.run(_edited(tmp_path, env))
    assert context.current() is None


def test_no_running_stack_names_what_to_configure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAOSREC_CACHE_DIR", str(tmp_path))
    for key in context.ENV_KEYS.values():
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ConfigError) as excinfo:
        runner.run(REGION_OUTAGE)
    message = str(excinfo.value)
    assert "chaosrec stack up" in message
    assert "chaosrec_gateway_url" in message and "CHAOSREC_TARGET" in message
    assert context.current() is None


def test_a_bad_target_url_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="chaosrec_gateway_url"):
        context.session({"chaosrec_gateway_url": "localhost:8080"})


def test_rollback_all_without_a_session_does_nothing() -> None:
    assert actions.rollback_all() == []


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"guardrails": [{"error_rate_abov": 0.1}]}, "error_rate_abov"),
        ({"guardrails": [{"error_rate_above": 1.5}]}, "1.5"),
        ({"guardrails": [{"availability_below": "high"}]}, "must be a number"),
        ({"guardrails": "error_rate_above"}, "list of mappings"),
        ({"guardrail": []}, "unknown argument"),
    ],
    ids=["unknown-condition", "fraction-above-1", "not-a-number", "not-a-list", "bad-arg"],
)
def test_bad_guardrails_fail_validation(arguments: dict[str, Any], match: str) -> None:
    from chaoslib.exceptions import InvalidActivity

    ctl = {
        "name": "chaosrec",
        "provider": {"type": "python", "module": "x", "arguments": arguments},
    }
    with pytest.raises(InvalidActivity, match=match):
        control.validate_control(ctl)


def test_bad_guardrails_fail_chaos_validation_of_an_experiment(tmp_path: Path) -> None:
    def bad(e: dict[str, Any]) -> None:
        e["controls"][0]["provider"]["arguments"] = {"guardrails": [{"latency_above": 3}]}

    with pytest.raises(ConfigError, match="latency_above"):
        runner.run(_edited(tmp_path, bad))


def test_discovery_lists_every_action_and_probe_with_arguments_and_docs() -> None:
    import chaosrec

    found = chaosrec.discover(discover_system=False)
    by_name = {a["name"]: a for a in found["activities"]}
    assert {a["name"] for a in found["activities"] if a["type"] == "action"} == set(actions.__all__)
    assert {a["name"] for a in found["activities"] if a["type"] == "probe"} == set(probes.__all__)
    outage = by_name["inject_region_outage"]
    assert outage["doc"] and "region" in outage["doc"]
    assert [a["name"] for a in outage["arguments"]][:2] == ["region", "mode"]
    assert {"name": "mode", "default": "refuse", "type": "string"} in outage["arguments"]


def test_journal_failures_name_the_probe_and_the_activity() -> None:
    journal = {
        "status": "completed",
        "deviated": True,
        "steady_states": {
            "after": {
                "probes": [
                    {
                        "activity": {"name": "latency-p99-ms", "tolerance": [0, 250]},
                        "output": 812.0,
                        "tolerance_met": False,
                    }
                ]
            }
        },
        "run": [
            {"activity": {"name": "lose-gpu"}, "status": "failed", "exception": ["Boom: no\n"]}
        ],
        "rollbacks": [],
    }
    problems = runner.failures(journal)
    assert any("latency-p99-ms" in p and "812" in p for p in problems)
    assert any("lose-gpu" in p and "Boom: no" in p for p in problems)
    from chaosrec.errors import SteadyStateDeviated

    with pytest.raises(SteadyStateDeviated, match="latency-p99-ms"):
        runner.check_journal(journal, "x.yaml")
    runner.check_journal({"status": "completed", "deviated": False, "run": []})


def test_importing_chaosrec_and_its_plugin_never_imports_chaoslib() -> None:
    code = (
        "import sys, chaosrec, chaosrec.plugin;"
        "print(','.join(m for m in ('chaoslib', 'chaosk8s') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_an_unreachable_gateway_interrupts_before_the_method(tmp_path: Path) -> None:
    """The control checks the gateway answers before anything is injected and the journal
    says why the run stopped."""

    def unreachable(e: dict[str, Any]) -> None:
        e["configuration"] = {"chaosrec_gateway_url": "http://127.0.0.1:9"}
        del e["steady-state-hypothesis"]
        e["rollbacks"] = e["rollbacks"][:1]  # rollback_all; wait_healthy would wait 60 s

    journal = runner.run(_edited(tmp_path, unreachable))
    assert journal["status"] == "interrupted"
    assert journal["run"] == []
    problems = runner.failures(journal)
    assert any("127.0.0.1:9 is unreachable" in p for p in problems), problems
    assert context.current() is None


def test_every_fault_of_the_injector_has_a_chaos_toolkit_action() -> None:
    """One vocabulary on both fronts: each fault method of ``Chaos`` (returning a Fault) is
    an ``inject_<name>`` action whose arguments are the method's, minus keyword-only
    direction (and the injector's deprecated keyword aliases)."""
    import inspect

    from chaosrec.faults.injector import Chaos

    faults = [
        name
        for name, method in inspect.getmembers(Chaos, inspect.isfunction)
        if not name.startswith("_") and inspect.signature(method).return_annotation == "Fault"
    ]
    assert len(faults) >= 14
    for name in faults:
        action = getattr(actions, f"inject_{name}", None)
        assert action is not None, f"chaosrec.ctk.actions has no inject_{name}"
        wanted = [
            p
            for p in inspect.signature(getattr(Chaos, name)).parameters
            if p not in ("self", "direction", *_DEPRECATED_ALIASES)
        ]
        given = list(inspect.signature(action).parameters)
        assert set(wanted) <= set(given), (name, wanted, given)


_DEPRECATED_ALIASES = ("jitter", "rate")  # Chaos.latency(jitter=), Chaos.gpu_oom(rate=)
