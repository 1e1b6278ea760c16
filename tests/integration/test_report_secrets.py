"""Planted secrets never reach a report: a whole drill run, grepped file by file.

A throwaway project (pytester, the plugin loaded through its entry point) drills the
session's embedded stack as a *remote* target whose file plants credentials everywhere a
user would put them:

* ``gateway_url``: the real gateway's URL with ``drill:s3cr3t-PLANTED@`` inserted (httpx
  and aiohttp send it as basic auth; the gateway ignores it), so every request of the
  load generator, the probes and the reports' URLs carry it;
* ``toxiproxy_url``: the real Toxiproxy API with ``toxi:s3cr3t-PLANTED-toxi@``;
* a Chaos Toolkit experiment whose ``configuration`` has ``api_token`` and
  ``chaosrec_admin_token`` and whose ``secrets`` have a password (all in its journal);
* ``record_property("api_key", ...)`` in the drill (pytest user properties, --junitxml),
  its value from the environment (the drill's source shows up in its traceback).

One drill fails on purpose (an impossible p99), so the failure paths are reported too.
Then every file the run wrote (Allure results and attachments, the drill summary,
junit.xml, the HTML report when the Allure CLI is installed, base64 blobs inside it,
gzip attachments), pytest's output and the stack's process logs are searched for the
planted strings (and the basic-auth header they become): none may be found.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosrec.core.paths import cache_dir

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-PLANTED"
_CACHE_DIR = str(cache_dir())  # now: pytester points HOME at a temp dir

# the planted property comes from the environment: a literal in the drill's source would
# be shown in its traceback, which is the user's own code, not something chaosrec wrote
DRILL = '''
import os

import pytest


@pytest.mark.drill
def test_latency_against_a_gateway_with_credentials(recsys, chaos, load, slo, record_property):
    """Latency on one replica, against a gateway reached with credentials."""
    record_property("api_key", os.environ["PLANTED_PROPERTY"])
    record_property("gateway", recsys.gateway_url)
    with load.run(rate=50, duration=3) as run:
        run.wait(1)
        with chaos.latency("{replica}", ms=150):
            run.wait(1)
    slo.assert_met(run, availability=0.9, p99_ms=1)  # impossible: report a failure too
'''

EXPERIMENT = {
    "version": "1.0.0",
    "title": "A probe against a target reached with credentials",
    "description": "Planted secrets in the configuration and secrets of an experiment.",
    "configuration": {
        "api_token": f"{SECRET}-ctk",
        "chaosrec_admin_token": f"{SECRET}-admin",
    },
    "secrets": {"vault": {"password": f"{SECRET}-vault"}},
    "method": [
        {
            "type": "probe",
            "name": "availability",
            "provider": {
                "type": "python",
                "module": "chaosrec.ctk.probes",
                "func": "availability",
                "arguments": {"rate_rps": 20, "duration_s": 1},
            },
        }
    ],
}


def _with_userinfo(url: str, userinfo: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{userinfo}@{rest}"


def _needles() -> list[bytes]:
    planted = [SECRET.encode()]
    for userinfo in (f"drill:{SECRET}", f"toxi:{SECRET}-toxi"):  # as a basic-auth header
        planted.append(base64.b64encode(userinfo.encode()))
    return planted


_BASE64 = re.compile(rb"[A-Za-z0-9+/]{40,}={0,2}")


def _views(data: bytes) -> list[bytes]:
    """The file as written, gunzipped, and every long base64 run in it decoded (a
    single-file HTML report embeds its data that way)."""
    views = [data]
    if data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError):
            views.append(gzip.decompress(data))
    for blob in _BASE64.findall(data):
        try:
            views.append(base64.b64decode(blob + b"=" * (-len(blob) % 4)))
        except (binascii.Error, ValueError):
            continue
    return views


def _leaks(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        for view in _views(path.read_bytes()):
            for needle in _needles():
                if needle in view:
                    found.append(f"{path}: {needle.decode()}")
    return sorted(set(found))


@pytest.fixture
def planted_project(pytester: pytest.Pytester, clean_stack: Any) -> dict[str, Any]:
    stack = clean_stack
    replica = stack.topology.replicas[0].id
    target = {
        "gateway_url": _with_userinfo(stack.gateway_url, f"drill:{SECRET}"),
        "toxiproxy_url": _with_userinfo(stack.toxiproxy.api_url, f"toxi:{SECRET}-toxi"),
        "topology": stack.topology.to_dict(),
        "n_users": int(stack.model_meta.get("n_users", 0)) or 1000,
    }
    (pytester.path / "target.yaml").write_text(yaml.safe_dump(target))
    pytester.makepyfile(test_drill=DRILL.replace("{replica}", replica))
    experiments = pytester.mkdir("experiments")
    (experiments / "planted.yaml").write_text(yaml.safe_dump(EXPERIMENT))
    inputs = {pytester.path / "target.yaml", pytester.path / "test_drill.py"}
    inputs.add(experiments / "planted.yaml")
    return {"stack": stack, "inputs": inputs}


def test_no_planted_secret_reaches_any_file_of_a_drill_run(
    pytester: pytest.Pytester, planted_project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAOSREC_CACHE_DIR", _CACHE_DIR)  # the installed tools
    monkeypatch.setenv("PLANTED_PROPERTY", f"{SECRET}-prop")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-v", "--log-level=DEBUG",
        "--chaosrec-target=target.yaml", "--chaosrec-experiments=experiments",
        "--alluredir=allure-results", "--chaosrec-report-dir=summary",
        "--junitxml=junit.xml", "-o", "junit_family=xunit1",
        "test_drill.py", "experiments",
    )  # fmt: skip
    output = "\n".join(result.outlines + result.errlines)
    result.assert_outcomes(failed=1, passed=1)
    assert "SLO breached: p99_ms" in output

    from chaosrec.adapters.tools import find_allure

    results = pytester.path / "allure-results"
    report_output = ""
    if find_allure() is not None:  # the HTML report, when `chaosrec setup` installed Allure
        built = subprocess.run(
            [sys.executable, "-m", "chaosrec", "report", str(results), "--out", "report"],
            cwd=pytester.path, env=dict(os.environ), capture_output=True, text=True,
            timeout=600, check=False,
        )  # fmt: skip
        report_output = built.stdout + built.stderr
        assert built.returncode == 0, report_output
        assert (pytester.path / "report" / "index.html").is_file()
    elif os.environ.get("CI"):
        pytest.fail("the Allure CLI is missing in CI: `chaosrec setup` must install it")

    # the run did report what carried the secrets, redacted, rather than leave it out
    environment = (results / "environment.properties").read_text()
    assert "target=remote gateway http://***@127.0.0.1:" in environment.replace("\\=", "=")
    journals = []
    for path in results.glob("*-result.json"):
        for attachment in json.loads(path.read_text()).get("attachments", []):
            if attachment["name"].endswith("journal.json"):
                journals.append(json.loads((results / attachment["source"]).read_text()))
    (journal,) = journals
    assert journal["experiment"]["configuration"]["api_token"] == "***"
    assert journal["experiment"]["secrets"] == "***"
    junit = (pytester.path / "junit.xml").read_text()
    assert '<property name="api_key" value="***"' in junit
    assert "http://***@127.0.0.1:" in junit
    assert (pytester.path / "summary" / "drill-summary.md").is_file()

    written = [
        p for p in pytester.path.rglob("*") if p.is_file() and p not in planted_project["inputs"]
    ]
    assert len(written) > 10, written
    stack_logs = sorted(Path(planted_project["stack"].run_dir).rglob("*.log"))
    leaks = _leaks(written + stack_logs)
    for text, name in ((output, "pytest output"), (report_output, "chaosrec report output")):
        leaks += [f"{name}: {n.decode()}" for n in _needles() if n in text.encode()]
    assert leaks == [], "\n".join(leaks)
