"""One worker process of a distributed run: ``python -m chaosrec.load.worker FOLDER``.

It plays its share of a :class:`~chaosrec.load.plan.Plan` with the same open-loop
engine as an in-process run (:class:`~chaosrec.load.generator.LoadRun`), so a request
is timed from its scheduled send time here too. The folder is the whole protocol
(the parent, or a Locust worker relaying for its master, writes and reads it):

* ``plan.npz``: this worker's share (written before the worker starts);
* ``ready``: written by the worker once everything is imported and the plan is read;
* ``go.json``: ``{"start_at_epoch": T}`` (wall clock) starts the schedule at ``T``;
  ``{"abort": true}`` ends the worker without sending;
* ``chunk-NNNNNN.npz``: the rows that ended since the previous chunk, every 0.25 s;
* ``done.json``: ``{"t0_epoch", "max_lag_ms", "requests", "error"}``, last.

SIGTERM (or a ``stop.json`` in the folder) stops scheduling; what was measured is still
shipped. The worker gives up
when no ``go.json`` comes within 120 s (its parent is gone).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from chaosrec.load.plan import CHUNK_INTERVAL_S, Plan, chunk_bytes, write_chunk, write_json

__all__ = ["main"]

_GO_TIMEOUT_S = 120.0


def _wait_for_go(folder: Path) -> float | None:
    import json

    go = folder / "go.json"
    deadline = time.monotonic() + _GO_TIMEOUT_S
    while time.monotonic() < deadline:
        if go.exists():
            data = json.loads(go.read_text())
            return None if data.get("abort") else float(data["start_at_epoch"])
        time.sleep(0.005)
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m chaosrec.load.worker FOLDER", file=sys.stderr)
        return 2
    folder = Path(args[0])
    from chaosrec.load.generator import LoadRun
    from chaosrec.load.schedule import Arrivals

    plan = Plan.from_bytes((folder / "plan.npz").read_bytes())
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    (folder / "ready").touch()
    start_at = _wait_for_go(folder)
    if start_at is None or stop.is_set() or not plan.times.size:
        write_json(folder / "done.json", {"t0_epoch": start_at, "requests": 0, "error": None})
        return 0
    url = plan.requests[0].url if plan.requests else "http://127.0.0.1/"
    run = LoadRun(
        url,
        schedule=Arrivals(plan.times, plan.duration_s),
        request=plan.request,
        timeout_s=plan.timeout_s,
        max_inflight=plan.max_inflight,
        start_at_epoch=start_at,
        ship_rows=True,
        memory_budget_mb=1e9,  # the parent checked the whole run against its budget
    )
    seq = 0
    error: str | None = None

    def ship() -> None:
        nonlocal seq
        rows = run.take_new_rows()
        if rows:
            write_chunk(folder, seq, chunk_bytes(rows))
            seq += 1

    try:
        run.start()
        while run.running:
            if (folder / "stop.json").exists():
                stop.set()
            if stop.is_set():
                run.stop()  # no new sends; the last answers still arrive and ship
                time.sleep(CHUNK_INTERVAL_S)
            else:
                stop.wait(CHUNK_INTERVAL_S)
            ship()
        run.join()
    except Exception as err:  # noqa: BLE001 - reported to the parent, which raises it
        error = f"{type(err).__name__}: {err}"
    ship()
    write_json(
        folder / "done.json",
        {
            "t0_epoch": run.t0_epoch,
            "max_lag_ms": run.max_lag_ms,
            "requests": run.n_requests,
            "error": error,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
