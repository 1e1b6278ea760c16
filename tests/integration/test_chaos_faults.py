"""Fault injection through the real Toxiproxy: bad input is rejected before anything is
injected, and every fault reverts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chaosrec.errors import ConfigError, UnknownTargetError, UnsupportedFaultError
from chaosrec.faults.injector import Chaos

pytestmark = pytest.mark.integration


@pytest.fixture
def upstream_proxy(toxiproxy: Any) -> Iterator[Any]:
    proxy = toxiproxy.proxy("chaos-test-upstream", upstream="127.0.0.1:9")
    yield proxy
    toxiproxy.client.delete_proxy(proxy.name)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c, p: c.latency(p, ms=-5), ConfigError, r"ms=-5 must be >= 0"),
        (
            lambda c, p: c.latency(p, ms=10, toxicity=1.5),
            ConfigError,
            r"toxicity=1.5 is outside \[0, 1\]",
        ),
        (
            lambda c, p: c.latency(p, ms=10, direction="sideways"),
            ConfigError,
            r"direction='sideways' is not one of \['downstream', 'upstream'\]",
        ),
        (lambda c, p: c.bandwidth(p, kb_per_s=0), ConfigError, r"kb_per_s=0 must be > 0"),
        (
            lambda c, p: c.latency("no-such-proxy", ms=10),
            UnknownTargetError,
            r"unknown target 'no-such-proxy'; use one of .*chaos-test-upstream",
        ),
        (
            lambda c, p: c.gpu_loss("region-a.r0"),
            UnsupportedFaultError,
            r"gpu_loss needs the embedded recommender stack",
        ),
        (
            lambda c, p: c.region_outage("region-a", mode="flood"),
            ConfigError,
            r"mode='flood' is not one of \['blackhole', 'kill', 'refuse'\]",
        ),
    ],
    ids=[
        "negative-latency",
        "toxicity>1",
        "bad-direction",
        "zero-bandwidth",
        "unknown-target",
        "gpu-without-stack",
        "bad-mode",
    ],
)
def test_bad_input_rejected_before_injection(
    toxiproxy: Any, upstream_proxy: Any, call: Any, error: type[Exception], message: str
) -> None:
    chaos = Chaos(toxiproxy.client)
    with pytest.raises(error, match=message):
        call(chaos, upstream_proxy)
    assert chaos.faults == []
    assert toxiproxy.client.is_clean()


def test_faults_revert_on_exit_and_on_rollback_all(toxiproxy: Any, upstream_proxy: Any) -> None:
    chaos = Chaos(toxiproxy.client)
    with chaos.latency(upstream_proxy, ms=100, jitter_ms=10) as fault:
        toxics = toxiproxy.client.toxics(upstream_proxy.name)
        assert [(t.type, t.attributes["latency"]) for t in toxics] == [("latency", 100)]
        assert fault.active
    assert toxiproxy.client.is_clean()
    chaos.down(upstream_proxy)
    chaos.blackhole(upstream_proxy)
    chaos.slicer(upstream_proxy, average_size=16)
    assert not toxiproxy.client.proxies()[upstream_proxy.name].enabled
    chaos.rollback_all()
    assert toxiproxy.client.is_clean()
    chaos.rollback_all()  # idempotent


@pytest.mark.parametrize(
    "method",
    ["latency", "bandwidth", "blackhole", "reset_peer", "slow_close", "slicer", "limit_data"],
)
def test_every_toxic_applies_and_reverts(toxiproxy: Any, upstream_proxy: Any, method: str) -> None:
    args: dict[str, dict[str, Any]] = {
        "latency": {"ms": 10},
        "bandwidth": {"kb_per_s": 100},
        "slow_close": {"delay_ms": 10},
        "limit_data": {"bytes": 1000},
    }
    chaos = Chaos(toxiproxy.client)
    with getattr(chaos, method)(
        upstream_proxy, toxicity=0.5, direction="upstream", **args.get(method, {})
    ):
        (toxic,) = toxiproxy.client.toxics(upstream_proxy.name)
        assert toxic.stream == "upstream" and toxic.toxicity == 0.5
    assert toxiproxy.client.is_clean()


def test_old_argument_names_still_work_with_a_deprecation_warning(
    toxiproxy: Any, upstream_proxy: Any
) -> None:
    chaos = Chaos(toxiproxy.client)
    with pytest.warns(DeprecationWarning, match="jitter= is deprecated; use jitter_ms="):
        fault = chaos.latency(upstream_proxy, ms=10, jitter=5)
    with fault:
        (toxic,) = toxiproxy.client.toxics(upstream_proxy.name)
        assert dict(toxic.attributes) == {"latency": 10, "jitter": 5}
        assert fault.label == "latency(chaos-test-upstream, ms=10, jitter_ms=5)"
    assert toxiproxy.client.is_clean()
