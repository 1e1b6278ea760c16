"""Shared fixtures: integration tests share one embedded 2 x 2 stack per session (per worker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaosrec.stack.stack import EmbeddedStack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    """The default 2 regions x 2 replicas stack, started once for the session."""
    with EmbeddedStack("default", run_dir=tmp_path_factory.mktemp("stack")) as running:
        yield running


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
