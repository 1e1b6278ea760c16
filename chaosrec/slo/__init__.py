"""Pure measurement and SLO math over a :class:`RequestLog` (no I/O)."""

from chaosrec.slo.log import STATUS_CLIENT_DROPPED, STATUS_TRANSPORT_ERROR, RequestLog
from chaosrec.slo.objectives import FaultWindow, ObjectiveResult, Objectives, Verdict, evaluate

__all__ = [
    "STATUS_CLIENT_DROPPED",
    "STATUS_TRANSPORT_ERROR",
    "FaultWindow",
    "ObjectiveResult",
    "Objectives",
    "RequestLog",
    "Verdict",
    "evaluate",
]
