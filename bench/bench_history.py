"""Benchmark the regression rule: its false-alarm rate on repeated runs of an unchanged
stack, and what it flags when the gateway's failover is deliberately slowed.

Each run is one pytest session of catalog drills on the embedded stack, recorded in a
history store, exactly as ``make drill`` records (``pytest -m drill ...
--chaosrec-history=URL``; each session starts its own stack). With ``--slowed``, one more
session runs with the gateway's failover slowed by policy
(``bench/history_slowed_failover.py``: for the black-holed region outage only, the
gateway waits 120 ms instead of 50 ms before failing a request over to the other
region).

Then, from the store:

* **live**: the regressions the plugin flagged on the unchanged runs (the rule in use:
  median and MAD of the last 10 passed runs, judged from the 6th run on, runs on a
  machine too busy to judge left unjudged);
* **replayed**: every figure of every drill, each run judged against the runs before it
  as the plugin judges (a busy run is history, never judged): flags / judgements per
  figure;
* **permuted**: the unchanged runs are exchangeable, so their order is shuffled
  ``--permutations`` times and replayed, for a steadier estimate of the per-judgement
  and per-run rates (a run is flagged when any figure of any drill is);
* the slowed session: each drill's outcome and what was flagged.

Run: ``.venv/bin/python bench/bench_history.py [--runs 8] [--slowed] [--store URL]
[--drills EXPR] [--analyse-only]``; ``--json FILE`` keeps the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from chaosrec.adapters.history import PastDrill, open_store
from chaosrec.drill.history import drill_figures
from chaosrec.slo.regression import FIGURES, RegressionRule

ROOT = Path(__file__).resolve().parents[1]
DRILLS = (
    "test_single_gpu_lost or test_region_outage or test_home_region_link_latency_and_jitter "
    "or test_gpu_degraded"
)


def run_session(store: str, drills: str, slowed: bool) -> tuple[int, float]:
    """One pytest session of the drills, recorded in ``store``; (exit code, seconds)."""
    env = dict(os.environ)
    argv = [
        sys.executable, "-m", "pytest", "tests/drills/test_catalog.py", "-m", "drill",
        "-k", drills, "-p", "no:cacheprovider", "-q", f"--chaosrec-history={store}",
    ]  # fmt: skip
    if slowed:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT / "bench"), env.get("PYTHONPATH", "")) if p
        )
        argv += ["-p", "history_slowed_failover"]
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    tail = [line for line in proc.stdout.splitlines() if "regress" in line or "score" in line]
    for line in tail:
        print(f"    {line}", flush=True)
    return proc.returncode, time.monotonic() - started


def passed_series(history: list[PastDrill], rule: RegressionRule) -> dict[str, list[Any]]:
    """figure -> values of the passed runs, oldest first, and ``"busy"`` -> whether each
    ran on a machine too busy to judge (such a run is history, never judged)."""
    series: dict[str, list[Any]] = defaultdict(list)
    for past in sorted(history, key=lambda p: p.run.started_at):
        if past.drill.outcome != "passed":
            continue
        series["busy"].append(rule.busy(past.drill.send_lag_p99_ms))
        for name, value in drill_figures(past.drill).items():
            if name in FIGURES:
                series[name].append(value)
    return series


def replay(
    values: list[float | None], busy: list[bool], figure: str, rule: RegressionRule
) -> list[int | None]:
    """Each run judged against the runs before it, as the plugin judges: per run, 1
    flagged, 0 judged and not flagged, None not judged (busy, no value, too few runs)."""
    out: list[int | None] = []
    for i, value in enumerate(values):
        history = values[max(0, i - rule.runs) : i][::-1]
        if busy[i] or value is None or rule.baseline(figure, history) is None:
            out.append(None)
        else:
            out.append(int(rule.judge(figure, history, value) is not None))
    return out


def analyse(
    store_url: str, permutations: int, slowed_run: str | None, rule: RegressionRule
) -> dict[str, Any]:
    with open_store(store_url, read_only=True) as store:
        runs = store.runs()[::-1]
        unchanged = [r.run_id for r in runs if r.run_id != slowed_run]
        drills = {}
        for drill_id, name in store.drill_names():
            drills[name] = [p for p in store.drill_runs(drill_id) if p.run.run_id in set(unchanged)]
        slowed = []
        if slowed_run is not None:
            for drill_id, name in store.drill_names():
                for p in store.drill_runs(drill_id):
                    if p.run.run_id == slowed_run:
                        slowed.append(
                            {
                                "drill": name,
                                "outcome": p.drill.outcome,
                                "send_lag_p99_ms": p.drill.send_lag_p99_ms,
                                "figures": drill_figures(p.drill),
                                "regressions": [r.describe() for r in p.drill.regressions],
                            }
                        )
    live = [
        f"{name}: {r.describe()}"
        for name, history in drills.items()
        for p in history
        for r in p.drill.regressions
    ]
    outcomes: dict[str, int] = defaultdict(int)
    for history in drills.values():
        for p in history:
            busy = p.drill.outcome == "passed" and rule.busy(p.drill.send_lag_p99_ms)
            outcomes["passed (machine too busy)" if busy else p.drill.outcome] += 1
    replayed: dict[str, dict[str, int]] = {}
    series_by_drill = {name: passed_series(h, rule) for name, h in drills.items()}
    for figure in FIGURES:
        marks = [
            m
            for series in series_by_drill.values()
            if figure in series
            for m in replay(series[figure], series["busy"], figure, rule)
            if m is not None
        ]
        replayed[figure] = {"flags": sum(marks), "judged": len(marks)}
    # permutations: shuffle each drill's passed runs, replay, count per figure and per run
    # (a run is judged when any drill of it is, flagged when any figure of any drill is)
    rng = random.Random(0)
    perm_flags = perm_judged = 0
    run_flags = run_judged = 0
    for _ in range(permutations):
        judged_at: dict[int, bool] = {}
        for series in series_by_drill.values():
            order = list(range(len(series["busy"])))
            rng.shuffle(order)
            busy = [series["busy"][i] for i in order]
            for figure in FIGURES:
                if figure not in series:
                    continue
                marks = replay([series[figure][i] for i in order], busy, figure, rule)
                for position, mark in enumerate(marks):
                    if mark is None:
                        continue
                    perm_judged += 1
                    perm_flags += mark
                    judged_at[position] = judged_at.get(position, False) or bool(mark)
        run_judged += len(judged_at)
        run_flags += sum(judged_at.values())
    return {
        "rule": {"min_runs": rule.min_runs, "busy_lag_ms": rule.busy_lag_ms},
        "runs": len(unchanged),
        "drills": len(drills),
        "outcomes": dict(outcomes),
        "live_flags": live,
        "replay": replayed,
        "permuted": {
            "judgements": perm_judged,
            "flags": perm_flags,
            "rate_per_judgement": perm_flags / perm_judged if perm_judged else None,
            "runs_judged": run_judged,
            "runs_flagged": run_flags,
            "rate_per_run": run_flags / run_judged if run_judged else None,
        },
        "slowed": slowed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="unchanged sessions to run")
    parser.add_argument("--slowed", action="store_true", help="then one slowed session")
    parser.add_argument("--store", default=None, help="history store (default: a temp file)")
    parser.add_argument("--drills", default=DRILLS, help="pytest -k expression")
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--analyse-only", action="store_true", help="only read the store")
    parser.add_argument("--slowed-run", default=None, help="run id of the slowed session")
    parser.add_argument("--json", default=None, help="write the numbers here")
    parser.add_argument(
        "--min-runs",
        type=int,
        default=RegressionRule.min_runs,
        help="the rule's min_runs (default: the library's)",
    )
    parser.add_argument(
        "--busy-lag-ms",
        type=float,
        default=RegressionRule.busy_lag_ms,
        help="the rule's busy gate (default: the library's)",
    )
    args = parser.parse_args()
    rule = RegressionRule(min_runs=args.min_runs, busy_lag_ms=args.busy_lag_ms)
    store = args.store or f"sqlite:///{tempfile.mkdtemp(prefix='bench-history-')}/h.sqlite"
    print(f"store: {store}", flush=True)
    slowed_run = args.slowed_run
    if not args.analyse_only:
        for i in range(args.runs):
            code, seconds = run_session(store, args.drills, slowed=False)
            print(f"run {i + 1}/{args.runs}: exit {code} in {seconds:.0f} s", flush=True)
        if args.slowed:
            code, seconds = run_session(store, args.drills, slowed=True)
            with open_store(store, read_only=True) as opened:
                slowed_run = opened.runs(last=1)[0].run_id
            print(f"slowed run {slowed_run[:12]}: exit {code} in {seconds:.0f} s", flush=True)
    result = analyse(store, args.permutations, slowed_run, rule)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps({"store": store, **result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
