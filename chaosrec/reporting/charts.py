"""The timeline chart of a load run (PNG), drawn with matplotlib's Agg backend.

Three panels on the run's clock: answered throughput; p50 and p99 latency; error and
degraded rates. Every fault window is shaded on all of them, and the moments the
service detected the fault and recovered are marked.

:func:`capacity_png` draws a cluster drill's capacity timeline: Ready pods and usable
GPUs per region, pending pods, the fault shaded, Kubernetes noticing and full capacity
marked.

matplotlib is optional (the ``report`` extra) and imported only when a chart is drawn.
"""

from __future__ import annotations

import io
import math
import warnings
from typing import Any

from chaosrec.core.extras import require
from chaosrec.reporting.results import timeline
from chaosrec.slo.capacity import CapacityTimeline
from chaosrec.slo.log import RequestLog

__all__ = ["capacity_png", "timeline_png"]

_MAX_LABELLED_FAULTS = 6


def _pyplot() -> Any:
    matplotlib = require("matplotlib", extra="report", feature="drawing drill charts")
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure


def timeline_png(
    log: RequestLog,
    *,
    title: str,
    fault_windows: list[tuple[float, float | None, str]],
    detected_at_s: float | None = None,
    recovered_at_s: float | None = None,
    bucket_s: float = 0.25,
    end_s: float | None = None,
) -> bytes:
    """The chart as PNG bytes.

    :param fault_windows: ``(start_s, end_s or None, label)`` on the run's clock.
    :param detected_at_s: run-clock time the fault was detected (routed around), if known.
    :param recovered_at_s: run-clock time the service recovered for good, if known.
    """
    figure_cls = _pyplot()
    tl = timeline(log, bucket_s=bucket_s, end_s=end_s)
    x = tl.t_s + bucket_s / 2
    last = float(tl.t_s[-1] + bucket_s)
    fig = figure_cls(figsize=(10, 7), dpi=100, layout="constrained")
    ax_rps, ax_lat, ax_err = fig.subplots(3, 1, sharex=True)
    fig.suptitle(title, fontsize=11)

    ax_rps.step(x, tl.throughput_rps, where="mid", color="#1f77b4", label="answered 2xx / s")
    ax_rps.set_ylabel("throughput (rps)")
    ax_rps.set_ylim(bottom=0)

    ax_lat.plot(x, tl.p50_ms, color="#2ca02c", label="p50", marker=".", markersize=3)
    ax_lat.plot(x, tl.p99_ms, color="#d62728", label="p99", marker=".", markersize=3)
    ax_lat.set_ylabel("latency (ms)")
    ax_lat.set_ylim(bottom=0)

    ax_err.step(x, tl.error_rate * 100, where="mid", color="#d62728", label="errors")
    ax_err.step(x, tl.degraded_rate * 100, where="mid", color="#ff7f0e", label="degraded")
    ax_err.set_ylabel("share of requests (%)")
    ax_err.set_ylim(-2, 102)
    ax_err.set_xlabel(f"seconds since the run started ({bucket_s * 1000:g} ms buckets)")
    ax_err.set_xlim(0, last)

    # many faults (a schedule search) are shaded but not labelled one by one
    labelled = len(fault_windows) <= _MAX_LABELLED_FAULTS
    for i, (start, end, label) in enumerate(fault_windows):
        stop = last if end is None else end
        for ax in (ax_rps, ax_lat, ax_err):
            ax.axvspan(start, stop, color="#9467bd", alpha=0.15, label=None if i else "fault")
        if not labelled:
            continue
        ax_rps.annotate(
            label, (start, 0), xycoords=("data", "axes fraction"), fontsize=8,
            xytext=(3, 4), textcoords="offset points", color="#5b3a8a",
        )  # fmt: skip
    marks = (
        (detected_at_s, "detected", "#17becf", "--", 0.92),
        (recovered_at_s, "recovered", "#2ca02c", ":", 0.78),
    )
    for at, label, color, style, height in marks:
        if at is None or not math.isfinite(at):
            continue
        for ax in (ax_rps, ax_lat, ax_err):
            ax.axvline(at, color=color, linestyle=style, linewidth=1.5)
        ax_lat.annotate(
            f"{label} t={at:.2f} s", (at, height), xycoords=("data", "axes fraction"),
            fontsize=8, xytext=(3, 0), textcoords="offset points", color=color,
        )  # fmt: skip
    for ax in (ax_rps, ax_lat, ax_err):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=8)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # a layout that cannot fit every decoration still draws; don't fail the run on it
        warnings.simplefilter("ignore", UserWarning)
        fig.savefig(buf, format="png")
    return buf.getvalue()


def capacity_png(capacity: CapacityTimeline, *, title: str) -> bytes:
    """A cluster drill's capacity timeline as PNG bytes: Ready pods per region (and pods
    pending), usable GPUs per region (allocatable on Ready, schedulable nodes, and the
    part of them free), the fault window shaded, when Kubernetes noticed the loss and when
    every Deployment was back at full availability marked."""
    figure_cls = _pyplot()
    samples = capacity.samples
    fig = figure_cls(figsize=(10, 6), dpi=100, layout="constrained")
    ax_pods, ax_gpus = fig.subplots(2, 1, sharex=True)
    fig.suptitle(title, fontsize=11)
    t = [s.t_s for s in samples]
    for region in capacity.regions():
        rows = [next((r for r in s.regions if r.region == region), None) for s in samples]
        ax_pods.step(t, [r.pods_ready if r else 0 for r in rows], where="post", label=region)
        ax_gpus.step(
            t, [r.gpus_allocatable if r else 0 for r in rows], where="post",
            label=f"{region} usable",
        )  # fmt: skip
        ax_gpus.step(
            t, [r.gpus_free if r else 0 for r in rows], where="post", linestyle=":",
            label=f"{region} free",
        )  # fmt: skip
    ax_pods.step(t, [s.pending for s in samples], where="post", color="#d62728", label="pending")
    ax_pods.set_ylabel("Ready pods")
    ax_gpus.set_ylabel("GPUs")
    ax_gpus.set_xlabel("seconds since the recording started")
    end = t[-1] if t else 1.0
    if capacity.fault_start_s is not None:
        stop = capacity.fault_end_s if capacity.fault_end_s is not None else end
        for ax in (ax_pods, ax_gpus):
            ax.axvspan(capacity.fault_start_s, stop, color="#9467bd", alpha=0.15, label=None)
        ax_pods.annotate(
            capacity.label, (capacity.fault_start_s, 1.0), xycoords=("data", "axes fraction"),
            fontsize=8, xytext=(3, -12), textcoords="offset points", color="#5b3a8a",
        )  # fmt: skip
    for at, label, color, style in (
        (capacity.impaired_at_s(), "noticed", "#17becf", "--"),
        (capacity.recovered_at_s(), "full capacity", "#2ca02c", ":"),
    ):
        if at is None or not math.isfinite(at):
            continue
        for ax in (ax_pods, ax_gpus):
            ax.axvline(at, color=color, linestyle=style, linewidth=1.5)
        ax_gpus.annotate(
            f"{label} t={at:.1f} s", (at, 0.05), xycoords=("data", "axes fraction"),
            fontsize=8, xytext=(3, 0), textcoords="offset points", color=color,
        )  # fmt: skip
    for ax in (ax_pods, ax_gpus):
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper right", fontsize=7, ncol=2)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig.savefig(buf, format="png")
    return buf.getvalue()
