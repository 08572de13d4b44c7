"""The intake's writer thread against a real outbox: a message that makes it fail is
quarantined alone while the rest of its group is committed and acked; a locked outbox is
waited for, and nothing is dropped meanwhile."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from edge_agent.intake import Intake
from edge_agent.outbox import Outbox
from hostlib.registry import Device, Registry, add_devices
from tests.conftest import wait_until
from tests.edge_agent.test_intake import DEV, K1, SITE, VALIDATOR, Acks, reasons, record, resealed
from wire import topics
from wire.canonical import canonical

TOPIC = topics.terminal_rec(DEV)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    path = tmp_path / "devices.json"
    add_devices(path, [Device(DEV, K1, "cylinder-reader", SITE)], provisioned=1)
    return Registry(path)


class Bug(Exception):
    """What a check with a bug raises."""


class BuggyValidator:
    """The real validator, except that a body holding ``"poison"`` makes it raise."""

    def validate(self, kind: str, body: Any, floats_possible: bool = True) -> None:
        if "poison" in str(body):
            raise Bug("the schema check fell over")
        VALIDATOR.validate(kind, body, floats_possible=floats_possible)


def _run(it: Intake, messages: list[tuple[str, bytes]], acked: int, ob: Outbox) -> None:
    it.start()
    try:
        stop = threading.Event()
        for topic, payload in messages:
            it.queue.put_blocking(topic, payload, stop)
        wait_until(lambda: ob.counters()["stored"] >= acked, 30, f"{acked} records stored")
    finally:
        it.stop()


def test_a_deeply_nested_message_is_quarantined_alone(tmp_path: Path, registry: Registry) -> None:
    ob = Outbox(tmp_path / "outbox.sqlite", 10**9)
    acks = Acks()
    it = Intake(ob, VALIDATOR, registry, ack=acks)
    good = [(TOPIC, canonical(record(s))) for s in range(1, 6)]
    _run(it, [good[0], (TOPIC, b"[" * 1500), *good[1:]], 5, ob)
    assert reasons(ob) == ["depth"], reasons(ob)  # refused by the parser's depth limit
    assert ob.counters()["stored"] == 5
    assert max(wm for wm, _, _ in acks.opened([K1])) == 5
    ob.close()


def test_an_exception_in_a_check_quarantines_that_message_only(
    tmp_path: Path, registry: Registry
) -> None:
    ob = Outbox(tmp_path / "outbox.sqlite", 10**9)
    acks = Acks()
    it = Intake(ob, BuggyValidator(), registry, ack=acks)  # type: ignore[arg-type]
    poison = record(3)
    poison["body"] = dict(poison["body"], operator="poison")  # type: ignore[arg-type]
    msgs = [(TOPIC, canonical(record(s))) for s in (1, 2, 4)]
    _run(it, [*msgs[:2], (TOPIC, resealed(poison)), msgs[2]], 3, ob)
    assert reasons(ob) == ["internal_error"]
    assert ob.counters()["stored"] == 3
    ob.close()


def test_a_locked_outbox_is_waited_for_and_nothing_is_dropped(
    tmp_path: Path, registry: Registry
) -> None:
    path = tmp_path / "outbox.sqlite"
    ob = Outbox(path, 10**9)
    acks = Acks()
    it = Intake(ob, VALIDATOR, registry, ack=acks)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    it.start()
    try:
        stop = threading.Event()
        for s in range(1, 4):
            it.queue.put_blocking(TOPIC, canonical(record(s)), stop)
        wait_until(lambda: bool(it.waiting_for_db), 30, "the intake to wait for the database")
        time.sleep(1.5)
        other.execute("COMMIT")
        wait_until(lambda: ob.counters()["stored"] == 3, 30, "the records after the lock")
        assert it.waiting_for_db == ""
        assert it._thread.is_alive()
    finally:
        it.stop()
        other.close()
        ob.close()
