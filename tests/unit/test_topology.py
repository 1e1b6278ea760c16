from __future__ import annotations

from pathlib import Path

import pytest

from chaosrec.core.topology import BUILTIN_TOPOLOGIES, load_topology, parse_topology
from chaosrec.errors import ConfigError, UnknownTargetError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "topologies"


@pytest.mark.parametrize("name", sorted(BUILTIN_TOPOLOGIES))
def test_fixture_files_match_builtins(name: str) -> None:
    assert load_topology(FIXTURES / f"{name}.yaml") == load_topology(name)


def test_default_is_two_by_two() -> None:
    topo = load_topology()
    assert topo.regions == ("region-a", "region-b")
    assert topo.replica_ids() == ["region-a.r0", "region-a.r1", "region-b.r0", "region-b.r1"]
    assert topo.home_region == "region-a"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("all", ["region-a.r0", "region-a.r1", "region-b.r0", "region-b.r1"]),
        ("region-b", ["region-b.r0", "region-b.r1"]),
        ("region-a.r1", ["region-a.r1"]),
    ],
    ids=["all", "region", "replica"],
)
def test_resolve(target: str, expected: list[str]) -> None:
    assert [r.id for r in load_topology().resolve(target)] == expected


def test_unknown_target_lists_valid_ones() -> None:
    with pytest.raises(UnknownTargetError, match=r"unknown target 'region-z'.*region-a"):
        load_topology().resolve("region-z")
    with pytest.raises(UnknownTargetError, match=r"unknown region 'eu'; this topology has"):
        load_topology().region_replicas("eu")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], r"must be a mapping"),
        ({"regions": {}}, r"'regions' must map"),
        ({"regions": {"Region A": {"replicas": 1}}}, r"region name 'Region A' is invalid"),
        ({"regions": {"a": {"replicas": 0}}}, r"regions.a.replicas=0 is outside \[1, 8\]"),
        ({"regions": {"a": {"replicas": "2"}}}, r"regions.a.replicas='2' must be an integer"),
        ({"regions": {"a": {"replicas": 1, "gpus": 2}}}, r"region 'a' must be \{replicas: N\}"),
        ({"regions": {"a": {"replicas": 1}}, "home_region": "b"}, r"home_region='b' is not one"),
        ({"regions": {"a": {"replicas": 1}}, "zones": 3}, r"unknown key\(s\) \['zones'\]"),
    ],
    ids=[
        "not-mapping",
        "no-regions",
        "bad-name",
        "zero-replicas",
        "string-count",
        "extra-region-key",
        "bad-home",
        "unknown-key",
    ],
)
def test_invalid_topologies(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_topology(data, "t.yaml")


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("regions:\n  a: {replicas: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml: malformed YAML at line \d+"):
        load_topology(bad)


def test_missing_file_says_what_is_allowed() -> None:
    with pytest.raises(ConfigError, match=r"neither a built-in name \['default', 'quick'\]"):
        load_topology("nope.yaml")
