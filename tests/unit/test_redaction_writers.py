"""Every writer of a report, summary or state file redacts credentials before writing:
no processes, no Allure CLI (the whole-run check is
``tests/integration/test_report_secrets.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chaosrec.reporting.allure_results import scrub_results
from chaosrec.reporting.run_files import environment_of, write_run_files
from chaosrec.reporting.summary import summary_html, summary_markdown, terminal_rows

SECRET = "s3cr3t-PLANTED"
URL = f"http://drill:{SECRET}@127.0.0.1:8080"


def _files_text(folder: Path) -> str:
    return "".join(
        p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file()
    )


def test_a_remote_target_url_loses_its_credentials_in_environment_properties(
    tmp_path: Path,
) -> None:
    target = SimpleNamespace(gateway_url=URL, topology=None)
    env = environment_of(target)
    assert env["target"] == "remote gateway http://***@127.0.0.1:8080"
    write_run_files(tmp_path, {**env, "extra": f"{URL}/x?api_key={SECRET}"})
    text = (tmp_path / "environment.properties").read_text()
    assert SECRET not in text
    assert "target=remote gateway http://***@127.0.0.1:8080" in text.replace("\\=", "=")


def _result(**changes: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "nodeid": "test_x.py::test_gateway_down",
        "scenario": "test_gateway_down",
        "purpose": f"Against {URL}.",
        "outcome": "broken",
        "category": "Infrastructure error",
        "exc_type": "StackError",
        "message": f"the recommender gateway at {URL} is unreachable (token={SECRET})",
        "started_at": 1_800_000_000.0,
        "ended_at": 1_800_000_010.0,
        "severity": "normal",
        "phases": [],
        "faults": [
            {
                "label": "latency(region-a.r0, ms=300)",
                "kind": "latency",
                "targets": ["region-a.r0"],
                "params": {"ms": 300, "api_key": SECRET},
            }
        ],
        "runs": [{"url": f"{URL}/recommend", "requests": 10, "availability": 1.0}],
        "verdicts": [],
        "notes": [],
    }
    result.update(changes)
    return result


def test_the_drill_summary_is_rendered_without_credentials() -> None:
    results = [_result()]
    environment = {"target": f"remote gateway {URL}"}
    for text in (summary_markdown(results, environment), summary_html(results, environment)):
        assert SECRET not in text
        assert "http://***@127.0.0.1:8080" in text  # the message says where, not who
    assert "test_gateway_down" in "\n".join(terminal_rows(results))


def test_scrub_results_redacts_what_allure_pytest_wrote_itself(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + SECRET.encode()  # binary attachments are not touched
    (tmp_path / "a-attachment.png").write_bytes(png)
    result = {
        "name": "test_gateway_down",
        "status": "broken",
        "statusDetails": {"message": f"StackError: {URL} unreachable", "trace": f"url = '{URL}'"},
        "parameters": [{"name": "api_key", "value": f"'{SECRET}'"}, {"name": "rate", "value": "5"}],
        "labels": [{"name": "story", "value": "test_gateway_down"}],
    }
    (tmp_path / "b-result.json").write_text(json.dumps(result))
    (tmp_path / "c-attachment.txt").write_text(f"captured: Authorization: Bearer {SECRET}\n")
    (tmp_path / "d-result.json").write_text(json.dumps({"name": "clean", "status": "passed"}))

    changed = scrub_results(tmp_path)

    assert sorted(p.name for p in changed) == ["b-result.json", "c-attachment.txt"]
    scrubbed = json.loads((tmp_path / "b-result.json").read_text())
    assert scrubbed["parameters"] == [
        {"name": "api_key", "value": "***"},
        {"name": "rate", "value": "5"},
    ]
    assert scrubbed["labels"] == result["labels"]
    assert (
        scrubbed["statusDetails"]["message"] == "StackError: http://***@127.0.0.1:8080 unreachable"
    )
    assert (tmp_path / "a-attachment.png").read_bytes() == png
    assert SECRET not in _files_text(tmp_path).replace(png.decode("utf-8", "replace"), "")


def test_the_stack_state_file_is_redacted(tmp_path: Path) -> None:
    from chaosrec.stack.stack import EmbeddedStack

    stack = EmbeddedStack("quick")  # not started: status() of a stack with no process
    path = tmp_path / "state.json"
    stack.write_state(path, status="failed", error=f"cannot reach {URL}", name="drills-1")
    state = json.loads(path.read_text())
    assert SECRET not in path.read_text()
    assert state["error"] == "cannot reach http://***@127.0.0.1:8080"
    assert state["name"] == "drills-1" and state["gateway"]["url"].startswith("http://127.0.0.1:")


def test_stack_status_prints_no_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    from chaosrec.cli import _print_status

    state = {
        "topology": {"name": "quick"},
        "versions": {},
        "gateway": {"pid": 1, "alive": True, "port": 8080, "url": URL},
        "toxiproxy": {"pid": 2, "api_url": f"http://t:{SECRET}@127.0.0.1:8474"},
        "replicas": [],
    }
    _print_status(state)
    out = capsys.readouterr().out
    assert SECRET not in out and "http://***@127.0.0.1:8080" in out
