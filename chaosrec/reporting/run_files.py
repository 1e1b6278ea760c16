"""Run-level files of an Allure results folder, and what goes in them.

* ``environment.properties``: model version and hash, device, Triton and Toxiproxy
  versions, topology (:func:`environment_of`);
* ``categories.json``: SLO breached, drill aborted by a guardrail, drill inconclusive,
  infrastructure error (:data:`chaosrec.reporting.results.CATEGORIES`);
* ``drill-summary.md`` / ``drill-summary.html``: the drill summary, which
  ``chaosrec report`` copies next to the HTML report, and ``resilience-score.json`` (the
  run's resilience score, its trend and regressions, when the drill history is on).

Credentials never reach these files: a remote gateway's URL is shown without its
``user:pass@`` (:func:`chaosrec.core.redact.redact`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from chaosrec.core.redact import redact
from chaosrec.reporting.results import CATEGORIES

__all__ = ["SCORE_FILE", "SUMMARY_HTML", "SUMMARY_MD", "environment_of", "write_run_files"]

SUMMARY_MD = "drill-summary.md"
SUMMARY_HTML = "drill-summary.html"
#: the run's resilience score for CI dashboards (chaosrec.reporting.history.score_file)
SCORE_FILE = "resilience-score.json"


def environment_of(target: Any) -> dict[str, str]:
    """What the drills ran against, from the ``recsys`` fixture's value (a RecsysTarget);
    credentials in URLs are redacted."""
    env: dict[str, str] = {}
    stack = getattr(target, "stack", None)
    if stack is not None:
        meta = getattr(stack, "model_meta", {}) or {}
        versions = getattr(stack, "versions", {}) or {}
        topology = stack.topology.to_dict()
        regions = ", ".join(
            f"{name} x{info['replicas']}" for name, info in topology["regions"].items()
        )
        env["target"] = "embedded stack"
        env["topology"] = f"{topology['name']} ({regions}; home {topology['home_region']})"
        if meta.get("version"):
            env["model.version"] = str(meta["version"])
        if meta.get("sha256"):
            env["model.sha256"] = str(meta["sha256"])
        for key in ("triton", "toxiproxy", "nvidia-pytriton"):
            if key in versions:
                env[f"{key}.version"] = versions[key]
    else:
        env["target"] = f"remote gateway {getattr(target, 'gateway_url', '?')}"
        topology_obj = getattr(target, "topology", None)
        if topology_obj is not None:
            env["topology"] = str(topology_obj.to_dict().get("name", "?"))
    torch = sys.modules.get("torch")  # only if something already imported it
    if torch is not None:
        cuda = bool(torch.cuda.is_available())
        env["device"] = (
            f"cuda ({torch.cuda.get_device_name(0)})"
            if cuda
            else "cpu (no CUDA: GPU faults emulated at the device boundary)"
        )
    return redact(env)


def _properties(env: dict[str, str]) -> str:
    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("\n", "\\n").replace("=", "\\=")

    return "".join(f"{esc(k)}={esc(v)}\n" for k, v in sorted(env.items()))


def write_run_files(results_dir: Path, environment: dict[str, str]) -> None:
    """Write ``environment.properties`` and ``categories.json`` into ``results_dir``
    (credentials in ``environment`` are redacted first)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    env = redact({"runner": "chaosrec (pytest)", **environment})
    (results_dir / "environment.properties").write_text(_properties(env), encoding="utf-8")
    (results_dir / "categories.json").write_text(json.dumps(CATEGORIES, indent=2), "utf-8")
