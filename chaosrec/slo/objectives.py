"""Service-level objectives over a load run, and the verdict that says how each one fared.

An objective is measured over a stated window (the whole run unless said
otherwise) and ends in one of three states:

* ``pass`` / ``fail``: measured against the target;
* ``inconclusive``: the measurement cannot be trusted, e.g. a p99 over fewer than
  ``min_samples`` answers, or a drill whose fault never met any traffic.

The verdict is ``fail`` if any objective failed, else ``inconclusive`` if any
objective or the drill as a whole was inconclusive, else ``pass``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from chaosrec.core.validation import (
    check_choice,
    check_fraction,
    check_non_negative,
    check_positive,
    check_positive_int,
)
from chaosrec.errors import ConfigError
from chaosrec.slo.log import RequestLog
from chaosrec.slo.measures import PERCENTILES, Measures, lost_mask, measure
from chaosrec.slo.windows import detection_time, recovery_time

__all__ = [
    "FaultWindow",
    "ObjectiveResult",
    "Objectives",
    "Verdict",
    "evaluate",
]

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"


@dataclass(frozen=True)
class FaultWindow:
    """When a fault was active, on the run's clock (seconds), and what it hit."""

    label: str
    kind: str
    targets: tuple[str, ...]
    start_s: float
    end_s: float | None = None
    #: evidence that traffic went through the faulted targets while the fault was on
    #: (True / False), or None when the fault cannot tell
    touched: bool | None = None


@dataclass(frozen=True)
class Objectives:
    """Targets for a run. ``None`` means "not checked". Units are in the names.

    * ``availability``: minimum share of requests answered 2xx (degraded answers count);
    * ``error_rate``: maximum share of requests not answered 2xx;
    * ``p50_ms``/``p95_ms``/``p99_ms``: maximum latency percentiles of 2xx answers,
      measured from each request's scheduled send time;
    * ``degraded_share``: maximum share of 2xx answers that were degraded;
    * ``rto_s``: maximum time to recover (see :func:`chaosrec.slo.windows.recovery_time`);
    * ``mttd_s``: maximum time to detect (see :func:`chaosrec.slo.windows.detection_time`);
    * ``lost``: maximum number of requests that got no answer at all (transport error,
      timeout, dropped) or a 5xx;
    * ``recall_at_10``: minimum recall@10 on the golden request set (measured by a probe).
    """

    availability: float | None = None
    error_rate: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    degraded_share: float | None = None
    rto_s: float | None = None
    mttd_s: float | None = None
    lost: int | None = None
    recall_at_10: float | None = None

    def __post_init__(self) -> None:
        for name in ("availability", "error_rate", "degraded_share", "recall_at_10"):
            value = getattr(self, name)
            if value is not None:
                check_fraction(name, value)
        for name in ("p50_ms", "p95_ms", "p99_ms"):
            value = getattr(self, name)
            if value is not None:
                check_positive(name, value)
        for name in ("rto_s", "mttd_s"):
            value = getattr(self, name)
            if value is not None:
                check_non_negative(name, value)
        if self.lost is not None and (
            isinstance(self.lost, bool) or not isinstance(self.lost, int) or self.lost < 0
        ):
            raise ConfigError(f"lost={self.lost!r} must be an integer >= 0")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "SLO profile") -> Objectives:
        unknown = set(data) - set(cls.names())
        if unknown:
            raise ConfigError(
                f"{source}: unknown objective(s) {sorted(unknown)}; allowed: {cls.names()}"
            )
        return cls(**data)

    def merged(self, **overrides: Any) -> Objectives:
        """These objectives with ``overrides`` applied (``None`` values are ignored)."""
        unknown = set(overrides) - set(self.names())
        if unknown:
            raise ConfigError(f"unknown objective(s) {sorted(unknown)}; allowed: {self.names()}")
        values = {**asdict(self), **{k: v for k, v in overrides.items() if v is not None}}
        return Objectives(**values)

    def is_empty(self) -> bool:
        return all(getattr(self, n) is None for n in self.names())


@dataclass(frozen=True)
class ObjectiveResult:
    """One objective's outcome, with everything needed to read it without the log."""

    name: str
    target: str
    measured: str
    window: str
    status: str
    note: str = ""
    #: the measured number behind ``measured`` (a share, ms, s or a count), None when
    #: nothing could be measured; the same number every other front reports
    value: float | None = None

    @property
    def passed(self) -> bool:
        return self.status == PASS


