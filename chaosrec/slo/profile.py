"""SLO profiles: named sets of default objectives, read from YAML.

A profile file holds either objectives at the top level, or named profiles::

    default:
      availability: 0.999
      p99_ms: 250
    strict:
      availability: 0.9999
      p99_ms: 100

``load_slo_profile("slo.yaml:strict")`` picks one; without a name, ``default`` (or
the top-level objectives).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaosrec.core.yamlfile import read_yaml
from chaosrec.errors import ConfigError
from chaosrec.slo.objectives import Objectives

__all__ = ["load_slo_profile"]


def load_slo_profile(spec: str) -> dict[str, Any]:
    """Objectives from ``FILE`` or ``FILE:NAME``, validated; raises ConfigError."""
    path_text, _, name = spec.partition(":") if not Path(spec).is_file() else (spec, "", "")
    path = Path(path_text)
    data = read_yaml(path, "SLO profile")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: an SLO profile must be a mapping of objectives")
    if set(data) <= set(Objectives.names()) and not name:
        chosen = data
    else:
        key = name or "default"
        if key not in data or not isinstance(data[key], dict):
            raise ConfigError(f"{path}: no profile {key!r}; profiles here: {sorted(data)}")
        chosen = data[key]
    Objectives.from_mapping(chosen, f"{path}:{name or 'default'}")  # validates
    return dict(chosen)
