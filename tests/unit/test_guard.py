"""The target guard's decisions (no traffic: it only reads URLs)."""

from __future__ import annotations

import pytest

from chaosrec.core.guard import TargetGuard, is_loopback, parse_allow_hosts
from chaosrec.errors import ConfigError, TargetNotAllowedError


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost", "LOCALHOST"]
)
def test_loopback_needs_nothing(host: str) -> None:
    assert is_loopback(host)
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    TargetGuard().check_url(f"http://{shown}:8474", "x")


@pytest.mark.parametrize(
    "host", ["10.0.0.5", "192.168.1.1", "example.com", "localhost.example.com", "0.0.0.0", "::"]
)
def test_anything_else_is_refused_by_default(host: str) -> None:
    assert not is_loopback(host)
    shown = f"[{host}]" if ":" in host else host
    with pytest.raises(TargetNotAllowedError, match=r"not loopback.*--chaosrec-allow-hosts"):
        TargetGuard().check_url(f"http://{shown}:80/x", "the gateway")


@pytest.mark.parametrize(
    ("patterns", "url", "allowed"),
    [
        ("10.0.3.*", "http://10.0.3.7:80", True),
        ("10.0.3.*", "http://10.0.4.7:80", False),
        ("*.staging.internal", "http://gw.staging.internal:8080", True),
        ("*.staging.internal", "http://gw.prod.internal:8080", False),
        ("gw.example:8080", "http://gw.example:8080/recommend", True),
        ("gw.example:8080", "http://gw.example:9090/recommend", False),
        ("GW.Example", "http://gw.example", True),
        ("a.example, b.example", "http://b.example", True),
    ],
)
def test_allowlist_patterns(patterns: str, url: str, allowed: bool) -> None:
    guard = TargetGuard(parse_allow_hosts(patterns))
    if allowed:
        assert guard.check_url(url, "x") == url
    else:
        with pytest.raises(TargetNotAllowedError):
            guard.check_url(url, "x")


def test_refusals_never_show_credentials_and_are_config_errors() -> None:
    with pytest.raises(ConfigError) as info:
        TargetGuard().check_url("http://user:s3cret@10.1.1.1:8080/x", "the gateway")
    assert "s3cret" not in str(info.value)
    assert "\n" not in str(info.value)


def test_the_environment_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSREC_ALLOW_HOSTS", "env.example")
    assert TargetGuard.from_env(None).allow_hosts == ("env.example",)
    assert TargetGuard.from_env("opt.example").allow_hosts == ("opt.example",)
    monkeypatch.delenv("CHAOSREC_ALLOW_HOSTS")
    assert TargetGuard.from_env("").allow_hosts == ()
