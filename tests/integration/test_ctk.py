"""Chaos Toolkit experiments run in process through chaoslib on the session's embedded
stack, and collected by pytest from a folder (pytester, against the same stack)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosrec.core.paths import cache_dir
from chaosrec.ctk import context, runner
from chaosrec.errors import SteadyStateDeviated

pytestmark = pytest.mark.integration

EXPERIMENTS = Path(__file__).parents[2] / "experiments"
REGION_OUTAGE = EXPERIMENTS / "region-outage.yaml"


def _variant(tmp_path: Path, change: Any, name: str = "variant.yaml") -> Path:
    experiment = yaml.safe_load(REGION_OUTAGE.read_text(encoding="utf-8"))
    change(experiment)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(experiment, sort_keys=False), encoding="utf-8")
    return path


def _all_replicas_healthy(experiment: dict[str, Any]) -> None:
    """Impossible during a region outage: every replica of the 2 x 2 stack healthy."""
    probe = experiment["steady-state-hypothesis"]["probes"][2]
    assert probe["name"] == "healthy-replicas"
    probe["tolerance"] = {"type": "range", "range": [4, 1000]}


def _probe(journal: dict[str, Any], when: str, name: str) -> dict[str, Any]:
    probes = journal["steady_states"][when]["probes"]
    found: dict[str, Any] = next(p for p in probes if p["activity"]["name"] == name)
    return found


def test_region_outage_experiment_passes_and_rolls_back(recsys: Any, clean_stack: Any) -> None:
    journal = runner.run(REGION_OUTAGE, target=recsys)
    assert journal["status"] == "completed" and not journal["deviated"], runner.failures(journal)
    # the after-hypothesis ran during the outage: only region-b's two replicas were healthy
    assert _probe(journal, "after", "healthy-replicas")["output"] == 2
    assert _probe(journal, "after", "availability")["output"] >= 0.99
    assert [r["status"] for r in journal["rollbacks"]] == ["succeeded", "succeeded"]
    assert journal["rollbacks"][0]["output"] == ["region_outage(region-a, mode=refuse)"]
    assert clean_stack.toxiproxy.is_clean()
    assert context.current() is None  # the in-process binding was released


def test_an_impossible_tolerance_deviates_and_still_rolls_back(
    recsys: Any, clean_stack: Any, tmp_path: Path
) -> None:
    journal = runner.run(_variant(tmp_path, _all_replicas_healthy), target=recsys)
    assert journal["deviated"] is True
    assert _probe(journal, "before", "healthy-replicas")["tolerance_met"] is True
    assert _probe(journal, "after", "healthy-replicas")["tolerance_met"] is False
    assert journal["rollbacks"][0]["status"] == "succeeded"
    assert clean_stack.toxiproxy.is_clean()
    with pytest.raises(SteadyStateDeviated, match="'healthy-replicas' measured 2"):
        runner.check_journal(journal, "variant.yaml")


def test_an_activity_that_raises_still_rolls_every_fault_back(
    recsys: Any, clean_stack: Any, tmp_path: Path
) -> None:
    def then_fail(experiment: dict[str, Any]) -> None:
        experiment["method"].append(
            {
                "type": "action",
                "name": "lose-an-unknown-replica",
                "provider": {
                    "type": "python",
                    "module": "chaosrec.ctk.actions",
                    "func": "inject_gpu_loss",
                    "arguments": {"replica": "region-z.r0"},
                },
            }
        )
        del experiment["steady-state-hypothesis"]

    journal = runner.run(_variant(tmp_path, then_fail), target=recsys)
    assert [r["status"] for r in journal["run"]] == ["succeeded", "failed"]
    assert clean_stack.toxiproxy.is_clean()
    with pytest.raises(AssertionError, match=r"'lose-an-unknown-replica' failed: .*region-z"):
        runner.check_journal(journal, "variant.yaml")


def test_pytest_collects_each_experiment_as_a_drill(
    pytester: pytest.Pytester, recsys: Any, clean_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's own folder (``--chaosrec-experiments``), run against a remote target (the
    session's stack through its gateway and Toxiproxy): one test per file, marked drill,
    the failing one says which probe deviated, the journal is kept for reports."""
    monkeypatch.setenv("CHAOSREC_CACHE_DIR", str(cache_dir()))
    folder = pytester.path / "my-experiments"
    folder.mkdir()
    (folder / "region-outage.yaml").write_text(REGION_OUTAGE.read_text(encoding="utf-8"))
    experiment = yaml.safe_load(REGION_OUTAGE.read_text(encoding="utf-8"))
    _all_replicas_healthy(experiment)
    (folder / "impossible.yaml").write_text(yaml.safe_dump(experiment), encoding="utf-8")
    (pytester.path / "target.yaml").write_text(
        f"gateway_url: {recsys.gateway_url}\ntoxiproxy_url: {recsys.toxiproxy.api_url}\n"
    )
    pytester.makeconftest(
        """
import pytest
from chaosrec.plugin_state import JOURNAL_KEY

@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    journal = item.stash.get(JOURNAL_KEY, None)
    if journal is not None:
        print(f"\\nJOURNAL {item.name} status={journal['status']} deviated={journal['deviated']}")
"""
    )
    result = pytester.runpytest_subprocess(
        "my-experiments",
        "--chaosrec-experiments=my-experiments",
        "--chaosrec-target=target.yaml",
        "-m",
        "drill",
        "-p",
        "no:cacheprovider",
        "-s",
        "-v",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*impossible*FAILED*",
            "*region-outage*PASSED*",
            "*SteadyStateDeviated: impossible.yaml: steady state after the method: probe "
            "'healthy-replicas' measured 2*",
        ]
    )
    result.stdout.fnmatch_lines(["*JOURNAL impossible status=completed deviated=True*"])
    result.stdout.fnmatch_lines(["*JOURNAL region-outage status=completed deviated=False*"])
    assert clean_stack.toxiproxy.is_clean()


def test_a_missing_experiments_folder_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--chaosrec-experiments=nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--chaosrec-experiments='nowhere': no such folder*"])


def test_a_steady_state_missed_before_the_method_fails_without_injecting(
    recsys: Any, clean_stack: Any, tmp_path: Path
) -> None:
    """chaoslib 1.44 calls this run "completed" (and ``chaos run`` exits 0); chaosrec's
    control marks it failed, and nothing was injected."""

    def impossible(experiment: dict[str, Any]) -> None:
        experiment["steady-state-hypothesis"]["probes"][0]["tolerance"]["range"] = [1.01, 2]

    journal = runner.run(_variant(tmp_path, impossible), target=recsys)
    assert journal["status"] == "failed"
    assert journal["run"] == []  # the method never ran
    assert _probe(journal, "before", "availability")["tolerance_met"] is False
    assert clean_stack.toxiproxy.is_clean()
    with pytest.raises(SteadyStateDeviated, match="steady state before the method"):
        runner.check_journal(journal, "variant.yaml")
