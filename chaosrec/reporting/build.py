"""Build the HTML drill report from an Allure results folder with the Allure CLI.

Allure 3 (npm ``allure``): an Allure 3 report opened as ``file://`` shows only a spinner,
so the report is built with the awesome plugin's ``singleFile: true`` (one
``index.html`` that opens from disk) and ``groupBy: ["epic", "feature", "story"]``
(a tree of DR drill → fault kind → scenario), from an ``allurerc.json`` written next to
the output. History is kept in a JSON-lines file (Allure 3's ``historyPath``) that each
build reads and appends to, so trends show from the second build on.

Allure 2 (``allure-commandline``, Java): ``allure generate --single-file``; history is
carried over by copying the previous report's ``history/`` into the results first.

The drill summary files written by the pytest plugin, and the resilience score file when
the drill history is on, are copied next to ``index.html``.

The output folder is replaced, so only a folder this function built may be replaced:
each build leaves a ``.chaosrec-report`` marker in it, and :func:`check_out_dir`
refuses, before anything runs, an existing non-empty folder without that marker, the
results folder or a folder holding it, the current folder, the home folder, ``/`` and
their parents. The report is built in a sibling temporary folder and swapped in by
renames when it is complete, so a failed build leaves the previous report as it was.

Example::

    built = build_report(Path("reports/allure-results"), Path("reports/allure-report"))
    print(built.index, built.summary_html)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from chaosrec.adapters.tools import allure_version, install_allure, run_tool
from chaosrec.errors import ConfigError, SetupError
from chaosrec.reporting.results import CATEGORIES
from chaosrec.reporting.run_files import SCORE_FILE, SUMMARY_HTML, SUMMARY_MD

__all__ = ["REPORT_MARKER", "BuiltReport", "allure_config", "build_report", "check_out_dir"]

REPORT_NAME = "chaosrec DR drills"
#: written into every report folder :func:`build_report` builds; only such a folder (or
#: an empty one) is ever replaced
REPORT_MARKER = ".chaosrec-report"
_MARKER_TEXT = (
    "This folder was built by `chaosrec report`; the next `chaosrec report --out` to it "
    "replaces it. Delete this file to protect the folder.\n"
)
_FIX = "give a folder of its own, e.g. --out reports/allure-report"
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
    score_file: Path | None = None  # resilience-score.json, when the run had a history
    score: float | None = None  # the run's resilience score (0-100), from that file


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


def _home() -> Path | None:
    try:
        return Path.home().resolve()
    except RuntimeError:  # no HOME and no passwd entry
        return None


def check_out_dir(results_dir: Path, out_dir: Path, history: Path | None = None) -> None:
    """Refuse a report folder whose replacement would delete something that is not an
    old report (see the module docs); ``history`` must lie outside it too.

    Raises:
        ConfigError: one line naming the folder and what to do instead.
    """
    results = Path(results_dir).resolve()
    out = Path(out_dir).resolve()
    shown = f"--out {str(out)!r}"
    if out == results or results in out.parents:
        raise ConfigError(f"{shown} must not be inside the results folder {results}; {_FIX}")
    if out == Path(out.anchor):
        raise ConfigError(f"{shown} is the filesystem root and would be replaced; {_FIX}")
    if out in results.parents:
        raise ConfigError(
            f"{shown} holds the results folder {results}, which replacing it would delete; {_FIX}"
        )
    for place, what in (
        (_home(), "your home folder"),
        (Path.cwd().resolve(), "the current folder"),
    ):
        if place is None:
            continue
        if out == place:
            raise ConfigError(f"{shown} is {what} and would be replaced; {_FIX}")
        if out in place.parents:
            raise ConfigError(f"{shown} holds {what} ({place}) and would be replaced; {_FIX}")
    if history is not None:
        kept = Path(history).resolve()
        if out in kept.parents:
            raise ConfigError(
                f"--history {str(kept)!r} is inside the report folder {out}, which each build "
                "replaces; keep it next to the report (the default) or elsewhere"
            )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{shown} is a file, not a folder; {_FIX}")
    if out.is_dir() and not (out / REPORT_MARKER).is_file() and any(out.iterdir()):
        raise ConfigError(
            f"{shown} is not empty and was not built by chaosrec report (no {REPORT_MARKER} "
            f"in it), so it is not replaced; empty or remove it yourself, or {_FIX}"
        )


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Put the finished build ``staging`` at ``out_dir``, replacing an old report there:
    two renames, then the old report is deleted (a crash in between leaves it beside)."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.old-{secrets.token_hex(4)}")
    os.rename(out_dir, old)
    try:
        os.rename(staging, out_dir)
    except OSError:
        os.rename(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


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

    ``out_dir`` is replaced only if a previous build made it (it holds
    :data:`REPORT_MARKER`) or it is empty; the new report is built beside it and swapped
    in when complete.

    :param history: Allure 3 history file (JSON lines); default
        ``<out_dir's parent>/allure-history.jsonl``. Allure 2 keeps history inside the
        report folder instead.
    :param allure: the Allure CLI; default: found or installed (:func:`install_allure`).
    :raises ConfigError: ``results_dir`` holds no Allure results, or ``out_dir`` may not
        be replaced (:func:`check_out_dir`); nothing was run or deleted.
    :raises SetupError: the Allure CLI failed; its output tail is noted, the previous
        report is untouched.
    """
    results_dir = Path(results_dir).resolve()
    out_dir = Path(out_dir).resolve()
    if not results_dir.is_dir() or not any(results_dir.glob("*-result.json")):
        raise ConfigError(
            f"results_dir={str(results_dir)!r} holds no Allure results (*-result.json); run "
            "pytest with --alluredir pointing there first"
        )
    check_out_dir(results_dir, out_dir, history)
    binary = allure or install_allure()
    version = allure_version(binary)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        started = time.monotonic()
        if int(version.split(".")[0]) >= 3:
            history = (
                Path(history).resolve() if history else out_dir.parent / "allure-history.jsonl"
            )
            history.parent.mkdir(parents=True, exist_ok=True)
            config = out_dir.parent / f".{out_dir.name}.allurerc.json"
            config.write_text(json.dumps(allure_config(staging, history, name), indent=2), "utf-8")
            _run(
                [str(binary), "generate", str(results_dir), "--config", str(config)],
                timeout_s,
                cwd=out_dir.parent,
            )
            index = staging / "index.html"
            if not index.is_file():
                # some awesome-plugin versions write into a subfolder named after the plugin
                found = sorted(staging.rglob("index.html"))
                if not found:
                    raise SetupError(
                        f"allure {version} generate left no index.html in {staging}; check "
                        "the awesome plugin options in " + str(config)
                    )
                index = found[0]
        else:
            history = None
            previous = out_dir / "history"
            if previous.is_dir():
                shutil.copytree(previous, results_dir / "history", dirs_exist_ok=True)
            _run(
                [
                    str(binary), "generate", str(results_dir), "-o", str(staging), "--clean",
                    "--single-file", "--name", name,
                ],
                timeout_s,
                cwd=out_dir.parent,
            )  # fmt: skip
            index = staging / "index.html"
        seconds = time.monotonic() - started
        copied: dict[str, Path | None] = {}
        for file_name in (SUMMARY_MD, SUMMARY_HTML, SCORE_FILE):
            source = results_dir / file_name
            if source.is_file():
                shutil.copy2(source, index.parent / file_name)
                copied[file_name] = out_dir / index.parent.relative_to(staging) / file_name
            else:
                copied[file_name] = None
        (staging / REPORT_MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
        _swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BuiltReport(
        index=out_dir / index.relative_to(staging),
        summary_md=copied[SUMMARY_MD],
        summary_html=copied[SUMMARY_HTML],
        history=history,
        allure_version=version,
        seconds=seconds,
        score_file=copied[SCORE_FILE],
        score=_score(results_dir / SCORE_FILE),
    )


def _score(path: Path) -> float | None:
    """The score in a resilience score file; None without one (or a score)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("score")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None
