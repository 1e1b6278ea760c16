"""Pure measurement and SLO math over a :class:`RequestLog` (no I/O).

:mod:`.measures` is the one place a latency percentile, availability, error rate or
degraded share is computed; verdicts, guardrails, probes and reports all call it.
"""

from chaosrec.slo.log import STATUS_CLIENT_DROPPED, STATUS_TRANSPORT_ERROR, RequestLog
from chaosrec.slo.measures import Measures, measure, nearest_rank, percentile
from chaosrec.slo.objectives import FaultWindow, ObjectiveResult, Objectives, Verdict, evaluate

__all__ = [
    "STATUS_CLIENT_DROPPED",
    "STATUS_TRANSPORT_ERROR",
    "FaultWindow",
    "Measures",
    "ObjectiveResult",
    "Objectives",
    "RequestLog",
    "Verdict",
    "evaluate",
    "measure",
    "nearest_rank",
    "percentile",
]
