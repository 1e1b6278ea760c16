"""Topology: which regions exist and how many Triton replicas each one runs.

A topology is read from a YAML file (see ``fixtures/topologies/``) or named:
``"default"`` is 2 regions x 2 replicas, ``"quick"`` is 2 regions x 1 replica.

Replica ids are ``"<region>.r<index>"`` (``"region-a.r0"``). The same id names the
replica's Toxiproxy proxy, so a fault can target one replica (``"region-a.r0"``),
one region (``"region-a"``) or everything (``"all"``).

Example::

    >>> topo = load_topology("quick")
    >>> [r.id for r in topo.replicas]
    ['region-a.r0', 'region-b.r0']
    >>> [r.id for r in topo.resolve("region-b")]
    ['region-b.r0']
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaosrec.errors import ConfigError, UnknownTargetError

__all__ = ["BUILTIN_TOPOLOGIES", "Replica", "Topology", "load_topology", "parse_topology"]

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
MAX_REPLICAS_PER_REGION = 8

BUILTIN_TOPOLOGIES: dict[str, dict[str, Any]] = {
    "default": {
        "name": "default",
        "home_region": "region-a",
        "regions": {"region-a": {"replicas": 2}, "region-b": {"replicas": 2}},
    },
    "quick": {
        "name": "quick",
        "home_region": "region-a",
        "regions": {"region-a": {"replicas": 1}, "region-b": {"replicas": 1}},
    },
}


@dataclass(frozen=True, order=True)
class Replica:
    """One Triton replica: its region and index inside the region."""

    region: str
    index: int

    @property
    def id(self) -> str:
        """Stable id, also the name of the replica's Toxiproxy proxy: ``region-a.r0``."""
        return f"{self.region}.r{self.index}"


@dataclass(frozen=True)
class Topology:
    """Regions and replicas of a deployment, in declaration order."""

    name: str
    home_region: str
    regions: tuple[str, ...]
    replicas: tuple[Replica, ...]

    def replica(self, replica_id: str) -> Replica:
        """The replica with this id; :class:`UnknownTargetError` lists the valid ids."""
        for replica in self.replicas:
            if replica.id == replica_id:
                return replica
        raise UnknownTargetError(
            f"unknown replica {replica_id!r}; this topology has {self.replica_ids()}"
        )

    def region_replicas(self, region: str) -> tuple[Replica, ...]:
        """The replicas of one region; :class:`UnknownTargetError` lists the regions."""
        if region not in self.regions:
            raise UnknownTargetError(
                f"unknown region {region!r}; this topology has {list(self.regions)}"
            )
        return tuple(r for r in self.replicas if r.region == region)

    def resolve(self, target: str) -> tuple[Replica, ...]:
        """Replicas named by a target: ``"all"``, a region name or a replica id."""
        if target == "all":
            return self.replicas
        if target in self.regions:
            return self.region_replicas(target)
        if any(r.id == target for r in self.replicas):
            return (self.replica(target),)
        raise UnknownTargetError(
            f"unknown target {target!r}; use 'all', a region {list(self.regions)} "
            f"or a replica {self.replica_ids()}"
        )

    def replica_ids(self) -> list[str]:
        return [r.id for r in self.replicas]

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for replica in self.replicas:
            counts[replica.region] = counts.get(replica.region, 0) + 1
        return {
            "name": self.name,
            "home_region": self.home_region,
            "regions": {region: {"replicas": counts[region]} for region in self.regions},
        }


def parse_topology(data: object, source: str = "<topology>") -> Topology:
    """Validate a topology mapping (as read from YAML) and build a :class:`Topology`.

    Raises :class:`ConfigError` naming the source, the key and the allowed values.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source}: a topology must be a mapping with 'regions', got {type(data).__name__}"
        )
    unknown = set(data) - {"name", "home_region", "regions"}
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {sorted(unknown)}; allowed: name, home_region, regions"
        )
    regions_raw = data.get("regions")
    if not isinstance(regions_raw, Mapping) or not regions_raw:
        raise ConfigError(
            f"{source}: 'regions' must map region names to {{replicas: N}}, got {regions_raw!r}"
        )
    regions: list[str] = []
    replicas: list[Replica] = []
    for region, spec in regions_raw.items():
        if not isinstance(region, str) or not _NAME_RE.match(region):
            raise ConfigError(
                f"{source}: region name {region!r} is invalid; use lowercase letters, "
                "digits and '-' (at most 32 characters)"
            )
        if not isinstance(spec, Mapping) or set(spec) != {"replicas"}:
            raise ConfigError(f"{source}: region {region!r} must be {{replicas: N}}, got {spec!r}")
        count = spec["replicas"]
        if isinstance(count, bool) or not isinstance(count, int):
            raise ConfigError(
                f"{source}: regions.{region}.replicas={count!r} must be an integer "
                f"in [1, {MAX_REPLICAS_PER_REGION}]"
            )
        if not 1 <= count <= MAX_REPLICAS_PER_REGION:
            raise ConfigError(
                f"{source}: regions.{region}.replicas={count} is outside "
                f"[1, {MAX_REPLICAS_PER_REGION}]"
            )
        regions.append(region)
        replicas.extend(Replica(region, i) for i in range(count))
    home = data.get("home_region", regions[0])
    if home not in regions:
        raise UnknownTargetError(
            f"{source}: home_region={home!r} is not one of the regions {regions}"
        )
    name = data.get("name", Path(source).stem if source != "<topology>" else "custom")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{source}: name={name!r} must be a non-empty string")
    return Topology(name=name, home_region=home, regions=tuple(regions), replicas=tuple(replicas))


def load_topology(spec: str | Path | Topology = "default") -> Topology:
    """Load a topology by built-in name (``default``, ``quick``) or from a YAML file path."""
    if isinstance(spec, Topology):
        return spec
    text = str(spec)
    if isinstance(spec, str) and text in BUILTIN_TOPOLOGIES:
        return parse_topology(BUILTIN_TOPOLOGIES[text], f"builtin:{text}")
    path = Path(text)
    if not path.is_file():
        raise ConfigError(
            f"topology {text!r} is neither a built-in name {sorted(BUILTIN_TOPOLOGIES)} "
            "nor an existing YAML file; pass one of those"
        )
    from chaosrec.core.yamlfile import read_yaml

    return parse_topology(read_yaml(path, "topology"), str(path))
