"""Steady-state hypotheses (Chaos Toolkit style): probes, each with a tolerance, and the
traffic probes that measure a short open-loop sample (:mod:`.probes`)."""

from chaosrec.steady_state.hypotheses import (
    HypothesisResult,
    ProbeResult,
    SteadyStateHypothesis,
    Tolerance,
    at_least,
    at_most,
    between,
)
from chaosrec.steady_state.probes import TrafficSample, tolerance_for, traffic_hypothesis

__all__ = [
    "HypothesisResult",
    "ProbeResult",
    "SteadyStateHypothesis",
    "Tolerance",
    "TrafficSample",
    "at_least",
    "at_most",
    "between",
    "tolerance_for",
    "traffic_hypothesis",
]
