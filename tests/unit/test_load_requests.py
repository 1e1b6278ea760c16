"""Request shapes: the argument checks, the bytes on the wire, gRPC's status mapping and
the portable plan a distributed run ships to its workers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from chaosrec.errors import ConfigError
from chaosrec.load._http import _Origin, encode
from chaosrec.load.grpc import GRPC_STATUS, status_of
from chaosrec.load.plan import Plan, chunk_bytes, read_chunk
from chaosrec.load.requests import HttpRequest, request_source

URL = "http://127.0.0.1:8080/api"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"method": "BREW"}, r"method='BREW' must be one of", id="method"),
        pytest.param({"json": {}, "content": b"x"}, r"json= or content=, not both", id="both"),
        pytest.param({"json": {1, 2}}, r"json= cannot be serialised", id="json-set"),
        pytest.param({"json": float("nan")}, r"json= cannot be serialised", id="json-nan"),
        pytest.param({"content": 5}, r"content= must be bytes or str, not int", id="content"),
        pytest.param({"headers": {"Bad Name": "x"}}, r"'Bad Name' is not a valid", id="name"),
        pytest.param({"headers": {"X": "a\r\nB: c"}}, r"line break", id="injection"),
        pytest.param(
            {"headers": {"Transfer-Encoding": "chunked"}}, r"set by chaosrec", id="own-header"
        ),
    ],
)
def test_bad_request_shapes(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        request_source(URL, **kwargs)


def test_builders_and_shapes_are_exclusive() -> None:
    with pytest.raises(ConfigError, match=r"give request= .* or json=, not both"):
        request_source(URL, json={}, request=lambda i: "/x")
    with pytest.raises(ConfigError, match=r"request\(0\) returned int"):
        request_source(URL, request=lambda i: 5)  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigError, match=r"must start with http"):
        request_source("ftp://x/")


def test_the_wire_bytes() -> None:
    req = HttpRequest.build(URL, method="post", json={"a": 1}, params={"q": "x y"})
    wire = encode(req, _Origin.of(req.url))
    assert wire == (
        b"POST /api?q=x+y HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: chaosrec\r\n"
        b'Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}'
    )
    get = HttpRequest.build("https://example.test/", headers={"Host": "other"})
    assert encode(get, _Origin.of(get.url)).startswith(b"GET / HTTP/1.1\r\nUser-Agent: chaosrec")


def test_relative_builder_paths_join_the_run_url() -> None:
    source = request_source(URL, request=lambda i: HttpRequest.build(f"/u/{i}", method="DELETE"))
    assert source(3) == HttpRequest("DELETE", "http://127.0.0.1:8080/u/3")


def test_grpc_codes_map_to_http_like_statuses() -> None:
    assert status_of("StatusCode.OK") == 200
    assert status_of("UNAVAILABLE") == 503
    assert status_of("DEADLINE_EXCEEDED") == 0  # our own timeout, like an HTTP timeout
    assert status_of("NOT_FOUND") == 404 and status_of("INTERNAL") == 500
    assert status_of("SOMETHING_NEW") == 500
    assert len(GRPC_STATUS) == 17  # every code of google.rpc.Code


def test_a_plan_round_trips_and_is_dealt_without_overlap() -> None:
    times = np.arange(10) / 10.0
    reqs = [HttpRequest.build(URL, params={"u": i % 3}) for i in range(10)]
    plan = Plan.materialise(times, reqs.__getitem__, duration_s=1, timeout_s=2, max_inflight=8)
    assert len(plan.requests) == 3  # distinct requests shipped once
    back = Plan.from_bytes(plan.to_bytes())
    assert [back.request(i) for i in range(10)] == reqs
    shares = [plan.share(k, 3) for k in range(3)]
    merged = sorted(t for s in shares for t in s.times.tolist())
    assert merged == times.tolist() and shares[0].max_inflight == 2


def test_chunks_round_trip() -> None:
    rows = [
        (0, (0.0, 0.001, 0.01, 200, "r1", "r1.0", False, None)),
        (5, (0.5, 0.5, 0.5, -1, None, None, False, "dropped")),
    ]
    assert read_chunk(chunk_bytes(rows)) == rows
    assert read_chunk(chunk_bytes([])) == []


def test_a_builder_cannot_carry_load_past_the_target_guard() -> None:
    from chaosrec.core.guard import TargetGuard
    from chaosrec.errors import TargetNotAllowedError

    def build(i: int) -> str:
        return "/here" if i < 5 else "http://10.0.3.7:8080/there"

    source = request_source(URL, request=build, guard=TargetGuard())
    assert source(0).url == "http://127.0.0.1:8080/here"
    with pytest.raises(TargetNotAllowedError, match=r"request 5's URL .* is on 10.0.3.7"):
        source(5)
    allowed = request_source(URL, request=build, guard=TargetGuard(("10.0.3.*",)))
    assert allowed(6).url == "http://10.0.3.7:8080/there"
