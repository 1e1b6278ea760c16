"""The ``chaos`` command line on chaosrec's experiments, as an SRE runs it: validate,
discover, and ``chaos run`` against a stack started by ``chaosrec stack up``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosrec.ctk.runner import failures

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))
CHAOS = [str(Path(sys.executable).parent / "chaos"), "--no-version-check", "--no-log-file"]


def _chaos(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180) -> Any:
    return subprocess.run(
        [*CHAOS, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_chaos_validate_passes_offline(path: Path, tmp_path: Path) -> None:
    result = _chaos("validate", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "experiment syntax and semantic look valid" in result.stderr
    assert not (tmp_path / "chaostoolkit.log").exists()


def test_chaos_validate_rejects_a_typo_in_an_argument(tmp_path: Path) -> None:
    experiment = yaml.safe_load((ROOT / "experiments" / "region-outage.yaml").read_text())
    experiment["method"][0]["provider"]["arguments"]["regoin"] = "region-a"
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(experiment))
    result = _chaos("validate", str(path), cwd=tmp_path)
    assert result.returncode != 0
    assert "regoin" in result.stderr


def test_chaos_discover_lists_chaosrec(tmp_path: Path) -> None:
    result = _chaos("discover", "--no-install", "--no-system-info", "chaosrec", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    discovery = json.loads((tmp_path / "discovery.json").read_text())
    names = {a["name"] for a in discovery["activities"]}
    assert {"inject_region_outage", "rollback_all", "availability", "recall_at_10"} <= names


@pytest.fixture(scope="module")
def stack_up() -> Iterator[tuple[str, dict[str, Any]]]:
    """``chaosrec stack up --topology quick`` (2 regions x 1 replica) under its own name."""
    name = f"ctk-test-{os.getpid()}"
    env = dict(os.environ)

    def chaosrec(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "chaosrec", "stack", *args, "--name", name],
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
            check=False,
        )

    up = chaosrec("up", "--topology", "quick")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads(chaosrec("status", "--json").stdout)
        yield name, state
    finally:
        chaosrec("down")


def _run_env(name: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAOSREC_")}
    env["CHAOSREC_STACK"] = name  # the experiments read it (configuration: env, default)
    if "CHAOSREC_CACHE_DIR" in os.environ:
        env["CHAOSREC_CACHE_DIR"] = os.environ["CHAOSREC_CACHE_DIR"]
    return env


def _toxiproxy_clean(state: dict[str, Any]) -> bool:
    from chaosrec.adapters.toxiproxy import ToxiproxyClient

    client = ToxiproxyClient(state["toxiproxy"]["api_url"])
    try:
        return client.is_clean()
    finally:
        client.close()


def test_region_outage_passes_under_chaos_run_then_deviates_when_impossible(
    stack_up: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    name, state = stack_up
    source = ROOT / "experiments" / "region-outage.yaml"
    ok = _chaos(
        "run",
        "--rollback-strategy=always",
        "--journal-path",
        str(tmp_path / "journal.json"),
        str(source),
        cwd=tmp_path,
        env=_run_env(name),
    )
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert ok.returncode == 0, failures(journal)
    assert journal["status"] == "completed" and journal["deviated"] is False
    assert _toxiproxy_clean(state)

    # every replica healthy: true at steady state, impossible while a region is out
    experiment = yaml.safe_load(source.read_text())
    replicas = len(state["replicas"])
    experiment["steady-state-hypothesis"]["probes"][2]["tolerance"]["range"] = [replicas, 1000]
    impossible = tmp_path / "impossible.yaml"
    impossible.write_text(yaml.safe_dump(experiment))
    bad = _chaos(
        "run",
        "--rollback-strategy=always",
        "--journal-path",
        str(tmp_path / "impossible.json"),
        str(impossible),
        cwd=tmp_path,
        env=_run_env(name),
    )
    journal = json.loads((tmp_path / "impossible.json").read_text())
    assert bad.returncode != 0
    assert journal["deviated"] is True, failures(journal)
    after = {p["activity"]["name"]: p for p in journal["steady_states"]["after"]["probes"]}
    assert after["healthy-replicas"]["tolerance_met"] is False
    assert after["healthy-replicas"]["output"] == replicas // 2  # only region-b was healthy
    assert [r["status"] for r in journal["rollbacks"]] == ["succeeded", "succeeded"]
    assert _toxiproxy_clean(state)
    assert not (tmp_path / "chaostoolkit.log").exists()


def test_no_stack_is_a_clear_error_before_any_fault(tmp_path: Path) -> None:
    env = _run_env("no-such-stack")
    result = _chaos("run", str(ROOT / "experiments" / "region-outage.yaml"), cwd=tmp_path, env=env)
    assert result.returncode != 0
    assert "no running chaosrec stack 'no-such-stack'" in result.stderr
    assert "Action: region-a-outage" not in result.stderr


def test_ctrl_c_during_a_fault_rolls_it_back(
    stack_up: tuple[str, dict[str, Any]],
    tmp_path: Path,
    wait_for: Callable[[Callable[[], bool], float, str], float],
) -> None:
    name, state = stack_up
    experiment = {
        "version": "1.0.0",
        "title": "a long outage interrupted by Ctrl-C",
        "description": "the operator presses Ctrl-C while region-a is out",
        "method": [
            {
                "type": "action",
                "name": "region-a-outage",
                "provider": {
                    "type": "python",
                    "module": "chaosrec.ctk.actions",
                    "func": "inject_region_outage",
                    "arguments": {"region": "region-a"},
                },
                "pauses": {"after": 120},
            }
        ],
        "rollbacks": [],  # no rollback declared: chaosrec's control still reverts the fault
        "controls": [
            {"name": "chaosrec", "provider": {"type": "python", "module": "chaosrec.ctk.control"}}
        ],
    }
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(experiment))
    proc = subprocess.Popen(
        [*CHAOS, "run", str(path)],
        cwd=tmp_path,
        env={**_run_env(name), "PYTHONFAULTHANDLER": "1"},  # SIGABRT: every thread's stack
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: not _toxiproxy_clean(state), 60, "the region outage")
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # where it hangs, for the failure message
            output, _ = proc.communicate(timeout=30)
            pytest.fail(f"chaos run still running 60 s after Ctrl-C:\n{output[-6000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Received a termination signal (Ctrl-C)" in output
    assert _toxiproxy_clean(state), output[-3000:]
