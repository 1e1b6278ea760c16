"""Shared fixtures: the integration tests use the plugin's session ``recsys`` stack."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from chaosrec.stack.stack import EmbeddedStack

pytest_plugins = ["pytester"]

# CI replays the same examples every run (a failure there reproduces locally with
# HYPOTHESIS_PROFILE=ci); developers get fresh random examples.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


_SLOW_FOLDERS = ("integration", "drills")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything outside ``tests/unit`` starts real processes: mark it ``integration``,
    so ``-m "not integration"`` (``make check``) selects the fast, offline tier."""
    root = Path(__file__).parent
    for item in items:
        path = Path(str(item.path))
        inside = path.parent.name in _SLOW_FOLDERS and path.parent.parent == root
        if inside or root not in path.parents:  # tests/integration, tests/drills, experiments/
            item.add_marker(pytest.mark.integration)


def _wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll ``predicate`` every 20 ms; seconds until it held; fail after ``timeout_s``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.02)
    return time.monotonic() - started


def _installed_tool(find: Callable[[], Path | str | None], what: str) -> Path:
    """The tool ``find()`` locates; skips without it, but fails in CI (set-up must install it)."""
    found = find()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is missing in CI: `chaosrec setup` must install it")
        pytest.skip(f"{what} not installed (run `chaosrec setup`)")
    return Path(found)


@pytest.fixture
def installed_tool() -> Callable[[Callable[[], Path | str | None], str], Path]:
    """``installed_tool(find, what)``: an external tool (Allure, Chromium) or a skip."""
    return _installed_tool


@pytest.fixture
def wait_for() -> Callable[[Callable[[], bool], float, str], float]:
    """``wait_for(predicate, timeout_s, what)``: wait on a condition, never a fixed sleep."""
    return _wait_for


def _tree_nices(pid: int) -> list[int]:
    """The nice value of every thread of ``pid`` and of its descendants (Linux /proc)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        task = Path(f"/proc/{current}/task")
        for tid in os.listdir(task):
            stat = (task / tid / "stat").read_text()
            out.append(int(stat.rsplit(")", 1)[1].split()[16]))  # field 19, "nice"
        todo.extend(int(c) for c in (task / str(current) / "children").read_text().split())
    return out


@pytest.fixture
def tree_nices() -> Callable[[int], list[int]]:
    """``tree_nices(pid)``: nice values of a process tree's threads, to check priorities."""
    return _tree_nices


@pytest.fixture(scope="session")
def stack(recsys: Any) -> EmbeddedStack:
    """The embedded 2 regions x 2 replicas stack behind ``recsys`` (started once)."""
    assert recsys.stack is not None, "these tests need the embedded target"
    embedded: EmbeddedStack = recsys.stack
    return embedded


@pytest.fixture
def clean_stack(stack: EmbeddedStack) -> Iterator[EmbeddedStack]:
    """The session stack, checked healthy before the test and reset to no faults after it."""
    stack.wait_healthy(timeout_s=30)
    try:
        yield stack
    finally:
        stack.toxiproxy.reset()
        for replica_id in stack.replicas:
            stack.set_gpu_fault(replica_id, {})
        stack.wait_healthy(timeout_s=30)
