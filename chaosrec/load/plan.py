"""A load run made portable: the whole schedule and every request, for other processes.

A distributed run (``workers=N`` local processes, or Locust workers on other hosts)
cannot hand a Python callable to another process, so the parent *materialises* it:
every due time, and every request as an index into a table of the distinct requests
(the gateway's default load has 4,096 distinct users, so the table stays small).
Worker ``k`` of ``n`` plays requests ``k, k + n, k + 2n, ...``: every worker sees the
whole time range at ``1/n`` of the rate, so a fault hits every worker's traffic.

Workers ship back what they measured as *chunks*: ``.npz`` files of the rows that
ended since the last chunk (columns of :class:`~chaosrec.slo.log.RequestLog` plus each
row's request number), written atomically every :data:`CHUNK_INTERVAL_S`. The process
that merges reads every worker's chunks as they appear, so a guardrail watching a
distributed run sees its requests within about a quarter of a second.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from chaosrec.errors import ConfigError
from chaosrec.load.requests import HttpRequest
from chaosrec.slo.log import Row

__all__ = [
    "CHUNK_INTERVAL_S",
    "MAX_DISTINCT_REQUESTS",
    "Plan",
    "read_chunk",
    "write_chunk",
]

#: how often a worker writes the rows that ended since its last chunk, seconds
CHUNK_INTERVAL_S = 0.25
#: distinct requests a plan may carry (each is shipped to every worker)
MAX_DISTINCT_REQUESTS = 200_000


@dataclass(frozen=True)
class Plan:
    """Due times, the request each one sends, and the run's settings."""

    times: npt.NDArray[np.float64]
    which: npt.NDArray[np.int32]
    requests: tuple[HttpRequest, ...]
    duration_s: float
    timeout_s: float
    max_inflight: int

    @classmethod
    def materialise(
        cls,
        times: npt.NDArray[np.float64],
        source: Callable[[int], HttpRequest],
        *,
        duration_s: float,
        timeout_s: float,
        max_inflight: int,
    ) -> Plan:
        """Call ``source(i)`` for every request, keeping each distinct request once."""
        index: dict[HttpRequest, int] = {}
        which = np.empty(times.shape[0], dtype=np.int32)
        for i in range(times.shape[0]):
            req = source(i)
            k = index.get(req)
            if k is None:
                if len(index) >= MAX_DISTINCT_REQUESTS:
                    raise ConfigError(
                        f"the run has more than {MAX_DISTINCT_REQUESTS:,} distinct requests, "
                        "too many to ship to worker processes; reuse requests in the builder "
                        "or run in-process (workers=1)"
                    )
                k = index[req] = len(index)
            which[i] = k
        return cls(times, which, tuple(index), duration_s, timeout_s, max_inflight)

    def share(self, k: int, n: int) -> Plan:
        """Worker ``k`` of ``n``: requests ``k, k + n, ...`` (``max_inflight`` split too)."""
        return Plan(
            self.times[k::n].copy(),
            self.which[k::n].copy(),
            self.requests,
            self.duration_s,
            self.timeout_s,
            max(1, self.max_inflight // n),
        )

    # -- files and messages ----------------------------------------------------------------

    def to_bytes(self) -> bytes:
        meta = {
            "duration_s": self.duration_s,
            "timeout_s": self.timeout_s,
            "max_inflight": self.max_inflight,
            "requests": [
                [r.method, r.url, [list(h) for h in r.headers], _b64(r.body)] for r in self.requests
            ],
        }
        out = io.BytesIO()
        np.savez(
            out,
            times=self.times,
            which=self.which,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Plan:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes().decode())
            times = np.asarray(npz["times"], dtype=np.float64)
            which = np.asarray(npz["which"], dtype=np.int32)
        requests = tuple(
            HttpRequest(m, u, tuple((str(a), str(b)) for a, b in h), _unb64(body))
            for m, u, h, body in meta["requests"]
        )
        return cls(
            times,
            which,
            requests,
            float(meta["duration_s"]),
            float(meta["timeout_s"]),
            int(meta["max_inflight"]),
        )

    def request(self, i: int) -> HttpRequest:
        return self.requests[int(self.which[i])]


def _b64(body: bytes | None) -> str | None:
    import base64

    return None if body is None else base64.b64encode(body).decode("ascii")


def _unb64(text: str | None) -> bytes | None:
    import base64

    return None if text is None else base64.b64decode(text)


# -- chunks ------------------------------------------------------------------------------


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def chunk_bytes(rows: list[tuple[int, Row]]) -> bytes:
    """Rows as one ``.npz`` (no pickles: strings as unicode arrays, None as '')."""
    out = io.BytesIO()
    if rows:
        index, values = zip(*rows, strict=True)
        scheduled, sent, done, status, region, replica, degraded, error = zip(*values, strict=True)
    else:
        index = scheduled = sent = done = status = region = replica = degraded = error = ()
    np.savez(
        out,
        index=np.asarray(index, dtype=np.int64),
        scheduled=np.asarray(scheduled, dtype=np.float64),
        sent=np.asarray(sent, dtype=np.float64),
        done=np.asarray(done, dtype=np.float64),
        status=np.asarray(status, dtype=np.int32),
        degraded=np.asarray(degraded, dtype=np.bool_),
        region=np.asarray([v or "" for v in region], dtype=np.str_),
        replica=np.asarray([v or "" for v in replica], dtype=np.str_),
        error=np.asarray([v or "" for v in error], dtype=np.str_),
    )
    return out.getvalue()


def write_chunk(folder: Path, seq: int, data: bytes) -> Path:
    """Write chunk ``seq`` (bytes from :func:`chunk_bytes`) into ``folder``, atomically."""
    path = folder / f"chunk-{seq:06d}.npz"
    _atomic_write(path, data)
    return path


def read_chunk(data: bytes | Path) -> list[tuple[int, Row]]:
    """The rows of one chunk, as ``(request number, row)``."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        cols: dict[str, Any] = {name: npz[name].tolist() for name in npz.files}
    return [
        (
            int(i),
            (s, se, d, st, r or None, rp or None, bool(dg), e or None),
        )
        for i, s, se, d, st, r, rp, dg, e in zip(
            cols["index"],
            cols["scheduled"],
            cols["sent"],
            cols["done"],
            cols["status"],
            cols["region"],
            cols["replica"],
            cols["degraded"],
            cols["error"],
            strict=True,
        )
    ]


def write_json(path: Path, data: dict[str, Any]) -> None:
    _atomic_write(path, json.dumps(data).encode())
