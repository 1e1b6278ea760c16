"""The one redaction function: planted secrets never survive, everything else does,
and redacting twice changes nothing (property tests), plus the shapes we meet."""

from __future__ import annotations

import json
import string
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaosrec.core.redact import (
    MARKER,
    SECRET_WORDS,
    is_secret_name,
    redact,
    redact_text,
    redact_url,
)


def _clean(text: str) -> bool:
    """No secret word (in any case) and no URL: text that must come back unchanged."""
    folded = text.casefold()
    return "://" not in text and not any(word in folded for word in SECRET_WORDS)


secret_names = st.builds(
    lambda prefix, word, case, suffix: prefix + case(word) + suffix,
    st.sampled_from(["", "x-", "X-Api-", "chaosrec_admin_", "db_", "J"]),
    st.sampled_from(SECRET_WORDS),
    st.sampled_from([str.lower, str.upper, str.title]),
    st.sampled_from(["", "_2", "-id", "s", "ID"]),
)
# a secret that needs no quoting in a URL or in free text
planted = st.text(string.ascii_letters + string.digits + "-_.~", min_size=1, max_size=12).map(
    lambda s: f"PLANTED{s}"
)
clean_text = st.text(max_size=30).filter(_clean)
clean_names = st.text(string.ascii_lowercase + "_.-", min_size=1, max_size=12).filter(_clean)
hosts = st.sampled_from(["127.0.0.1:8080", "gw.internal", "[::1]:9000", "localhost"])
paths = st.sampled_from(["", "/", "/recommend", "/a/b.json", "/v2/models/recsys"])
clean_params = st.lists(
    st.tuples(clean_names, st.text(string.ascii_letters + string.digits + "%+-.", max_size=8)),
    max_size=3,
)


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{name}={value}" for name, value in pairs)


# ----------------------------------------------------------------------- properties


@given(
    user=planted,
    password=planted,
    host=hosts,
    path=paths,
    name=secret_names,
    value=planted,
    before=clean_params,
    after=clean_params,
)
def test_credentials_in_a_url_never_survive(
    user: str,
    password: str,
    host: str,
    path: str,
    name: str,
    value: str,
    before: list[tuple[str, str]],
    after: list[tuple[str, str]],
) -> None:
    url = f"https://{user}:{quote(password, safe='')}@{host}{path}?" + _query(
        [*before, (name, value), *after]
    )
    for shown in (redact_url(url), redact_text(f"GET {url} failed"), redact({"url": url})["url"]):
        assert user not in shown and password not in shown and value not in shown
        assert f"://{MARKER}@{host}{path}?" in shown


@given(host=hosts, path=paths, params=clean_params, fragment=clean_params)
def test_a_url_without_credentials_is_unchanged(
    host: str, path: str, params: list[tuple[str, str]], fragment: list[tuple[str, str]]
) -> None:
    url = f"http://{host}{path}" + (f"?{_query(params)}" if params else "")
    url += f"#{_query(fragment)}" if fragment else ""
    assert redact_url(url) == url
    assert redact_text(f"see {url} for details") == f"see {url} for details"


_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | clean_text
clean_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(clean_names, inner, max_size=3)
        | st.tuples(clean_text, inner)
    ),
    max_leaves=12,
)


@given(clean_values)
def test_values_without_secrets_come_back_unchanged(value: Any) -> None:
    assert redact(value) == value


@st.composite
def config_with_planted_secrets(draw: st.DrawFn) -> tuple[Any, list[str]]:
    """A configuration or journal with secrets planted under secret-looking keys, in URLs,
    in ``NAME=VALUE`` text and in name/value entries, among clean values."""
    secrets = draw(st.lists(planted, min_size=1, max_size=4, unique=True))
    config: dict[str, Any] = draw(st.dictionaries(clean_names, clean_values, max_size=3))
    for secret in secrets:
        name = draw(secret_names)
        how = draw(st.sampled_from(["key", "nested", "url", "text", "json", "pair", "entry"]))
        if how == "key":
            config[name] = secret
        elif how == "nested":
            config.setdefault("steps", []).append({"provider": {"arguments": {name: secret}}})
        elif how == "url":
            config[f"url_{len(config)}"] = f"http://drill:{secret}@{draw(hosts)}/"
        elif how == "text":
            config[f"note_{len(config)}"] = f"started with {name}={secret} and more"
        elif how == "json":
            config[f"body_{len(config)}"] = json.dumps({name: secret, "rate_rps": 5})
        elif how == "pair":
            config.setdefault("headers", []).append((name, secret))
        else:
            config.setdefault("env", []).append({"name": name.upper(), "value": secret})
    return config, secrets


@given(config_with_planted_secrets())
def test_planted_secrets_never_survive(case: tuple[Any, list[str]]) -> None:
    config, secrets = case
    shown = repr(redact(config))
    for secret in secrets:
        assert secret not in shown


anything = st.recursive(
    st.none() | st.integers() | st.text() | secret_names | planted,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8) | secret_names, inner, max_size=3)
        | st.tuples(st.text(max_size=8) | secret_names, inner)
    ),
    max_leaves=10,
)
# the characters that URL and assignment rules care about, to hunt their corner cases
tricky_text = st.text(alphabet="ab:=@/?#&;,\"'\\ \ttokenKEYhtp()[]{}*", max_size=40)


