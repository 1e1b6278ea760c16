"""The drill history from outside (pytester, the plugin through its entry point, no
conftest), on a drill against a throwaway local service behind a real Toxiproxy: where
runs are recorded (the default store under the rootdir, the option, the environment,
the ini key, off), bad stores stopping the run before any drill, a regression reported
(and failing the run only when asked), pytest-xdist, and the Allure category."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace

import pytest

from chaosrec.adapters.history import open_store
from chaosrec.core.paths import cache_dir

pytestmark = pytest.mark.integration

_CACHE_DIR = str(cache_dir())

DRILLS = '''
import http.server
import os
import threading
import time

import pytest


@pytest.fixture(scope="module")
def service():
    delay_s = float(os.environ.get("SERVICE_DELAY_S", "0"))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if delay_s:
                time.sleep(delay_s)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 256  # not 5: bursts of connections on busy cores

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.drill
@pytest.mark.parametrize("ms", [20])
def test_latency_on_their_service(service, toxiproxy, chaos, load, slo, ms):
    """Their service with 20 ms added on its link."""
    proxy = toxiproxy.proxy("their-service", upstream=service)
    with load.run(f"http://{proxy.listen}/", rate=100, duration=2.5) as run:
        run.wait(1.0)
        with chaos.latency(proxy, ms=ms):
            run.wait(1.0)
    slo.assert_met(run, availability=0.99, p99_ms=2000)


def test_not_a_drill(drill):
    drill.enter("baseline")
'''

SECOND_DRILL = """
import pytest


@pytest.mark.drill
def test_only_phases(drill):
    drill.enter("baseline")
"""


@pytest.fixture(autouse=True)
def _shared_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # pytester points HOME at a temp dir; keep using the installed Toxiproxy binary
    monkeypatch.setenv("CHAOSREC_CACHE_DIR", _CACHE_DIR)
    monkeypatch.delenv("CHAOSREC_HISTORY", raising=False)


def _runs(url: str) -> list[str]:
    with open_store(url, read_only=True) as store:
        return [r.run_id for r in store.runs()]


def test_every_run_is_recorded_in_the_default_store_under_the_rootdir(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_their_service=DRILLS)
    pytester.makeini("[pytest]\n")  # the rootdir
    (pytester.path / "sub").mkdir()
    first = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--chaosrec-report-dir=out")
    first.assert_outcomes(passed=2)
    first.stdout.fnmatch_lines(
        [
            "*= chaosrec drills =*",
            "resilience score: 100.0/100 (trend: 100.0 (this run))",
            "regressions: none",
            # the first run has nothing to be compared with (or ran on a busy machine)
            "compared with history: 0 of 1 drill (not judged: 1 *)",
            "drill history: run * recorded in sqlite:///*/.chaosrec/history.sqlite",
            "resilience score: out/resilience-score.json",
        ]
    )
    store = f"sqlite:///{pytester.path / '.chaosrec' / 'history.sqlite'}"
    second = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--rootdir={pytester.path}", str(pytester.path)
    )
    second.assert_outcomes(passed=2)
    assert len(_runs(store)) == 2
    with open_store(store, read_only=True) as opened:
        (name,) = opened.drill_names()  # test_not_a_drill has no drill marker
        assert name[1] == "test_latency_on_their_service[20]"
        past = opened.drill_runs(name[0])
        assert [p.drill.params for p in past] == [{"ms": 20}, {"ms": 20}]
        assert past[0].drill.faults[0].label == "latency(their-service, ms=20)"
        assert {e.metric for e in past[0].drill.effects} >= {"p50_ms", "availability"}
        assert past[0].run.score == 100.0 and past[0].drill.blast_radius == "replica"
    summary = (pytester.path / "out" / "drill-summary.md").read_text()
    assert "## Resilience score" in summary and "## Fault versus baseline" in summary
    assert "latency(their-service, ms=20) added" in summary
    score = json.loads((pytester.path / "out" / "resilience-score.json").read_text())
    assert score["score"] == 100.0 and len(score["trend"]) == 1


@pytest.mark.parametrize("how", ["option", "environment", "ini"])
def test_the_store_is_an_option_an_environment_variable_or_an_ini_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    pytester.makepyfile(test_phases=SECOND_DRILL)
    wanted = pytester.path / "elsewhere" / "drills.sqlite"
    url = f"sqlite:///{wanted}"
    args = ["-p", "no:cacheprovider"]
    if how == "option":
        monkeypatch.setenv("CHAOSREC_HISTORY", "off")  # the option wins
        args.append(f"--chaosrec-history={url}")
    elif how == "environment":
        pytester.makeini("[pytest]\nchaosrec_history = off\n")  # the environment wins
        monkeypatch.setenv("CHAOSREC_HISTORY", url)
    else:
        pytester.makeini(f"[pytest]\nchaosrec_history = {url}\n")
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    assert wanted.is_file() and len(_runs(url)) == 1
    assert not (pytester.path / ".chaosrec").exists()


def test_off_records_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_phases=SECOND_DRILL)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--chaosrec-history=off")
    result.assert_outcomes(passed=1)
    assert "resilience score" not in result.stdout.str()
    assert not (pytester.path / ".chaosrec").exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("history.sqlite", "--chaosrec-history='history.sqlite': unknown history store; use"),
        (
            "postgresql://drills:hunter2@127.0.0.1:1/chaosrec",
            "--chaosrec-history=postgresql://***@127.0.0.1:1/chaosrec: cannot connect to the "
            "drill history",
        ),
    ],
    ids=["not-a-url", "server-down"],
)
def test_a_bad_store_stops_the_run_before_any_drill(
    pytester: pytest.Pytester, value: str, message: str
) -> None:
    pytester.makepyfile(
        test_phases=SECOND_DRILL.replace("drill.enter", "open('ran', 'w'); drill.enter")
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--chaosrec-history={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1 and message in errors[0], result.stderr.str()
    assert "hunter2" not in result.stdout.str() + result.stderr.str()
    assert not (pytester.path / "ran").exists()


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        ("chaosrec_regression_runs = ten", "chaosrec_regression_runs='ten' (ini): use a whole"),
        ("chaosrec_regression_busy_lag_ms = slow", "chaosrec_regression_busy_lag_ms='slow'"),
        ("chaosrec_regression_min_runs = 20", "min_runs=20 is above the maximum of 10"),
    ],
    ids=["runs", "lag", "min-above-runs"],
)
def test_a_bad_regression_rule_is_a_usage_error(
    pytester: pytest.Pytester, ini: str, message: str
) -> None:
    pytester.makepyfile(test_phases=SECOND_DRILL)
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def _copy_last_run(url: str, times: int) -> None:
    """Record the store's last run ``times`` more times (new ids, earlier dates): the same
    measured figures, as an unchanged stack's history would show them."""
    with open_store(url) as store:
        (summary,) = store.runs(last=1)
        past = [p.drill for d, _ in store.drill_names() for p in store.drill_runs(d, last=1)]
        from chaosrec.adapters.history import RunRecord

        for i in range(times):
            store.record(
                RunRecord(
                    **{**summary.__dict__, "run_id": uuid.uuid4().hex,
                       "started_at": summary.started_at - 60 * (i + 1)},
                    drills=tuple(replace(d, regressions=()) for d in past),
                )
            )  # fmt: skip


