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
  median and MAD of the last 10 passed runs, judged from the 6th run on);
* **replayed**: every figure of every drill, each run judged against the runs before it
  (:func:`chaosrec.slo.regression.false_alarms`): flags / judgements per figure;
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
from chaosrec.slo.regression import FIGURES, RegressionRule, false_alarms

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


def passed_series(history: list[PastDrill], rule: RegressionRule) -> dict[str, list[float | None]]:
    """figure -> values of the passed runs on a machine not too busy to judge, oldest
    first (the runs the rule judges and compares with)."""
    series: dict[str, list[float | None]] = defaultdict(list)
    for past in sorted(history, key=lambda p: p.run.started_at):
        if past.drill.outcome != "passed" or rule.busy(past.drill.send_lag_p99_ms):
            continue
        for name, value in drill_figures(past.drill).items():
            if name in FIGURES:
                series[name].append(value)
    return series


def analyse(store_url: str, permutations: int, slowed_run: str | None) -> dict[str, Any]:
    rule = RegressionRule()
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
    replay: dict[str, dict[str, int]] = {}
    series_by_drill = {name: passed_series(h, rule) for name, h in drills.items()}
    for figure in FIGURES:
        flags, judged = false_alarms(
            [s[figure] for s in series_by_drill.values() if figure in s], figure, rule
        )
        replay[figure] = {"flags": flags, "judged": judged}
    # permutations: shuffle each drill's passed runs, replay, count per figure and per run
    rng = random.Random(0)
    perm_flags = perm_judged = 0
    run_flags = run_judged = 0
    for _ in range(permutations):
        per_position: dict[int, bool] = defaultdict(bool)
        for series in series_by_drill.values():
            n = len(next(iter(series.values()), []))
            order = list(range(n))
            rng.shuffle(order)
            for figure, values in series.items():
                shuffled = [values[i] for i in order]
                for i, value in enumerate(shuffled):
                    history = shuffled[max(0, i - rule.runs) : i][::-1]
                    if value is None or rule.baseline(figure, history) is None:
                        continue
                    perm_judged += 1
                    flagged = rule.judge(figure, history, value) is not None
                    perm_flags += flagged
                    per_position[i] |= flagged
        judged_positions = {
            i
            for series in series_by_drill.values()
            for values in series.values()
            for i in range(len(values))
            if i >= rule.min_runs
        }
        run_judged += len(judged_positions)
        run_flags += sum(per_position[i] for i in judged_positions)
    return {
        "runs": len(unchanged),
        "drills": len(drills),
        "outcomes": dict(outcomes),
        "live_flags": live,
        "replay": replay,
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
    args = parser.parse_args()
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
    result = analyse(store, args.permutations, slowed_run)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps({"store": store, **result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