@dataclass(frozen=True)
class Verdict:
    """The outcome of every objective, plus drill-level reasons for inconclusiveness."""

    results: tuple[ObjectiveResult, ...]
    inconclusive_reasons: tuple[str, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if any(r.status == FAIL for r in self.results):
            return FAIL
        if self.inconclusive_reasons or any(r.status == INCONCLUSIVE for r in self.results):
            return INCONCLUSIVE
        return PASS

    @property
    def failed(self) -> list[ObjectiveResult]:
        return [r for r in self.results if r.status == FAIL]

    def table(self) -> str:
        """A plain-text table: objective, target, measured, window, status."""
        rows = [("objective", "target", "measured", "window", "status")]
        rows += [(r.name, r.target, r.measured, r.window, r.status.upper()) for r in self.results]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        for r in self.results:
            if r.note:
                lines.append(f"  {r.name}: {r.note}")
        for reason in self.inconclusive_reasons:
            lines.append(f"inconclusive: {reason}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "results": [asdict(r) for r in self.results],
            "inconclusive_reasons": list(self.inconclusive_reasons),
            "facts": self.facts,
        }


def _fmt_ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f} ms"


def _fmt_s(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "never" if math.isinf(value) else f"{value:.2f} s"


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


@dataclass(frozen=True)
class _Share:
    """How a share objective is judged and shown: ``at_least`` the target (else at most),
    with ``parts`` the counts behind it, e.g. ``0.9990 (999/1000)``."""

    at_least: bool
    parts: Callable[[Measures], tuple[int, int]]


#: share objectives, by name (their values come from :class:`Measures`)
_SHARES: dict[str, _Share] = {
    "availability": _Share(True, lambda m: (m.answered, m.requests)),
    "error_rate": _Share(False, lambda m: (m.errors, m.requests)),
    "degraded_share": _Share(False, lambda m: (m.degraded, m.answered)),
}
#: the objectives measured over the whole log, in the verdict's order
_MEASURED = ("availability", "error_rate", *PERCENTILES, "degraded_share")


def _share_result(name: str, target: float, measured: Measures, span: str) -> ObjectiveResult:
    share = _SHARES[name]
    value = measured.value(name)
    assert value is not None  # evaluate() refuses an empty log
    part, whole = share.parts(measured)
    met = value >= target if share.at_least else value <= target
    return ObjectiveResult(
        name,
        f"{'>=' if share.at_least else '<='} {target:g}",
        f"{value:.4f} ({part}/{whole})",
        span,
        PASS if met else FAIL,
        value=value,
    )


def _percentile_result(
    name: str, target: float, measured: Measures, span: str, min_samples: int
) -> ObjectiveResult:
    pct = PERCENTILES[name]
    value = measured.value(name)
    shown = _fmt_ms(_or_nan(value))
    needed = min_samples if pct < 99 else max(min_samples, 100)
    if value is None or measured.answered < needed:
        return ObjectiveResult(
            name,
            f"<= {target:g} ms",
            shown,
            span,
            INCONCLUSIVE,
            f"only {measured.answered} answered requests; a p{pct:g} needs at least {needed}",
            value=value,
        )
    return ObjectiveResult(
        name,
        f"<= {target:g} ms",
        shown + f" (n={measured.answered})",
        span,
        PASS if value <= target else FAIL,
        value=value,
    )


def evaluate(
    log: RequestLog,
    objectives: Objectives,
    faults: Sequence[FaultWindow] = (),
    *,
    min_samples: int = 100,
    window_s: float = 0.5,
    rto_from: str = "start",
    recall_at_10: float | None = None,
    run_end_s: float | None = None,
) -> Verdict:
    """Measure ``log`` against ``objectives``.

    :param faults: fault windows on the run's clock (for RTO, MTTD and the
        "did the fault touch traffic" check).
    :param min_samples: fewest 2xx answers a latency percentile may rest on.
    :param window_s: window width for RTO, seconds.
    :param rto_from: measure RTO from the fault's ``"start"`` or its ``"end"``.
    :param recall_at_10: the measured golden-set recall, for ``objectives.recall_at_10``.
    :raises ConfigError: when nothing can be evaluated (an empty log).
    """
    check_choice("rto_from", rto_from, ("start", "end"))
    check_positive_int("min_samples", min_samples)
    check_positive("window_s", window_s)
    total = len(log)
    if total == 0:
        raise ConfigError(
            "cannot evaluate SLOs: the run recorded no requests; check the load URL and "
            "that the run lasted long enough"
        )
    end = run_end_s if run_end_s is not None else float(log.scheduled_s.max())
    span = f"whole run 0-{end:.1f} s"
    measured = measure(log)
    results: list[ObjectiveResult] = []
    reasons: list[str] = []
    facts: dict[str, Any] = {"requests": measured.requests, "answered_2xx": measured.answered}

    for name in _MEASURED:
        target = getattr(objectives, name)
        if target is None:
            continue
        if name in _SHARES:
            results.append(_share_result(name, target, measured, span))
        else:
            results.append(_percentile_result(name, target, measured, span, min_samples))
    facts["p50_ms"] = _or_nan(measured.p50_ms)
    facts["p99_ms"] = _or_nan(measured.p99_ms)
    if objectives.lost is not None:
        lost = int(lost_mask(log).sum())
        results.append(
            ObjectiveResult(
                "lost",
                f"<= {objectives.lost}",
                f"{lost} of {total}",
                span,
                PASS if lost <= objectives.lost else FAIL,
                value=float(lost),
            )
        )

    # -- fault-relative objectives ------------------------------------------------
    active = [f for f in faults if f.start_s <= end]
    if faults:
        touched = [f for f in active if f.touched is not False and _requests_in(log, f) > 0]
        if not touched:
            reasons.append(
                "no request went through a faulted target while its fault was active "
                f"({', '.join(f.label for f in faults)}); the drill proved nothing"
            )
    needs_fault = objectives.rto_s is not None or objectives.mttd_s is not None
    if needs_fault and not active:
        reasons.append("rto_s/mttd_s were asked for but no fault was injected during the run")
    if objectives.rto_s is not None and active:
        ref = (
            min(f.start_s for f in active)
            if rto_from == "start"
            else max((f.end_s if f.end_s is not None else end) for f in active)
        )
        target_share = objectives.availability if objectives.availability is not None else 0.99
        rto = recovery_time(
            log, ref, target=target_share, width_s=window_s, latency_ms=objectives.p99_ms
        )
        facts["rto_s"] = rto
        results.append(
            ObjectiveResult(
                "rto_s",
                f"<= {objectives.rto_s:g} s",
                _fmt_s(rto),
                f"from fault {rto_from} t={ref:.2f} s, {window_s:g} s windows, good share "
                f">= {target_share:g}",
                PASS if rto <= objectives.rto_s else FAIL,
                "" if math.isfinite(rto) else "the service had not recovered when the run ended",
                value=rto,
            )
        )
    if objectives.mttd_s is not None and active:
        first = min(active, key=lambda f: f.start_s)
        targets = {t for f in active for t in f.targets}
        mttd = detection_time(
            log,
            first.start_s,
            targets,
            latency_ms=objectives.p99_ms,
            fault_end_s=max((f.end_s if f.end_s is not None else end) for f in active),
        )
        facts["mttd_s"] = mttd
        if mttd is None:
            results.append(
                ObjectiveResult(
                    "mttd_s",
                    f"<= {objectives.mttd_s:g} s",
                    "n/a",
                    f"fault {first.label}",
                    INCONCLUSIVE,
                    "no request was impaired by the fault, so there was nothing to detect",
                )
            )
        else:
            results.append(
                ObjectiveResult(
                    "mttd_s",
                    f"<= {objectives.mttd_s:g} s",
                    _fmt_s(mttd),
                    f"from fault start t={first.start_s:.2f} s",
                    PASS if mttd <= objectives.mttd_s else FAIL,
                    value=mttd,
                )
            )

    if objectives.recall_at_10 is not None:
        if recall_at_10 is None:
            results.append(
                ObjectiveResult(
                    "recall_at_10",
                    f">= {objectives.recall_at_10:g}",
                    "n/a",
                    "golden set",
                    INCONCLUSIVE,
                    "no quality measurement was taken",
                )
            )
        else:
            results.append(
                ObjectiveResult(
                    "recall_at_10",
                    f">= {objectives.recall_at_10:g}",
                    f"{recall_at_10:.4f}",
                    "golden request set, after the run",
                    PASS if recall_at_10 >= objectives.recall_at_10 else FAIL,
                    value=recall_at_10,
                )
            )
    return Verdict(tuple(results), tuple(reasons), facts)


def _requests_in(log: RequestLog, fault: FaultWindow) -> int:
    end = fault.end_s if fault.end_s is not None else math.inf
    return int(((log.scheduled_s >= fault.start_s) & (log.scheduled_s < end)).sum())