def test_a_regression_is_reported_and_fails_the_run_only_when_asked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_their_service=DRILLS)
    # judged however busy the machine is: this tests the plumbing, not the rule's noise gate
    pytester.makeini("[pytest]\nchaosrec_regression_busy_lag_ms = off\n")
    url = f"sqlite:///{pytester.path / 'h.sqlite'}"
    base = ["-p", "no:cacheprovider", f"--chaosrec-history={url}", "-k", "latency"]
    pytester.runpytest_subprocess(*base).assert_outcomes(passed=1, deselected=1)
    _copy_last_run(url, 4)  # five runs of an unchanged service

    monkeypatch.setenv("SERVICE_DELAY_S", "0.06")  # the service got slower
    slower = pytester.runpytest_subprocess(*base)
    slower.assert_outcomes(passed=1, deselected=1)  # its SLO still passes
    assert slower.ret == 0
    slower.stdout.fnmatch_lines(
        [
            "regressions: * (SLOs may still pass)",
            "  regressed: test_latency_on_their_service?20?: p50_ms *: median of the last 5 "
            "runs *, regressed past *",
            "compared with history: 1 of 1 drill",
        ]
    )

    failing = pytester.runpytest_subprocess(*base, "--chaosrec-fail-on-regression")
    failing.assert_outcomes(passed=1, deselected=1)
    assert failing.ret == pytest.ExitCode.TESTS_FAILED
    assert len(_runs(url)) == 7


def test_xdist_workers_judge_and_the_controller_records_one_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_their_service=DRILLS, test_phases=SECOND_DRILL)
    url = f"sqlite:///{pytester.path / 'h.sqlite'}"
    started = time.time()
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", f"--chaosrec-history={url}"
    )
    result.assert_outcomes(passed=3)
    with open_store(url, read_only=True) as store:
        (run,) = store.runs()
        assert run.drill_count == 2 and run.started_at >= started - 5
        names = sorted(n for _, n in store.drill_names())
        assert names == ["test_latency_on_their_service[20]", "test_only_phases"]
