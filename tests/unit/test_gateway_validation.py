"""What the gateway accepts from a client: query strings, bodies, the admin token, policy
changes and its own config. Tables of cases; the HTTP side is in
``tests/integration/test_gateway_hostile.py``."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaosrec.errors import ConfigError
from chaosrec.stack.gateway.config import (
    LIMIT_RULES,
    POLICY_RULES,
    GatewayConfig,
    PolicyConfig,
    UpstreamConfig,
)
from chaosrec.stack.gateway.edge import log_handler
from chaosrec.stack.gateway.validation import (
    MAX_BATCH,
    MAX_JSON_DEPTH,
    RequestError,
    check_bearer,
    check_body_headers,
    check_query,
    json_depth,
    parse_batch,
    parse_json,
    parse_policy_changes,
    parse_recommend,
    show,
)

LIMITS: dict[str, Any] = {"max_k": 50, "n_users": 1000, "regions": ["a", "b"], "home_region": "a"}
TOKEN = "t" * 40
P = pytest.param


def _query(**params: str) -> list[tuple[str, str]]:
    return list(params.items())


# -- GET /recommend ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        P(_query(user_id="7"), (7, 10, "a"), id="defaults"),
        P(_query(user_id="007", k="50", region="b"), (7, 50, "b"), id="all-given"),
        P(_query(user_id="999", k="1"), (999, 1, "a"), id="bounds"),
    ],
)
def test_recommend_query_accepted(
    pairs: list[tuple[str, str]], expected: tuple[int, int, str]
) -> None:
    request = parse_recommend(pairs, **LIMITS)
    assert (request.user_id, request.k, request.region) == expected


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        P([], r"^user_id=None must be a non-negative integer below 1000", id="missing"),
        P(_query(user_id="abc"), r"^user_id='abc' must be a non-negative", id="text"),
        P(_query(user_id="-1"), r"^user_id=-1 must be a non-negative", id="negative"),
        P(_query(user_id="1000"), r"^user_id=1000 must be .* below 1000", id="past-n"),
        P(_query(user_id="1e400"), r"^user_id='1e400' must be", id="huge-float"),
        P(_query(user_id="Infinity"), r"^user_id='Infinity' must be", id="infinity"),
        P(_query(user_id="-Infinity"), r"^user_id='-Infinity' must", id="-infinity"),
        P(_query(user_id="NaN"), r"^user_id='NaN' must be", id="nan"),
        P(_query(user_id="1.5"), r"^user_id='1.5' must be", id="fraction"),
        P(_query(user_id=" 7"), r"^user_id=' 7' must be", id="space"),
        P(_query(user_id="1_000"), r"^user_id='1_000' must be", id="underscore"),
        P(_query(user_id="0x10"), r"^user_id='0x10' must be", id="hex"),
        P(_query(user_id="\u0663"), r"^user_id='\u0663' must be", id="arabic-digit"),
        P(_query(user_id="\uff17"), r"^user_id='\uff17' must be", id="fullwidth-digit"),
        P(_query(user_id="7\n"), r"^user_id='7\\n' must be", id="newline"),
        P(_query(user_id="9" * 5000), r"^user_id='9+\.\.\.9+' is out of range", id="5000-digits"),
        P(_query(user_id="1", k="0"), r"^k=0 must be in \[1, 50\]$", id="k-zero"),
        P(_query(user_id="1", k="51"), r"^k=51 must be in \[1, 50\]$", id="k-large"),
        P(_query(user_id="1", k="Infinity"), r"^k='Infinity' must be", id="k-infinity"),
        P(_query(user_id="1", k=""), r"^k='' must be", id="k-empty"),
        P(
            _query(user_id="1", region="mars"),
            r"^region='mars' is not one of \['a', 'b'\]$",
            id="region",
        ),
        P(_query(user_id="1", region=""), r"^region='' is not one of", id="region-empty"),
        P(
            _query(user_id="1", limit="5"),
            r"^query parameter 'limit' is not accepted by /recommend; allowed: k, region, user_id$",
            id="unknown",
        ),
        P(
            [("user_id", "1"), ("user_id", "2")],
            r"^query parameter user_id is given more than once",
            id="twice",
        ),
        P([("ü\u2028", "1")], r"^query parameter 'ü\\u2028' is not accepted", id="unicode-name"),
    ],
)
def test_recommend_query_refused(pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(RequestError, match=message) as caught:
        parse_recommend(pairs, **LIMITS)
    assert caught.value.status == 400


def test_without_n_users_user_ids_stop_at_int64() -> None:
    limits = {**LIMITS, "n_users": None}
    assert parse_recommend(_query(user_id=str(2**63 - 1)), **limits).user_id == 2**63 - 1
    with pytest.raises(RequestError, match=r"below 9223372036854775808"):
        parse_recommend(_query(user_id=str(2**63)), **limits)


def test_routes_without_parameters_refuse_any() -> None:
    assert check_query([], "/healthz") == {}
    with pytest.raises(RequestError, match=r"^query parameter 'x' .* /healthz; allowed: none$"):
        check_query([("x", "")], "/healthz")


# -- bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [
        P(None, None, id="no-type"),
        P("application/json", None, id="json"),
        P("Application/JSON; charset=UTF-8", "identity", id="json-utf8"),
        P('application/json; charset="utf-8"', "", id="quoted-charset"),
    ],
)
def test_json_body_headers_accepted(content_type: str | None, encoding: str | None) -> None:
    check_body_headers(content_type, encoding)


@pytest.mark.parametrize(
    ("content_type", "encoding", "message"),
    [
        P("text/plain", None, r"^Content-Type='text/plain' is not", id="text"),
        P("application/x-www-form-urlencoded", None, r"^Content-Type=", id="form"),
        P("multipart/form-data; boundary=x", None, r"^Content-Type=", id="multipart"),
        P("application/json; charset=utf-16", None, r"are utf-8$", id="utf-16"),
        P("", None, r"^Content-Type='' is not supported", id="empty"),
        P("application/json", "gzip", r"^Content-Encoding='gzip' is not", id="gzip"),
    ],
)
def test_other_bodies_get_415(content_type: str, encoding: str | None, message: str) -> None:
    with pytest.raises(RequestError, match=message) as caught:
        check_body_headers(content_type, encoding)
    assert caught.value.status == 415


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        P(b"1", 0, id="scalar"),
        P(b'{"user_ids": [1, 2], "k": 3}', 2, id="batch"),
        P(b"[[[]], [[[]]]]", 4, id="siblings"),
        P(b'["[[[[", "]]"]', 1, id="brackets-in-strings"),
        P(b'["\\"[[[[\\\\", []]', 2, id="escaped-quotes"),
        P(b"[" * 100_000, 100_000, id="100k-open"),
    ],
)
def test_json_depth(raw: bytes, depth: int) -> None:
    assert json_depth(raw) == depth


def test_json_depth_stops_counting_past_the_limit() -> None:
    assert json_depth(b"[" * 100_000, stop_above=8) == 9


@given(st.recursive(st.none() | st.integers() | st.text(), lambda c: st.lists(c), max_leaves=20))
def test_json_depth_matches_the_decoded_nesting(value: Any) -> None:
    def nesting(v: Any) -> int:
        return 1 + max(map(nesting, v), default=0) if isinstance(v, list) else 0

    assert json_depth(json.dumps(value).encode()) == nesting(value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        P(b"", r"^body is empty; expected", id="empty"),
        P(b" \n", r"^body is empty", id="blank"),
        P(b'{"k": "\xff"}', r"^body is not UTF-8 \(byte 7\)", id="latin-1"),
        P(b"{not json", r"^body is not valid JSON \(Expecting property name", id="broken"),
        P(b"[" * 9 + b"]" * 9, r"more than 8 levels deep", id="9-levels"),
        P(b"[" * 100_000, r"more than 8 levels deep", id="100k-levels"),
        P(b'{"a": ' * 50_000, r"more than 8 levels deep", id="objects"),
        P(b"1" * 5000, r"^body holds a number too long", id="5000-digit-int"),
    ],
)
def test_bad_json_bodies(raw: bytes, message: str) -> None:
    with pytest.raises(RequestError, match=message) as caught:
        parse_json(raw, "{}")
    assert caught.value.status == 400


def test_json_within_the_depth_limit_and_non_finite_literals_decode() -> None:
    nested = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert parse_json(nested, "{}") is not None
    # left for the field checks, which name the field they refuse
    values = parse_json(b"[NaN, Infinity, -Infinity, 1e400]", "[]")
    assert not any(math.isfinite(v) for v in values)


BATCH_OK = {"user_ids": [1, 2], "k": 5}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        P([1, 2], r"^body=\[1, 2\] must be a JSON object", id="list"),
        P("x" * 1000, r"^body='x+\.\.\.x+' must be", id="long-string"),
        P({}, r"^user_ids=None must be a JSON list", id="no-ids"),
        P({"user_ids": "everyone"}, r"^user_ids='everyone' must be a JSON list", id="text-ids"),
        P({"user_ids": []}, r"^user_ids has 0 entries; allowed 1\.\.64$", id="no-entries"),
        P({"user_ids": list(range(MAX_BATCH + 1))}, r"has 65 entries", id="65-entries"),
        P({"user_ids": [1, True]}, r"^user_ids\[1\]=True must be a JSON integer", id="bool-id"),
        P({"user_ids": [1.0]}, r"^user_ids\[0\]=1\.0 must be a JSON integer", id="float-id"),
        P({"user_ids": ["7"]}, r"^user_ids\[0\]='7' must be a JSON integer", id="string-id"),
        P({"user_ids": [math.inf]}, r"^user_ids\[0\]=inf must be", id="inf-id"),
        P({"user_ids": [math.nan]}, r"^user_ids\[0\]=nan must be", id="nan-id"),
        P(
            {"user_ids": [10**30]},
            r"^user_ids\[0\]=1000000000000000000000000000000 must",
            id="huge-id",
        ),
        P(
            {"user_ids": [10**4000]},
            r"^user_ids\[0\]=<integer of 13288 bits> must",
            id="4000-digits",
        ),
        P({"user_ids": [-1]}, r"^user_ids\[0\]=-1 must be .* below 1000$", id="negative-id"),
        P({"user_ids": [[1]]}, r"^user_ids\[0\]=\[1\] must be", id="nested-id"),
        P({**BATCH_OK, "k": True}, r"^k=True must be a JSON integer in \[1, 50\]$", id="bool-k"),
        P({**BATCH_OK, "k": 5.0}, r"^k=5\.0 must be a JSON integer", id="float-k"),
        P({**BATCH_OK, "k": "5"}, r"^k='5' must be a JSON integer", id="string-k"),
        P({**BATCH_OK, "k": math.inf}, r"^k=inf must be a JSON integer", id="inf-k"),
        P({**BATCH_OK, "k": -math.inf}, r"^k=-inf must be a JSON integer", id="-inf-k"),
        P({**BATCH_OK, "k": 0}, r"^k=0 must be in \[1, 50\]$", id="zero-k"),
        P({**BATCH_OK, "k": None}, r"^k=None must be", id="null-k"),
        P({**BATCH_OK, "region": 1}, r"^region=1 is not one of", id="int-region"),
        P({**BATCH_OK, "region": "../../etc"}, r"^region='\.\./\.\./etc' is not", id="path-region"),
        P(
            {**BATCH_OK, "limit": 1},
            r"^body key\(s\) \['limit'\] are not accepted; allowed: k, region, user_ids$",
            id="unknown-key",
        ),
    ],
)
def test_batch_refused(body: object, message: str) -> None:
    with pytest.raises(RequestError, match=message) as caught:
        parse_batch(body, **LIMITS)
    assert caught.value.status == 400


def test_batch_accepted() -> None:
    batch = parse_batch({"user_ids": [0, 999], "k": 50, "region": "b"}, **LIMITS)
    assert (batch.user_ids, batch.k, batch.region) == ((0, 999), 50, "b")
    assert parse_batch({"user_ids": [3]}, **LIMITS).k == 10


# -- admin -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "status", "message"),
    [
        P(None, 401, r"^Authorization: Bearer <admin token> is required", id="none"),
        P("  ", 401, r"is required", id="blank"),
        P("Basic dXNlcjpwYXNz", 401, r"^Authorization must be 'Bearer <admin token>'", id="basic"),
        P("Bearer", 401, r"^Authorization must be 'Bearer", id="no-token"),
        P(TOKEN, 401, r"^Authorization must be 'Bearer", id="bare-token"),
        P("Bearer " + "t" * 39, 403, r"^the admin token is wrong$", id="prefix"),
        P("Bearer " + TOKEN + "t", 403, r"^the admin token is wrong$", id="longer"),
        P("Bearer tttté", 403, r"wrong", id="non-ascii"),
        P("Bearer \udcff\ud800", 403, r"wrong", id="surrogates"),
    ],
)
def test_admin_token_refused(header: str | None, status: int, message: str) -> None:
    with pytest.raises(RequestError, match=message) as caught:
        check_bearer(header, TOKEN)
    assert caught.value.status == status
    assert (status == 401) == ("WWW-Authenticate" in caught.value.headers)
    assert "ttttt" not in caught.value.reason  # nothing sent is repeated


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}", f"bearer  {TOKEN} ", f"BEARER {TOKEN}"])
def test_admin_token_accepted(header: str) -> None:
    check_bearer(header, TOKEN)


def test_policy_changes_name_only_known_keys() -> None:
    assert parse_policy_changes({"failover": False}, POLICY_RULES) == {"failover": False}
    with pytest.raises(RequestError, match=r"^unknown policy key\(s\) \['retries'\]; allowed: "):
        parse_policy_changes({"retries": 2}, POLICY_RULES)
    with pytest.raises(RequestError, match=r"^body=\[\] must be a JSON object"):
        parse_policy_changes([], POLICY_RULES)


def test_every_policy_field_has_a_rule() -> None:
    assert set(POLICY_RULES) == {f.name for f in dataclasses.fields(PolicyConfig)}


def _refused_values(name: str) -> list[object]:
    rule = POLICY_RULES[name]
    common: list[object] = [None, "1", [], {}, math.nan, math.inf, -math.inf]
    if rule.kind is bool:
        return [*common, "false", "true", 0, 1]
    outside = [rule.low - 1, rule.high + 1, rule.high * 10, 10**400, -(10**400)]
    if rule.low_open:
        outside.append(rule.low)
    if rule.kind is int:
        outside.append(rule.low + 0.5)
    return [*common, True, False, *outside]


@pytest.mark.parametrize(
    ("name", "value"),
    [(n, v) for n in POLICY_RULES for v in _refused_values(n)],
    ids=[f"{n}={show(v)}" for n in POLICY_RULES for v in _refused_values(n)],
)
def test_policy_values_out_of_bounds_are_refused(name: str, value: object) -> None:
    before = PolicyConfig()
    with pytest.raises(ConfigError, match=rf"^policy\.{name}=.+ must be (a|an) .+$") as caught:
        before.replace(**{"failover": False, name: value})
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200
    assert before == PolicyConfig()  # nothing applied


@pytest.mark.parametrize("name", [n for n, r in POLICY_RULES.items() if r.kind is not bool])
def test_policy_bounds_themselves_are_accepted(name: str) -> None:
    rule = POLICY_RULES[name]
    low = rule.low if not rule.low_open else rule.low + 0.001
    for value in (low, rule.high):
        assert getattr(PolicyConfig().replace(**{name: rule.kind(value)}), name) == value


def test_show_is_short_and_one_line() -> None:
    assert show("x" * 10_000).startswith("'xxx") and len(show("x" * 10_000)) < 60
    assert show(10**5000) == "<integer of 16610 bits>"
    assert show([[[[[1]]]]]) == "[[[...]]]"
    assert show("a\nb\u2028c") == r"'a\nb\u2028c'"


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=30,
    )
)
def test_show_bounds_any_json_value(value: object) -> None:
    text = show(value)
    assert len(text) <= 120
    assert text.isprintable()


def test_request_error_is_a_client_error() -> None:
    with pytest.raises(ValueError, match=r"status=500 must be a client error"):
        RequestError("boom", status=500)


# -- the gateway's config ---------------------------------------------------------------------


def _config(**kw: Any) -> GatewayConfig:
    base: dict[str, Any] = {
        "port": 1,
        "home_region": "a",
        "upstreams": (UpstreamConfig("a.r0", "a", "127.0.0.1:2"),),
        "popularity": (3, 2, 1),
    }
    return GatewayConfig(**{**base, **kw})


def test_an_admin_token_is_generated_and_never_shown() -> None:
    first, second = _config(), _config()
    assert len(first.admin_token) >= 32 and first.admin_token != second.admin_token
    assert first.admin_token not in repr(first)


def test_the_config_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "gateway.json"
    path.write_text("{}")
    path.chmod(0o644)
    old_umask = os.umask(0)
    try:
        config = _config()
        config.write(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert GatewayConfig.read(path) == config
    assert json.loads(path.read_text())["admin_token"] == config.admin_token
    assert [p.name for p in tmp_path.iterdir()] == ["gateway.json"]  # no temporary left


def test_a_config_without_token_gets_one_written_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gateway.json"
    data = _config().to_dict()
    del data["admin_token"]
    path.write_text(json.dumps(data))
    path.chmod(0o644)
    config = GatewayConfig.read(path, store_token=True)
    assert json.loads(path.read_text())["admin_token"] == config.admin_token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    err = capsys.readouterr().err
    assert "generated one" in err and config.admin_token not in err


def test_a_readable_config_file_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gateway.json"
    config = _config()
    config.write(path)
    path.chmod(0o644)
    assert GatewayConfig.read(path, store_token=True) == config
    err = capsys.readouterr().err
    assert "chmod 600" in err and config.admin_token not in err


@pytest.mark.parametrize(
    "token",
    ["short", "x" * 31, "x" * 513, "x" * 31 + " ", "x" * 31 + "\n", "é" * 40, 12345],
    ids=["short", "31-chars", "513-chars", "space", "newline", "non-ascii", "int"],
)
def test_a_bad_admin_token_is_refused_without_showing_it(token: Any) -> None:
    with pytest.raises(ConfigError, match=r"^admin_token must be 32 to 512 characters") as caught:
        _config(admin_token=token)
    assert str(token) not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (n, v)
        for n in LIMIT_RULES
        for v in (0 if n != "port" else -1, math.nan, math.inf, 10**9, "10", True)
    ],
)
def test_http_limits_are_bounded(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"^{name}=.+ must be"):
        _config(**{name: value})


def test_n_users_is_bounded() -> None:
    with pytest.raises(ConfigError, match=r"^n_users=0 must be an integer >= 1"):
        _config(n_users=0)


def test_the_log_never_carries_the_admin_token() -> None:
    out = io.StringIO()
    handler = log_handler(TOKEN, out)
    try:
        raise ValueError(f"Invalid header value char: b'Authorization: Bearer {TOKEN}\\x01'")
    except ValueError:
        handler.emit(
            logging.LogRecord(
                "aiohttp.server", logging.ERROR, __file__, 1, "%s", (TOKEN,), sys.exc_info()
            )
        )
    assert TOKEN not in out.getvalue()
    assert out.getvalue().count("<admin token>") == 2 and "Traceback" in out.getvalue()
