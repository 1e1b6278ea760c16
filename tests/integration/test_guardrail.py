"""Guardrails on the embedded stack: a stop condition that becomes true rolls every fault
back at once and aborts the drill, from pytest and from a Chaos Toolkit experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosrec.ctk import runner
from chaosrec.errors import GuardrailTripped

pytestmark = pytest.mark.integration


def test_a_tripped_guardrail_rolls_back_and_aborts_the_drill(
    recsys: Any, chaos: Any, load: Any, clean_stack: Any
) -> None:
    """With every replica down the gateway answers only degraded fallbacks: the guardrail
    (degraded share above 50 %) trips, brings the replicas back, interrupts the drill's
    10 s wait and refuses any further fault."""
    with load.run(rate=100, duration=15) as run:
        run.wait(1)
        with (
            pytest.raises(GuardrailTripped, match="guardrail tripped: degraded_share") as info,
            chaos.guardrail(run, degraded_share_above=0.5, for_s=0.2) as guard,
        ):
            outage = chaos.down("all")
            run.wait(10)  # cut short by the trip
        aborted_at = run.elapsed_s
        run.stop()
    trip = guard.trip
    assert trip is not None and trip.rolled_back_at is not None
    assert not outage.active and outage.ended_at is not None
    assert outage.started_at is not None and outage.started_at <= trip.first_true_at
    assert outage.ended_at <= trip.rolled_back_at
    assert aborted_at < 10  # the wait did not run to its end
    assert clean_stack.toxiproxy.is_clean()
    assert info.value.verdict["condition"] == "degraded_share_above=0.5 for 0.2 s"
    with pytest.raises(GuardrailTripped, match="refused"):
        chaos.latency("all", ms=100)
    assert clean_stack.toxiproxy.is_clean()


def test_a_guardrail_that_never_holds_lets_the_drill_finish(
    recsys: Any, chaos: Any, load: Any, clean_stack: Any
) -> None:
    with (
        load.run(rate=100, duration=4) as run,
        chaos.guardrail(recsys.gateway_url, error_rate_above=0.5, for_s=0.5) as guard,
        chaos.gpu_loss("region-a.r0", mode="error"),
    ):
        run.wait(3)
    assert guard.trip is None
    assert guard.polls > 10  # it was watching the gateway all along


def test_an_experiment_guardrail_interrupts_the_run_and_rolls_back(
    recsys: Any, clean_stack: Any, tmp_path: Path
) -> None:
    def act(name: str, func: str, pause: float = 0, **arguments: Any) -> dict[str, Any]:
        activity: dict[str, Any] = {
            "type": "action",
            "name": name,
            "provider": {
                "type": "python",
                "module": "chaosrec.ctk.actions",
                "func": func,
                "arguments": arguments,
            },
        }
        if pause:
            activity["pauses"] = {"after": pause}
        return activity

    experiment = {
        "version": "1.0.0",
        "title": "a total outage the guardrail must stop",
        "description": "degraded answers above 50 % for 0.3 s abort the drill",
        "controls": [
            {
                "name": "chaosrec",
                "provider": {
                    "type": "python",
                    "module": "chaosrec.ctk.control",
                    "arguments": {"guardrails": [{"degraded_share_above": 0.5, "for_s": 0.3}]},
                },
            }
        ],
        "method": [
            act("load", "start_load", 1, rate_rps=100, duration_s=15),
            act("every-replica-down", "inject_down", 10, target="all"),
            act("never-reached", "inject_latency", target="all", ms=100),
        ],
        "rollbacks": [act("rollback-all-faults", "rollback_all")],
    }
    path = tmp_path / "guarded.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False), encoding="utf-8")
    journal = runner.run(path, target=recsys)
    assert journal["status"] == "interrupted"
    assert [r["activity"]["name"] for r in journal["run"]] == ["load", "every-replica-down"]
    assert journal["duration"] < 10  # the 10 s pause was cut short
    trip = journal["chaosrec"]["guardrail"]
    assert trip["condition"] == "degraded_share_above=0.5 for 0.3 s"
    assert trip["rolled_back_at"] >= trip["tripped_at"]
    assert journal["rollbacks"][0]["status"] == "succeeded"
    assert clean_stack.toxiproxy.is_clean()
    with pytest.raises(GuardrailTripped, match="guardrail tripped: degraded_share"):
        runner.check_journal(journal, "guarded.yaml")
