"""Durations as the log and headers show them."""

from __future__ import annotations

import pytest

from gateway.clock import millis


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.0, 0.0), (0.0123456, 12.35), (0.001234, 1.23), (0.000004, 0.0), (2.5, 2500.0)],
)
def test_milliseconds_to_two_decimals(seconds: float, shown: float) -> None:
    assert millis(seconds) == shown
    assert repr(millis(seconds)) == repr(shown)  # the log's text, not just a close number
