"""Drill orchestration: the phase recorder and the recommender under test."""

from chaosrec.drill.recorder import PHASES, Drill, Phase

__all__ = ["PHASES", "Drill", "Phase"]