@given(anything)
def test_redact_is_idempotent(value: Any) -> None:
    once = redact(value)
    assert redact(once) == once


@given(tricky_text)
def test_redact_text_is_idempotent_on_tricky_text(text: str) -> None:
    once = redact_text(text)
    assert redact_text(once) == once


# ---------------------------------------------------------------------- examples


@pytest.mark.parametrize(
    ("given_text", "expected"),
    [
        ("http://drill:s3cr3t@127.0.0.1:8080/recommend", "http://***@127.0.0.1:8080/recommend"),
        ("https://tok@gw/x?user_id=7&api_key=abc", "https://***@gw/x?user_id=7&api_key=***"),
        ("http://gw/cb#access_token=abc&state=1", "http://gw/cb#access_token=***&state=1"),
        ("http://gw/?Session=1;X-Api-Key=2", "http://gw/?Session=***;X-Api-Key=***"),
        ("Authorization: Bearer abc.def", "Authorization: ***"),
        ("chaosrec_admin_token=abc rest", "chaosrec_admin_token=*** rest"),
        ('{"api_token": "a\\"b", "n": 1}', '{"api_token": "***", "n": 1}'),
        ("{'password': 'abc', 'x': 1}", "{'password': '***', 'x': 1}"),
        ("Cookie: JSESSIONID=abc", "Cookie: ***"),
        ("gateway at http://u:p@h:1 unreachable", "gateway at http://***@h:1 unreachable"),
        ("p99_ms measured 14.1 ms vs target <= 1 ms", "p99_ms measured 14.1 ms vs target <= 1 ms"),
        ("test_auth_outage: [SLO breached] p99", "test_auth_outage: [SLO breached] p99"),
        ("http://127.0.0.1:8474/proxies/region-a.r0", "http://127.0.0.1:8474/proxies/region-a.r0"),
    ],
    ids=[
        "url-userinfo",
        "url-query",
        "url-fragment",
        "url-semicolons",
        "bearer-header",
        "assignment",
        "json-text",
        "python-repr",
        "cookie-header",
        "url-in-message",
        "slo-message-kept",
        "scenario-name-kept",
        "control-url-kept",
    ],
)
def test_redact_text(given_text: str, expected: str) -> None:
    assert redact_text(given_text) == expected


def test_a_chaos_toolkit_journal_keeps_its_shape() -> None:
    journal = {
        "status": "completed",
        "experiment": {
            "title": "gpu lost",
            "configuration": {
                "api_token": "s3cr3t",
                "chaosrec_gateway_url": "http://drill:s3cr3t@127.0.0.1:8080",
                "db": {"type": "env", "key": "DB_URL"},
            },
            "secrets": {"k8s": {"token": "s3cr3t"}},
        },
        "run": [{"activity": {"provider": {"arguments": {"rate_rps": 5}}}, "output": 0.99}],
    }
    shown = redact(journal)
    assert "s3cr3t" not in json.dumps(shown)
    assert shown["experiment"]["configuration"] == {
        "api_token": MARKER,
        "chaosrec_gateway_url": "http://***@127.0.0.1:8080",
        "db": {"type": "env", "key": MARKER},
    }
    assert shown["experiment"]["secrets"] == MARKER
    assert shown["run"] == journal["run"] and shown["status"] == "completed"


def test_bytes_pairs_and_none() -> None:
    assert redact(b"x http://u:p@h/ y") == b"x http://***@h/ y"
    assert redact(b"\xff\xfe binary") == b"\xff\xfe binary"  # not UTF-8: kept as it was
    assert redact([("api_key", "abc"), ("chaosrec_report", {"url": "http://a:b@h"})]) == [
        ("api_key", MARKER),
        ("chaosrec_report", {"url": "http://***@h"}),
    ]
    assert redact({"password": None, "rate": 5.0}) == {"password": None, "rate": 5.0}


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("X-Api-Key", True),
        ("chaosrec_admin_token", True),
        ("PASSWD", True),
        ("JSESSIONID", True),
        ("private_key_file", True),
        ("gateway_url", False),
        ("rate_rps", False),
        ("model.sha256", False),
    ],
)
def test_is_secret_name(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_the_logging_filter_redacts_messages_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from chaosrec.core.redact import RedactingFilter

    logger = logging.getLogger("chaosrec.test-redact")
    log_filter = RedactingFilter()
    logger.addFilter(log_filter)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("HTTP Request: GET %s %r", "http://drill:s3cr3t@127.0.0.1:1/x", 200)
            try:
                raise RuntimeError("cannot reach http://drill:s3cr3t@127.0.0.1:1")
            except RuntimeError:
                logger.exception("failed")
    finally:
        logger.removeFilter(log_filter)
    assert caplog.messages[0] == "HTTP Request: GET http://***@127.0.0.1:1/x 200"
    assert "s3cr3t" not in caplog.text and "http://***@127.0.0.1:1" in caplog.text
