"""FaultSchedule / ScheduledFault: validation before anything runs, JSON round trips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chaosrec.core.topology import load_topology
from chaosrec.errors import ConfigError
from chaosrec.schedules import FaultSchedule, ScheduledFault, search_profile
from chaosrec.schedules.runner import check_schedule

OUTAGE = ScheduledFault("region_outage", "region-a", {"mode": "refuse"}, 0.5, 1.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "meteor"}, r"fault\.kind='meteor' is not one of \["),
        ({"target": ""}, r"fault\.target='' must be 'all', a region or a replica id"),
        ({"params": {"ms": -1}, "kind": "latency"}, r"fault\.params\.ms=-1 must be >= 0"),
        ({"params": {"mode": "melt"}}, r"fault\.params\.mode='melt' is not one of"),
        (
            {"params": {"ms": 5}},
            r"unknown key\(s\) \['ms'\] for region_outage; allowed: \['mode'\]",
        ),
        ({"kind": "gpu_degrade", "params": {"slowdown": 1}}, r"slowdown=1 must be > 1"),
        ({"kind": "gpu_oom", "params": {"fraction": 1.5}}, r"fraction=1\.5 is outside \[0, 1\]"),
        ({"kind": "down", "params": {"x": 1}}, r"allowed: none"),
        ({"start_s": -1}, r"fault\.start_s=-1 must be >= 0"),
        ({"start_s": 2.0, "stop_s": 1.0}, r"stop_s=1\.0 must be after start_s=2\.0"),
        ({"stop_s": float("nan")}, r"fault\.stop_s=nan must be a finite number"),
    ],
    ids=[
        "unknown-kind",
        "empty-target",
        "negative-latency",
        "unknown-mode",
        "param-of-another-kind",
        "slowdown-not-above-1",
        "rate-above-1",
        "params-on-a-parameterless-kind",
        "negative-start",
        "stop-before-start",
        "nan-stop",
    ],
)
def test_a_bad_fault_is_refused_with_a_message_naming_field_and_value(
    kwargs: dict[str, Any], message: str
) -> None:
    fields: dict[str, Any] = {
        "kind": "region_outage",
        "target": "region-a",
        "params": {},
        "start_s": 0.5,
        "stop_s": 1.5,
    }
    fields.update(kwargs)
    with pytest.raises(ConfigError, match=message):
        ScheduledFault(**fields)


def test_a_fault_past_the_horizon_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"faults\[0\]: stop_s=1\.5 is after horizon_s=1"):
        FaultSchedule((OUTAGE,), horizon_s=1.0)


def test_json_round_trip_and_file(tmp_path: Path) -> None:
    schedule = FaultSchedule(
        (
            OUTAGE,
            ScheduledFault("latency", "region-b.r0", {"ms": 600, "jitter_ms": 20}, 0, 2.25),
            ScheduledFault("crash", "region-a.r1", {}, 1, 2),
        ),
        horizon_s=3,
    )
    assert FaultSchedule.from_json(schedule.to_json()) == schedule
    path = schedule.save(tmp_path / "deep" / "minimal.json")
    assert FaultSchedule.load(path) == schedule
    data = json.loads(path.read_text())
    assert data["format"] == "chaosrec.fault_schedule" and data["version"] == 1
    assert data["faults"][1] == {
        "kind": "latency",
        "target": "region-b.r0",
        "params": {"jitter_ms": 20.0, "ms": 600.0},
        "start_s": 0.0,
        "stop_s": 2.25,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", r"s\.json: not valid JSON"),
        ('{"faults": [], "horizon_s": 3, "version": 9}', r"version=9 is not supported"),
        ('{"faults": {}, "horizon_s": 3}', r"'faults' must be a list"),
        ('{"faults": []}', r"'horizon_s' is required"),
        (
            '{"faults": [{"kind": "down", "target": "all", "start_s": 0}], "horizon_s": 3}',
            r"s\.json: faults\[0\] is missing \['stop_s'\]",
        ),
        (
            '{"faults": [{"kind": "down", "target": "all", "start_s": 0, "stop_s": 1,'
            ' "when": 1}], "horizon_s": 3}',
            r"faults\[0\] has unknown key\(s\) \['when'\]",
        ),
        (
            '{"faults": [{"kind": "down", "target": "all", "start_s": 0, "stop_s": 9}],'
            ' "horizon_s": 3}',
            r"s\.json: faults\[0\]: stop_s=9 is after horizon_s=3",
        ),
    ],
    ids=[
        "bad-json",
        "version",
        "faults-not-list",
        "no-horizon",
        "missing-key",
        "extra-key",
        "late",
    ],
)
def test_a_bad_schedule_file_names_the_file_and_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        FaultSchedule.load(path)


def test_describe_is_one_line_per_fault_in_start_order() -> None:
    schedule = FaultSchedule(
        (
            ScheduledFault("gpu_oom", "region-b.r0", {"fraction": 0.5}, 1.0, 2.0),
            OUTAGE,
        ),
        horizon_s=3,
    )
    assert schedule.describe() == (
        "schedule over 3 s, 2 faults:\n"
        "  1. t=0.50-1.50 s  region_outage(region-a, mode=refuse)\n"
        "  2. t=1.00-2.00 s  gpu_oom(region-b.r0, fraction=0.5)"
    )
    assert FaultSchedule((), 3).describe() == "schedule over 3 s, 0 faults (steady state)"


@pytest.mark.parametrize(
    ("fault", "embedded", "message"),
    [
        (ScheduledFault("down", "region-z"), True, r"faults\[0\] down\(region-z\): unknown target"),
        (
            ScheduledFault("region_outage", "region-a.r0"),
            True,
            r"region_outage needs a region target, one of \['region-a', 'region-b'\]",
        ),
        (ScheduledFault("crash", "region-a.r0"), False, r"crash acts inside the replicas"),
        (
            ScheduledFault("region_outage", "region-a", {"mode": "kill"}),
            False,
            r"needs the embedded stack",
        ),
    ],
    ids=["unknown-target", "outage-of-a-replica", "crash-remote", "kill-remote"],
)
def test_check_schedule_refuses_before_any_injection(
    fault: ScheduledFault, embedded: bool, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        check_schedule(FaultSchedule((fault,), 3), load_topology("default"), embedded=embedded)


def test_network_faults_fit_a_remote_target() -> None:
    schedule = FaultSchedule((OUTAGE, ScheduledFault("latency", "all")), 3)
    check_schedule(schedule, load_topology("default"), embedded=False)  # no error


def test_unknown_search_profile_lists_the_names() -> None:
    with pytest.raises(
        ConfigError, match=r"search profile='fast' is not one of \['quick', 'thorough'\]"
    ):
        search_profile("fast")


def test_importing_schedules_does_not_import_hypothesis() -> None:
    code = "import sys, chaosrec.schedules; print('hypothesis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_search_option_rejects_an_unknown_profile(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest_subprocess("--chaosrec-search=fast")
    assert "--chaosrec-search='fast': use one of ['quick', 'thorough']" in result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    ok = pytester.runpytest_subprocess("--chaosrec-search=thorough")
    ok.assert_outcomes(passed=1)


def test_schedules_saved_with_the_old_parameter_names_still_load() -> None:
    old = {
        "kind": "latency",
        "target": "all",
        "params": {"ms": 100, "jitter": 5},
        "start_s": 0,
        "stop_s": 1,
    }
    assert ScheduledFault.from_dict(old).params == {"jitter_ms": 5.0, "ms": 100.0}
    oom = {"kind": "gpu_oom", "target": "all", "params": {"rate": 0.2}, "start_s": 0, "stop_s": 1}
    assert ScheduledFault.from_dict(oom).params == {"fraction": 0.2}
