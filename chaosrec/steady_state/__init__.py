"""Steady-state hypotheses (Chaos Toolkit style): probes, each with a tolerance."""

from chaosrec.steady_state.hypotheses import (
    HypothesisResult,
    ProbeResult,
    SteadyStateHypothesis,
    Tolerance,
    at_least,
    at_most,
    between,
)

__all__ = [
    "HypothesisResult",
    "ProbeResult",
    "SteadyStateHypothesis",
    "Tolerance",
    "at_least",
    "at_most",
    "between",
]
