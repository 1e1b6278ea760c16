"""pytest side of the Chaos Toolkit front: collects experiment files as drills (sub-plugin of
:mod:`chaosrec.plugin`).

Every ``*.yaml``/``*.yml``/``*.json`` file in the experiments folder
(``--chaosrec-experiments=DIR``, ini ``chaosrec_experiments``, default ``experiments``)
becomes one test item marked ``drill``. The item runs the experiment in process through
chaoslib against the session's ``recsys`` (the embedded stack, or ``--chaosrec-target``),
with rollbacks always, fails when the steady state deviated, an activity failed or a
guardrail tripped (the message says which), and keeps chaoslib's journal in
``item.stash[JOURNAL_KEY]`` for the reports.

The folder is collected when pytest visits it: list it in ``testpaths`` (chaosrec's own
``pyproject.toml`` does) or name it on the command line (``pytest my-experiments/
--chaosrec-experiments=my-experiments``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaosrec.plugin_state import DRILL_KEY, JOURNAL_KEY

_SUFFIXES = (".yaml", ".yml", ".json")
_DIR_KEY = pytest.StashKey[Path]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaosrec", "chaosrec disaster-recovery drills")
    text = "folder of Chaos Toolkit experiments collected as drills"
    group.addoption(
        "--chaosrec-experiments",
        dest="chaosrec_experiments",
        default=None,
        metavar="DIR",
        help=f"{text}.",
    )
    parser.addini("chaosrec_experiments", f"{text} (default: experiments).", default="experiments")


def pytest_configure(config: pytest.Config) -> None:
    value = config.getoption("chaosrec_experiments") or config.getini("chaosrec_experiments")
    folder = Path(str(value or "experiments"))
    if not folder.is_absolute():
        base = Path.cwd() if config.getoption("chaosrec_experiments") else config.rootpath
        folder = base / folder
    if config.getoption("chaosrec_experiments") and not folder.is_dir():
        raise pytest.UsageError(
            f"--chaosrec-experiments={value!r}: no such folder; give the folder that holds "
            "your Chaos Toolkit experiment files"
        )
    config.stash[_DIR_KEY] = folder.resolve()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    folder = parent.config.stash.get(_DIR_KEY, None)
    if folder is None or file_path.suffix not in _SUFFIXES:
        return None
    if not file_path.resolve().is_relative_to(folder):
        return None
    collected: pytest.Collector = ExperimentFile.from_parent(parent, path=file_path)
    return collected


class ExperimentFile(pytest.File):
    """One Chaos Toolkit experiment file: one drill."""

    def collect(self) -> Iterator[pytest.Item]:
        path = self.path

        def run_experiment(recsys: Any, request: pytest.FixtureRequest) -> None:
            _run(path, recsys, request)

        run_experiment.__doc__ = f"Chaos Toolkit experiment {path.name}"
        item = pytest.Function.from_parent(self, name=path.stem, callobj=run_experiment)
        item.add_marker(pytest.mark.drill)
        yield item


def _run(path: Path, recsys: Any, request: pytest.FixtureRequest) -> None:
    from chaosrec.ctk import runner
    from chaosrec.drill import Drill

    item = request.node
    journal: dict[str, Any] = {}
    recorder = Drill(item.nodeid)
    item.stash[DRILL_KEY] = recorder
    try:
        journal = runner.run(path, target=recsys, drill=recorder)
    finally:
        recorder.close()
        if journal:
            item.stash[JOURNAL_KEY] = journal
            recorder.notes.append(
                f"chaos toolkit journal: status={journal.get('status')} "
                f"deviated={journal.get('deviated')}"
            )
        if recsys.embedded:
            recsys.wait_healthy(timeout_s=60)  # the next drill starts from steady state
    if journal.get("status") == "interrupted" and not journal.get("chaosrec"):
        # chaoslib swallowed a Ctrl-C (after rolling back): stop the session as pytest would
        raise KeyboardInterrupt(f"{path.name}: the experiment was interrupted")
    runner.check_journal(journal, path.name)
