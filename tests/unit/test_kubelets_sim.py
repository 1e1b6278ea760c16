"""The simulated kubelets' duration parsing (the start-up delay annotation)."""

from __future__ import annotations

import pytest

from chaosrec.adapters.kubernetes.kubelets import parse_duration_s


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3s", 3.0), ("1500ms", 1.5), ("1m30s", 90.0), ("2", 2.0), ("", 0.0), ("soon", 0.0),
     ("-1", 0.0)],
)  # fmt: skip
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == pytest.approx(seconds)
