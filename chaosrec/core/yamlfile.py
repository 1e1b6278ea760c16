"""Reading the YAML files chaosrec accepts (topologies, SLO profiles, target configs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaosrec.errors import ConfigError

__all__ = ["read_yaml"]


def read_yaml(path: Path, what: str) -> Any:
    """Parse ``path``; a missing file or bad syntax is a one-line :class:`ConfigError`
    naming the file (and the line, when YAML knows it)."""
    import yaml

    if not path.is_file():
        raise ConfigError(f"{what} file {str(path)!r} does not exist; check the path")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: malformed YAML{where}; fix the file's syntax") from err
