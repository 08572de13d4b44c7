"""``--since`` of ``agent export``: relative spans, ISO dates, one clear error."""

from __future__ import annotations

import click
import pytest

from traceedge.cli.bundle import parse_since

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    "text, want",
    [
        ("", 0.0),
        (None, 0.0),
        ("30d", NOW - 30 * 86400),
        ("12h", NOW - 12 * 3600),
        ("90m", NOW - 90 * 60),
        ("2026-10-01", 1790812800.0),
        ("2026-10-01T08:00:00+08:00", 1790812800.0),
    ],
)
def test_since(text: str | None, want: float) -> None:
    assert parse_since(text, NOW) == want


@pytest.mark.parametrize("text", ["yesterday", "30 days", "-5d", "2026-13-01"])
def test_since_refused_with_what_to_give(text: str) -> None:
    with pytest.raises(click.BadParameter, match="30d, 12h, 90m or an ISO date"):
        parse_since(text, NOW)
