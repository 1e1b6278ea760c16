"""Drill reports: Allure results, timeline charts, SLO tables and the drill summary.

A front: it renders what the drill recorder (:mod:`chaosrec.drill`) and the SLO
verdicts (:mod:`chaosrec.slo`) hold. Allure and matplotlib (the ``report`` extra) are
imported only by the functions that need them; the names below load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chaosrec.core.lazy import lazy_attributes

if TYPE_CHECKING:
    from chaosrec.reporting.browser import RenderCheck, check_report
    from chaosrec.reporting.build import BuiltReport, build_report

__all__ = ["BuiltReport", "RenderCheck", "build_report", "check_report"]

_LAZY = {
    "BuiltReport": "chaosrec.reporting.build",
    "build_report": "chaosrec.reporting.build",
    "RenderCheck": "chaosrec.reporting.browser",
    "check_report": "chaosrec.reporting.browser",
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
