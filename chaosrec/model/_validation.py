"""Argument checks used by :mod:`chaosrec.model`.

The shared checks come from :mod:`chaosrec.core.validation`; the two that the model
needs and the shared module lacks (an integer with a lower bound, a fraction in
the *open* interval) follow its message style: ``"n_users=0 must be an integer >= 1"``.
All raise :class:`~chaosrec.errors.ConfigError` (a ``ValueError``).
"""

from __future__ import annotations

import math

from chaosrec.core.validation import check_choice, check_positive
from chaosrec.errors import ConfigError

__all__ = ["check_choice", "check_int", "check_open_fraction", "check_positive"]


def check_int(name: str, value: object, *, minimum: int) -> int:
    """An ``int`` (not a ``bool``) that is ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}")
    return value


def check_open_fraction(name: str, value: object) -> float:
    """A number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name}={value!r} must be a number in (0, 1)")
    number = float(value)
    if math.isnan(number) or not 0.0 < number < 1.0:
        raise ConfigError(f"{name}={value!r} is outside (0, 1)")
    return number
