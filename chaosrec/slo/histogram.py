"""Latency percentiles kept in an HDR histogram (mergeable, 3 significant digits)."""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

from chaosrec.slo.measures import nearest_rank

__all__ = ["LatencyHistogram"]

_LOWEST_US = 1
_HIGHEST_US = 3_600_000_000  # one hour
_DIGITS = 3


class LatencyHistogram:
    """Latencies in milliseconds, stored as integer microseconds in an HDR histogram.

    Percentiles are exact to 3 significant digits (0.1 %), whatever the range;
    histograms from several runs or workers merge with :meth:`merge`.
    """

    def __init__(self, values_ms: Iterable[float] = ()) -> None:
        self._h = HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)
        for value in values_ms:
            self.record(value)

    def record(self, value_ms: float) -> None:
        micros = min(max(round(value_ms * 1000.0), _LOWEST_US), _HIGHEST_US)
        self._h.record_value(micros)

    @property
    def count(self) -> int:
        return int(self._h.get_total_count())

    def percentile_ms(self, percentile: float) -> float:
        """The value at ``percentile`` (0-100), in ms; NaN when empty.

        Nearest rank, by :func:`chaosrec.slo.measures.nearest_rank` over the recorded
        buckets: the smallest recorded value with at least ``percentile`` % of the values
        at or below it (rank ``ceil(p/100 * n)``), so a p99 never under-reports. (HDR's
        own lookup rounds the rank, which can pick the value just below.) Equal to the
        exact percentile of the recorded values to the histogram's 3 significant digits.
        """
        values: list[int] = []
        counts: list[int] = []
        for step in self._h.get_recorded_iterator():
            values.append(self._h.get_lowest_equivalent_value(step.value_iterated_to))
            counts.append(step.count_added_in_this_iter_step)
        return nearest_rank(values, counts, percentile) / 1000.0

    def max_ms(self) -> float:
        return float(self._h.get_max_value()) / 1000.0 if self.count else float("nan")

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """Add ``other``'s values into this histogram; returns self."""
        self._h.add(other._h)
        return self

    def encode(self) -> bytes:
        """Compressed HDR encoding (for reports and cross-process merges)."""
        encoded: bytes = self._h.encode()
        return encoded

    @classmethod
    def decode(cls, data: bytes) -> LatencyHistogram:
        hist = cls()
        hist._h = HdrHistogram.decode(data)
        return hist
