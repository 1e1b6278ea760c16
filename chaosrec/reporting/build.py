"""Build the HTML drill report from an Allure results folder with the Allure CLI.

Allure 3 (npm ``allure``): an Allure 3 report opened as ``file://`` shows only a spinner,
so the report is built with the awesome plugin's ``singleFile: true`` (one
``index.html`` that opens from disk) and ``groupBy: ["epic", "feature", "story"]``
(a tree of DR drill → fault kind → scenario), from an ``allurerc.json`` written next to
the output. History is kept in a JSON-lines file (Allure 3's ``historyPath``) that each
build reads and appends to, so trends show from the second build on.

Allure 2 (``allure-commandline``, Java): ``allure generate --single-file``; history is
carried over by copying the previous report's ``history/`` into the results first.

The drill summary files written by the pytest plugin are copied next to ``index.html``.

Example::

    built = build_report(Path("reports/allure-results"), Path("reports/allure-report"))
    print(built.index, built.summary_html)
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from chaosrec.adapters.tools import allure_version, install_allure, run_tool
from chaosrec.errors import ConfigError, SetupError
from chaosrec.reporting.results import CATEGORIES
from chaosrec.reporting.run_files import SUMMARY_HTML, SUMMARY_MD

__all__ = ["BuiltReport", "allure_config", "build_report"]

REPORT_NAME = "chaosrec DR drills"
_GROUP_BY = ["epic", "feature", "story"]


@dataclass(frozen=True)
class BuiltReport:
    """Where the built report and its companions are."""

    index: Path  # the report, one self-contained HTML file
    summary_md: Path | None
    summary_html: Path | None
    history: Path | None
    allure_version: str
    seconds: float  # how long the Allure CLI took


def allure_config(out_dir: Path, history: Path, name: str = REPORT_NAME) -> dict[str, object]:
    """The ``allurerc.json`` content for an Allure 3 single-file drill report."""
    return {
        "name": name,
        "output": str(out_dir),
        "historyPath": str(history),
        "categories": CATEGORIES,  # Allure 3 reads them from here, not categories.json
        "plugins": {
            "awesome": {
                "options": {
                    "singleFile": True,
                    "reportName": name,
                    "groupBy": _GROUP_BY,
                }
            }
        },
    }


def _run(command: list[str], timeout_s: float, cwd: Path) -> None:
    run_tool(
        command,
        timeout_s=timeout_s,
        cwd=cwd,
        fix="see Allure's output below (a very large results folder may need a longer timeout_s)",
    )


def build_report(
    results_dir: Path,
    out_dir: Path,
    *,
    history: Path | None = None,
    name: str = REPORT_NAME,
    allure: Path | None = None,
    timeout_s: float = 300.0,
) -> BuiltReport:
    """Build ``out_dir/index.html`` (one self-contained file) from ``results_dir``.

    :param history: Allure 3 history file (JSON lines); default
        ``<out_dir's parent>/allure-history.jsonl``. Allure 2 keeps history inside the
        report folder instead.
    :param allure: the Allure CLI; default: found or installed (:func:`install_allure`).
    :raises ConfigError: ``results_dir`` holds no Allure results.
    :raises SetupError: the Allure CLI failed; its output tail is noted.
    """
    results_dir = Path(results_dir).resolve()
    out_dir = Path(out_dir).resolve()
    if not results_dir.is_dir() or not any(results_dir.glob("*-result.json")):
        raise ConfigError(
            f"results_dir={str(results_dir)!r} holds no Allure results (*-result.json); run "
            "pytest with --alluredir pointing there first"
        )
    if out_dir == results_dir or results_dir in out_dir.parents:
        raise ConfigError(
            f"out_dir={str(out_dir)!r} must not be inside the results folder {results_dir}"
        )
    binary = allure or install_allure()
    version = allure_version(binary)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if int(version.split(".")[0]) >= 3:
        history = Path(history).resolve() if history else out_dir.parent / "allure-history.jsonl"
        history.parent.mkdir(parents=True, exist_ok=True)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        config = out_dir.parent / f".{out_dir.name}.allurerc.json"
        config.write_text(json.dumps(allure_config(out_dir, history, name), indent=2), "utf-8")
        _run(
            [str(binary), "generate", str(results_dir), "--config", str(config)],
            timeout_s,
            cwd=out_dir.parent,
        )
        index = out_dir / "index.html"
        if not index.is_file():
            # some awesome-plugin versions write into a subfolder named after the plugin
            found = sorted(out_dir.rglob("index.html"))
            if not found:
                raise SetupError(
                    f"allure {version} generate left no index.html in {out_dir}; check the "
                    "awesome plugin options in " + str(config)
                )
            index = found[0]
    else:
        history = None
        previous = out_dir / "history"
        if previous.is_dir():
            shutil.copytree(previous, results_dir / "history", dirs_exist_ok=True)
        _run(
            [
                str(binary), "generate", str(results_dir), "-o", str(out_dir), "--clean",
                "--single-file", "--name", name,
            ],
            timeout_s,
            cwd=out_dir.parent,
        )  # fmt: skip
        index = out_dir / "index.html"
    seconds = time.monotonic() - started
    copied: dict[str, Path | None] = {}
    for file_name in (SUMMARY_MD, SUMMARY_HTML):
        source = results_dir / file_name
        if source.is_file():
            shutil.copy2(source, index.parent / file_name)
            copied[file_name] = index.parent / file_name
        else:
            copied[file_name] = None
    return BuiltReport(
        index=index,
        summary_md=copied[SUMMARY_MD],
        summary_html=copied[SUMMARY_HTML],
        history=history,
        allure_version=version,
        seconds=seconds,
    )
