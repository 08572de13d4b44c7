"""Times in status text: local wall-clock time and a rounded "how long ago"."""

from __future__ import annotations

import time

import pytest

from hostlib.timefmt import duration, local_time, when


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (3.4, "3 s"),
        (119, "119 s"),
        (120, "2 min"),
        (7199, "120 min"),
        (7200, "2 h"),
        (47 * 3600, "47 h"),
        (48 * 3600, "2 d"),
        (-5, "5 s"),
    ],
)
def test_duration_picks_the_unit_a_person_reads(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_when_is_local_time_and_how_long_ago() -> None:
    at = 1_763_900_000.0
    local = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(at))
    assert local_time(at) == local
    assert when(at, at + 3.2) == f"{local} (3 s ago)"
    assert when(at, at - 90) == f"{local} (90 s from now)"  # clocks apart: said, not hidden
    assert when(None, at) == "-"
