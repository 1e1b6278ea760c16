"""The recorded-traffic format, its checks, the deny-list, and how a replay schedules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chaosrec.errors import ConfigError
from chaosrec.load.traffic import FORMAT, Replay, TrafficWriter, read_traffic, scrub_headers

HEADER = json.dumps({"format": FORMAT, "version": 1})


def _write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_written_traffic_reads_back(tmp_path: Path) -> None:
    writer = TrafficWriter(1.0, source="test", max_requests=3)
    writer.add(0.2, "POST", "/b", [("Content-Type", "application/json")], b'{"a": 1}')
    writer.add(0.1, "GET", "/a?x=1", [("Cookie", "s=1"), ("X-A", "1"), ("X-A", "2")], None)
    writer.add(0.3, "PUT", "/bin", [], b"\xff\xfe")
    writer.add(0.4, "GET", "/over", [], None)
    assert writer.skipped == 1
    path = tmp_path / "rec.jsonl"
    path.write_text(writer.text())
    entries = read_traffic(path)
    assert [(e.t, e.method, e.path) for e in entries] == [
        (0.1, "GET", "/a?x=1"),
        (0.2, "POST", "/b"),
        (0.3, "PUT", "/bin"),
    ]
    assert dict(entries[0].headers) == {"X-A": "1, 2"}  # no cookie; repeats joined
    assert entries[1].body == b'{"a": 1}'
    assert entries[2].body == b"\xff\xfe"  # not UTF-8: carried as body_b64
    assert "body_b64" in path.read_text().splitlines()[3]


def test_scrub_removes_credentials_and_hop_by_hop_headers() -> None:
    kept = scrub_headers(
        [
            ("Authorization", "Bearer x"),
            ("cookie", "a"),
            ("X-Api-Key", "k"),
            ("Host", "h"),
            ("Content-Length", "3"),
            ("Connection", "close"),
            ("Accept", "*/*"),
        ]
    )
    assert kept == {"Accept": "*/*"}
    assert scrub_headers([("X-Mine", "1")], deny=["x-mine"]) == {}


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        pytest.param(
            ['{"t": 0, "method": "GET", "path": "/"}'],
            r":1: the first line must be the header",
            id="no-header",
        ),
        pytest.param(
            [json.dumps({"format": FORMAT, "version": 2})],
            r":1: version=2 is not supported",
            id="version",
        ),
        pytest.param([HEADER], r"has no requests", id="empty"),
        pytest.param([HEADER, "{oops"], r":2: not JSON", id="not-json"),
        pytest.param(
            [HEADER, '{"t": -1, "method": "GET", "path": "/"}'],
            r":2: t=-1 must be",
            id="negative-t",
        ),
        pytest.param(
            [HEADER, '{"t": 0, "method": "BREW", "path": "/"}'], r":2: method='BREW'", id="method"
        ),
        pytest.param(
            [HEADER, '{"t": 0, "method": "GET", "path": "x"}'],
            r":2: path='x' must start with /",
            id="path",
        ),
        pytest.param(
            [HEADER, '{"t": 0, "method": "GET", "path": "/", "headers": {"a": 1}}'],
            r":2: headers must be an object of strings",
            id="headers",
        ),
        pytest.param(
            [
                HEADER,
                '{"t": 1, "method": "GET", "path": "/"}',
                '{"t": 0.5, "method": "GET", "path": "/"}',
            ],
            r":3: t=0.5 is before the previous request's 1",
            id="backwards",
        ),
    ],
)
def test_bad_recordings_name_their_line(tmp_path: Path, lines: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_traffic(_write(tmp_path, *lines))


def test_replay_divides_gaps_by_its_speed_and_denies_headers(tmp_path: Path) -> None:
    lines = [HEADER] + [
        json.dumps(
            {
                "t": t,
                "method": "GET",
                "path": f"/r{k}",
                "headers": {"Authorization": "x", "X-K": str(k)},
            }
        )
        for k, t in enumerate([5.0, 5.0, 5.5, 7.0])
    ]
    replay = Replay.load(_write(tmp_path, *lines), speed=2.0)
    np.testing.assert_allclose(replay.times(), [0.0, 0.0, 0.25, 1.0])
    assert replay.n_requests == 4
    req = replay.request(3)
    assert req.url == "/r3" and req.headers == (("X-K", "3"),)
    with pytest.raises(ConfigError, match=r"speed=0 must be > 0"):
        Replay.load(_write(tmp_path, *lines), speed=0)


def test_the_committed_shopper_recording_reads() -> None:
    path = Path(__file__).parents[2] / "fixtures" / "traffic" / "shoppers.jsonl"
    entries = read_traffic(path)
    assert len(entries) > 1000
    assert {e.method for e in entries} == {"GET", "POST"}
    assert not any(
        name.lower() in ("cookie", "authorization") for e in entries for name in e.headers
    )
