from __future__ import annotations

from pathlib import Path

import pytest

from chaosrec.errors import ConfigError
from chaosrec.stack.gateway.config import GatewayConfig, PolicyConfig, UpstreamConfig
from chaosrec.stack.gateway.fallback import FallbackCache


def _config(**kw: object) -> GatewayConfig:
    base: dict[str, object] = {
        "port": 1,
        "home_region": "a",
        "upstreams": (UpstreamConfig("a.r0", "a", "127.0.0.1:2"),),
        "popularity": (3, 2, 1),
    }
    base.update(kw)
    return GatewayConfig(**base)  # type: ignore[arg-type]


def test_round_trip(tmp_path: Path) -> None:
    config = _config(policy=PolicyConfig(failover=False))
    config.write(tmp_path / "gw.json")
    assert GatewayConfig.read(tmp_path / "gw.json") == config


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"attempt_timeout_s": 0}, r"policy.attempt_timeout_s=0 must be a number > 0"),
        ({"max_attempts": 0}, r"policy.max_attempts=0 must be an integer >= 1"),
        ({"max_inflight": 2.5}, r"policy.max_inflight=2.5 must be an integer >= 1"),
        ({"breaker_cooldown_s": -1}, r"policy.breaker_cooldown_s=-1 must be a number >= 0"),
        ({"hedge_after_s": -0.1}, r"policy.hedge_after_s=-0.1 must be a number >= 0"),
        ({"slow_after_s": "fast"}, r"policy.slow_after_s='fast' must be a number >= 0"),
        (
            {"hedge_budget_ratio": 1.5},
            r"policy.hedge_budget_ratio=1.5 must be a number >= 0 and <= 1",
        ),
        ({"hedge_budget_max": 0}, r"policy.hedge_budget_max=0 must be an integer >= 1"),
        ({"retries": 2}, r"unknown gateway policy key\(s\) \['retries'\]"),
    ],
    ids=[
        "zero-timeout",
        "zero-attempts",
        "float-inflight",
        "negative-cooldown",
        "negative-hedge",
        "text-slow-after",
        "budget-ratio-above-1",
        "zero-budget",
        "unknown-key",
    ],
)
def test_invalid_policy(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PolicyConfig().replace(**changes)


def test_home_region_must_have_upstreams() -> None:
    with pytest.raises(ConfigError, match=r"home_region='b' has no upstream"):
        _config(home_region="b")


def test_fallback_prefers_last_good_and_is_bounded() -> None:
    cache = FallbackCache([9, 8, 7], capacity=2)
    assert cache.answer(1, 2) == ([9, 8], "popularity")
    cache.remember(1, [4, 5, 6])
    assert cache.answer(1, 2) == ([4, 5], "last_good")
    cache.remember(2, [1])
    cache.remember(3, [2])
    assert len(cache) == 2
    assert cache.answer(1, 2)[1] == "popularity"  # evicted as least recently used
