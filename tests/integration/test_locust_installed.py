"""Installing ``chaosrec[locust]`` must break neither chaosrec's suite nor a user's.

Locust ships a pytest plugin (``pytest_locust``, entry point ``locust``) that registers
fixtures named ``session`` and ``fastsession`` and an option ``--host``; and importing
``locust`` monkey-patches the whole process with gevent, which would turn chaosrec's
load thread and asyncio loop into greenlets. chaosrec never imports Locust in the test
process (only its ``locust`` child processes do), and a project's own fixtures keep
their names. Run in a subprocess on a throwaway project (pytester), with both plugins
found through their entry points, as a user's suite finds them.
"""

from __future__ import annotations

import importlib.metadata

import pytest

pytestmark = pytest.mark.integration


def _locust_plugin_installed() -> bool:
    return any(ep.name == "locust" for ep in importlib.metadata.entry_points(group="pytest11"))


def test_a_users_suite_keeps_its_fixtures_and_no_gevent_patching(
    pytester: pytest.Pytester,
) -> None:
    if not _locust_plugin_installed():
        pytest.fail("locust is not installed: the dev extra installs chaosrec[locust]")
    pytester.makeconftest(
        """
import pytest

@pytest.fixture
def session():
    return "the user's database session"
"""
    )
    pytester.makepyfile(
        test_theirs="""
import sys
import threading


def test_their_session_fixture_wins(session):
    assert session == "the user's database session"


def test_chaosrec_fixtures_are_there(load, slo):
    from chaosrec.fixtures import LoadFixture
    assert isinstance(load, LoadFixture)


def test_nothing_was_monkey_patched():
    assert "gevent" not in sys.modules and "locust" not in sys.modules
    assert threading.Thread.__module__ == "threading"


def test_chaosrec_load_api_imports_without_locust():
    import chaosrec.load
    from chaosrec.load import LocustWorkers
    assert LocustWorkers.__module__ == "chaosrec.load.locust"
    assert "locust" not in sys.modules
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    plugins = pytester.runpytest_subprocess("--trace-config", "--co", "-q")
    plugins.stdout.fnmatch_lines(["*pytest_locust*", "*chaosrec*"])
