"""A failure that repeats is logged once, summarised every few minutes, and its end once;
a new cause is said at once."""

from __future__ import annotations

import logging

import pytest

from hostlib.outage import Outage

log = logging.getLogger("tests.outage")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def said(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [f"{r.levelname} {r.getMessage()}" for r in caplog.records if r.levelno >= level]


def test_a_broker_down_for_ten_minutes_is_five_lines_not_three_hundred(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    o = Outage(log, "uplink", every_s=300.0, clock=clock)
    with caplog.at_level(logging.DEBUG, logger="tests.outage"):
        for _ in range(300):  # one attempt every 2 s for 10 minutes
            o.failed("cannot connect to h:8883: connection refused")
            clock.t += 2.0
        o.ended()
    assert said(caplog) == [
        "WARNING uplink: cannot connect to h:8883: connection refused",
        "WARNING uplink: still failing after 151 attempts over 300 s: cannot connect to "
        "h:8883: connection refused",
        "INFO uplink: recovered after 300 failed attempts over 600 s",
    ]
    assert len(said(caplog, logging.DEBUG)) == 300 + 1  # every attempt, at DEBUG


def test_a_new_cause_is_said_at_once_at_its_level(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    o = Outage(log, "collector: store", clock=clock)
    with caplog.at_level(logging.INFO, logger="tests.outage"):
        o.failed("commit failed (database is locked); batch a not acked", key="locked")
        o.failed("commit failed (database is locked); batch b not acked", key="locked")
        o.failed("commit failed (disk I/O error)", logging.ERROR, key="io")
    assert said(caplog) == [
        "WARNING collector: store: commit failed (database is locked); batch a not acked",
        "ERROR collector: store: commit failed (disk I/O error)",
    ]


def test_an_end_without_a_failure_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    o = Outage(log, "forwarder")
    with caplog.at_level(logging.DEBUG, logger="tests.outage"):
        o.ended()
        o.failed("platform answered 503")
        o.ended()
        o.ended()
    assert said(caplog) == [
        "WARNING forwarder: platform answered 503",
        "INFO forwarder: recovered after 1 failed attempt over 0 s",
    ]
