"""Every argument check, in one place.

Messages repeat the argument, its value and what is allowed, e.g.
``"toxicity=1.5 is outside [0, 1]"``. All raise :class:`ConfigError` (a
``ValueError``) before anything is started or injected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection

from chaosrec.errors import ConfigError

__all__ = [
    "check_choice",
    "check_fraction",
    "check_non_negative",
    "check_positive",
    "check_positive_int",
    "check_stack_name",
]


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name}={value!r} must be a number")
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        raise ConfigError(f"{name}={value!r} must be a finite number")
    return number


def check_positive(name: str, value: object, *, maximum: float | None = None) -> float:
    """A finite number > 0 (and <= ``maximum`` when given)."""
    number = _number(name, value)
    if number <= 0:
        raise ConfigError(f"{name}={value!r} must be > 0")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name}={value!r} is above the maximum {maximum:g}")
    return number


def check_non_negative(name: str, value: object, *, maximum: float | None = None) -> float:
    """A finite number >= 0 (and <= ``maximum`` when given)."""
    number = _number(name, value)
    if number < 0:
        raise ConfigError(f"{name}={value!r} must be >= 0")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name}={value!r} is above the maximum {maximum:g}")
    return number


def check_positive_int(name: str, value: object, *, maximum: int | None = None) -> int:
    """An integer >= 1 (and <= ``maximum`` when given)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} must be an integer >= 1")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={value!r} is above the maximum of {maximum}")
    return value


def check_fraction(name: str, value: object) -> float:
    """A number in [0, 1]."""
    number = _number(name, value)
    if not 0.0 <= number <= 1.0:
        raise ConfigError(f"{name}={value!r} is outside [0, 1]")
    return number


def check_choice(name: str, value: object, allowed: Collection[str]) -> str:
    """One of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {sorted(allowed)}")
    assert isinstance(value, str)
    return value


_STACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_stack_name(name: object, source: str = "--name") -> str:
    """A ``chaosrec stack up`` name: 1 to 64 of ``A-Z a-z 0-9 . _ -``, starting with a
    letter or digit. ``source`` says where the name came from, for the message.

    Raises:
        ConfigError: anything else (``../../etc``, ``a/b``, ``""``, ``.hidden``).
    """
    if not isinstance(name, str) or _STACK_NAME.fullmatch(name) is None:
        raise ConfigError(
            f"{source}: stack name {name!r} is not allowed; use 1 to 64 characters of "
            "A-Z a-z 0-9 . _ - starting with a letter or digit (e.g. drills-1)"
        )
    return name
