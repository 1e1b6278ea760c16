"""``chaosrec report --out DIR`` replaces only a report folder it built itself: every
refusal happens before Allure runs and deletes nothing; a rebuild swaps the new report
in whole, and a failed build leaves the old one as it was. Allure is a stand-in script."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from chaosrec.errors import ConfigError, SetupError
from chaosrec.reporting.build import REPORT_MARKER, build_report

FAKE_ALLURE = """#!{python}
import json, os, sys
args = sys.argv[1:]
if args == ["--version"]:
    print("{version}")
    raise SystemExit(0)
if os.environ.get("FAKE_ALLURE_FAIL"):
    print("allure: something broke")
    raise SystemExit(1)
if "--config" in args:  # Allure 3: the output folder is in the config
    out = json.load(open(args[args.index("--config") + 1]))["output"]
else:  # Allure 2: -o DIR
    out = args[args.index("-o") + 1]
os.makedirs(out, exist_ok=True)
open(os.path.join(out, "index.html"), "w").write("<html>report of " + args[1] + "</html>")
"""


def _allure(folder: Path, version: str = "3.18.0") -> Path:
    path = folder / f"allure-{version}"
    path.write_text(FAKE_ALLURE.format(python=sys.executable, version=version))
    path.chmod(0o755)
    return path


@pytest.fixture(autouse=True)
def _deletes_only_under_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests hand build_report "/", "~" and "."; if a regression let it delete them,
    this turns the deletion into a failure instead. (The code before these checks existed
    did run shutil.rmtree on --out /: never run such a case without this guard.)"""
    real_rmtree, real_rename = shutil.rmtree, os.rename

    def inside(path: Any) -> bool:
        return Path(tmp_path).resolve() in Path(path).resolve().parents

    def rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
        if not inside(path):
            pytest.fail(f"tried to delete {path}, outside the test's folder")
        real_rmtree(path, *args, **kwargs)

    def rename(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if not (inside(src) and inside(dst)):
            pytest.fail(f"tried to move {src} to {dst}, outside the test's folder")
        real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    monkeypatch.setattr(os, "rename", rename)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "project" / "reports" / "allure-results"
    folder.mkdir(parents=True)
    (folder / "x-result.json").write_text("{}")
    (folder / "drill-summary.md").write_text("# DR drill summary\n")
    return folder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    work = tmp_path / "elsewhere" / "work"  # its parent holds neither results nor home
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    return folder


def _keep(folder: Path) -> Path:
    """A file that must survive the refused build."""
    folder.mkdir(parents=True, exist_ok=True)
    sentinel = folder / "precious.txt"
    sentinel.write_text("not a report")
    return sentinel


CASES = {
    "not-empty-without-marker": (lambda t, r: t / "project" / "docs", "is not empty and was not"),
    "the-results-folder": (lambda t, r: r, "must not be inside the results folder"),
    "inside-the-results": (lambda t, r: r / "report", "must not be inside the results folder"),
    "parent-of-results": (lambda t, r: r.parent, "holds the results folder"),
    "grandparent-of-results": (lambda t, r: t / "project", "holds the results folder"),
    "current-folder": (lambda t, r: Path("."), "is the current folder"),
    "parent-of-current": (lambda t, r: Path(".."), "holds the current folder"),
    "home": (lambda t, r: t / "home", "is your home folder"),
    "root": (lambda t, r: Path("/"), "is the filesystem root"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_refused_before_anything_runs_or_is_deleted(
    tmp_path: Path, results: Path, home: Path, case: str
) -> None:
    make_out, expected = CASES[case]
    out = make_out(tmp_path, results)
    sentinel = None if case == "root" else _keep(out.resolve())
    with pytest.raises(ConfigError, match=expected) as info:
        build_report(results, out, allure=Path("/nonexistent/allure"))
    message = str(info.value)
    assert "\n" not in message and f"--out '{out.resolve()}'" in message
    assert "give a folder of its own" in message or "remove it yourself" in message
    assert sentinel is None or sentinel.read_text() == "not a report"
    assert (results / "x-result.json").is_file()


def test_a_file_or_a_history_inside_the_report_is_refused(tmp_path: Path, results: Path) -> None:
    a_file = tmp_path / "report.html"
    a_file.write_text("mine")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        build_report(results, a_file, allure=Path("/nonexistent/allure"))
    out = tmp_path / "report"
    with pytest.raises(ConfigError, match=r"--history .* is inside the report folder"):
        build_report(results, out, history=out / "h.jsonl", allure=Path("/nonexistent/allure"))
    assert a_file.read_text() == "mine" and not out.exists()


@pytest.mark.parametrize("version", ["3.18.0", "2.30.0"])
def test_a_report_is_built_marked_and_replaced_whole(
    tmp_path: Path, results: Path, version: str
) -> None:
    allure = _allure(tmp_path, version)
    out = results.parent / "allure-report"
    first = build_report(results, out, allure=allure)
    assert first.index == out / "index.html" and first.index.is_file()
    assert (out / REPORT_MARKER).is_file()
    assert first.summary_md == out / "drill-summary.md" and first.summary_md.is_file()
    (out / "stale.txt").write_text("from an older build")

    again = build_report(results, out, allure=allure)

    assert again.index.read_text().startswith("<html>report of")
    assert not (out / "stale.txt").exists()  # replaced whole, not merged
    assert (out / REPORT_MARKER).is_file()
    leftovers = [
        p.name for p in out.parent.iterdir() if ".building-" in p.name or ".old-" in p.name
    ]
    assert leftovers == []


def test_an_empty_folder_is_used(tmp_path: Path, results: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    built = build_report(results, out, allure=_allure(tmp_path))
    assert built.index == out / "index.html" and (out / REPORT_MARKER).is_file()


def test_a_failed_build_leaves_the_previous_report(
    tmp_path: Path, results: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allure = _allure(tmp_path)
    out = tmp_path / "report"
    build_report(results, out, allure=allure)
    before = sorted(p.name for p in out.iterdir())
    monkeypatch.setenv("FAKE_ALLURE_FAIL", "1")
    with pytest.raises(SetupError):
        build_report(results, out, allure=allure)
    assert sorted(p.name for p in out.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir() if ".building-" in p.name] == []


@pytest.mark.parametrize("out", [".", "~", "/"], ids=["cwd", "home", "root"])
def test_chaosrec_report_refuses_with_one_line_and_exit_2(
    tmp_path: Path,
    results: Path,
    home: Path,
    out: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from chaosrec.cli import main

    monkeypatch.setenv("ALLURE_BIN", str(_allure(tmp_path)))
    sentinel = _keep(Path.cwd()) if out == "." else _keep(home)
    assert main(["report", str(results), "--out", str(Path(out).expanduser())]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chaosrec: --out '")
    assert sentinel.read_text() == "not a report"
