"""Search profiles: how hard the fault-schedule search looks (no Hypothesis import here).

``quick`` fits ``pytest -m drill`` (about a minute on 2 cores: a few examples of a
3 s horizon, at most two faults, no process kills). ``thorough`` is for a nightly
or on-demand run (``--chaosrec-search=thorough``): more examples, longer schedules,
more faults, and the kinds that restart Triton processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosrec.core.validation import check_choice, check_positive, check_positive_int
from chaosrec.errors import ConfigError
from chaosrec.schedules.schedule import FAULT_KINDS

__all__ = ["SEARCH_PROFILES", "SearchProfile", "search_profile"]


@dataclass(frozen=True)
class SearchProfile:
    """The shape of the schedules searched and the search's budget.

    :param max_examples: schedules Hypothesis plays before it calls the search clean
        (shrinking a failure plays more).
    :param horizon_s: every schedule's faults start and stop within ``[0, horizon_s]``.
    :param max_faults: at most this many faults per schedule (at least one).
    :param step_s: fault times are multiples of this (coarse steps keep shrinking short
        and failures reproducible).
    :param min_duration_s: the shortest fault window.
    :param kinds: fault kinds drawn, mildest first (shrinking moves towards the first).
    :param region_outage_modes: / :param gpu_loss_modes: modes drawn for those kinds.
    :param rate_rps: open-loop load during each schedule.
    :param shrink_runs: real runs shrinking may spend after the first failure (each one
        is a few seconds of load); past it the best failure so far is reported.
    """

    name: str
    max_examples: int
    horizon_s: float
    max_faults: int
    step_s: float = 0.25
    min_duration_s: float = 0.5
    kinds: tuple[str, ...] = (
        "latency",
        "gpu_degrade",
        "gpu_oom",
        "gpu_loss",
        "blackhole",
        "down",
        "region_outage",
    )
    region_outage_modes: tuple[str, ...] = ("refuse", "blackhole")
    # "unload" is left to the thorough profile: reloading the model takes ~5 s here
    gpu_loss_modes: tuple[str, ...] = ("error",)
    rate_rps: float = 100.0
    shrink_runs: int = 24

    def __post_init__(self) -> None:
        check_positive_int("max_examples", self.max_examples)
        check_positive_int("shrink_runs", self.shrink_runs)
        check_positive_int("max_faults", self.max_faults)
        check_positive("horizon_s", self.horizon_s, maximum=600)
        check_positive("step_s", self.step_s, maximum=self.horizon_s)
        check_positive("min_duration_s", self.min_duration_s, maximum=self.horizon_s)
        check_positive("rate_rps", self.rate_rps, maximum=5000)
        if not self.kinds:
            raise ConfigError(f"kinds={self.kinds!r} must name at least one of {list(FAULT_KINDS)}")
        for kind in self.kinds:
            check_choice("kinds[]", kind, tuple(FAULT_KINDS))
        for mode in self.region_outage_modes:
            check_choice("region_outage_modes[]", mode, ("refuse", "blackhole", "kill"))
        for mode in self.gpu_loss_modes:
            check_choice("gpu_loss_modes[]", mode, ("error", "unload", "kill"))


SEARCH_PROFILES: dict[str, SearchProfile] = {
    "quick": SearchProfile("quick", max_examples=8, horizon_s=3.0, max_faults=2),
    "thorough": SearchProfile(
        "thorough",
        max_examples=60,
        horizon_s=6.0,
        max_faults=4,
        kinds=(
            "latency",
            "gpu_degrade",
            "gpu_oom",
            "gpu_loss",
            "blackhole",
            "down",
            "region_outage",
            "crash",
        ),
        region_outage_modes=("refuse", "blackhole", "kill"),
        gpu_loss_modes=("error", "unload", "kill"),
        shrink_runs=100,
    ),
}


def search_profile(name: str) -> SearchProfile:
    """The named profile; :class:`ConfigError` lists the names."""
    check_choice("search profile", name, tuple(SEARCH_PROFILES))
    return SEARCH_PROFILES[name]
