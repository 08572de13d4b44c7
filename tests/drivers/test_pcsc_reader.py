"""IC cards through the real pcscd: vpcd reader driver, the card simulator on its socket, the
pyscard transport reading UIDs and watching cards come and go, pcscd stopped and restarted.

Fails (never skips) with the install command when pcscd or vsmartcard-vpcd is missing.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from smartcard.pcsc.PCSCExceptions import BaseSCardException

import simulators.pcscd as pcscd_mod
from drivers.codecs.errors import DeviceError
from drivers.codecs.pcsc import GET_UID
from drivers.transports.errors import DeviceFault, DriverError, PortUnavailable
from drivers.transports.pcsc_errors import (
    CardError,
    NoCard,
    PcscError,
    ReaderUnavailable,
    ServiceUnavailable,
)
from drivers.transports.pcsc_reader import (
    CardEvent,
    CardEvents,
    CardMonitor,
    aread_uid,
    find_reader,
    list_readers,
    read_uid,
    transmit,
)
from simulators.card_sim import CardSimulator, parse_uid
from simulators.pcscd import INSTALL_HINT, Pcscd, PcscdUnavailable, require_pcscd

UID = "04A1B2C3"
UID7 = "04112233445566"


def start_pcscd(workdir: Path) -> Pcscd:
    try:
        require_pcscd()
        return Pcscd(workdir).start()
    except PcscdUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def pcscd(tmp_path: Path) -> Iterator[Pcscd]:
    p = start_pcscd(tmp_path / "pcscd")
    yield p
    p.stop()


@pytest.fixture
def card(pcscd: Pcscd) -> Iterator[CardSimulator]:
    sim = CardSimulator(pcscd.vpcd_port)
    yield sim
    sim.close()


@pytest.fixture
def monitor(pcscd: Pcscd) -> Iterator[CardMonitor]:
    with CardMonitor(pcscd.reader, poll_interval=0.2, backoff_cap=0.5, settle=1.0) as mon:
        first = mon.get(5)
        assert first is not None and first.kind == "online", first
        yield mon


def next_event(mon: CardMonitor, timeout: float = 5.0) -> CardEvent:
    ev = mon.get(timeout)
    assert ev is not None, f"no card event within {timeout} s"
    return ev


def wait_uid(reader: str, timeout: float = 5.0) -> str:
    """read_uid once the card is on the reader (vpcd polls about every 0.4 s)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return read_uid(reader)
        except NoCard:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_the_virtual_reader_is_listed(pcscd: Pcscd) -> None:
    readers = list_readers()
    assert pcscd.reader in readers
    assert find_reader("Virtual PCD") == pcscd.reader  # a prefix finds the first slot


@pytest.mark.parametrize("uid", [UID, UID7, "0102030405060708090A"])
def test_read_uid_through_pcscd(pcscd: Pcscd, card: CardSimulator, uid: str) -> None:
    card.insert(uid)
    assert card.wait_connected(5)
    assert wait_uid(pcscd.reader) == uid
    # The APDU really went through pcscd and vpcd to the card.
    assert GET_UID in card.apdus
    assert card.powered


def test_unknown_apdu_is_a_clear_error(pcscd: Pcscd, card: CardSimulator) -> None:
    card.insert(UID)
    wait_uid(pcscd.reader)
    with pytest.raises(CardError) as info:
        transmit(pcscd.reader, bytes.fromhex("00A4040000"))  # SELECT: this card has no files
    err = info.value
    assert err.sw == 0x6D00
    assert err.retry is False
    assert "6D 00" in str(err) and "not supported" in str(err)
    assert "retrying will not help" in str(err)
    assert isinstance(err.__cause__, DeviceError)
    assert isinstance(err, DeviceFault) and err.code == 0x6D00
    assert bytes.fromhex("00A4040000") in card.apdus


def test_transmit_returns_the_data_of_a_good_answer(pcscd: Pcscd, card: CardSimulator) -> None:
    card.insert(UID7)
    wait_uid(pcscd.reader)
    assert transmit(pcscd.reader, GET_UID) == bytes.fromhex(UID7)


def test_a_failing_card_status_is_translated_with_its_retry_hint(
    pcscd: Pcscd, card: CardSimulator
) -> None:
    card.insert(UID)
    wait_uid(pcscd.reader)
    card.fail_uid(0x6300)  # the reader could not read the card: try again
    with pytest.raises(CardError) as info:
        read_uid(pcscd.reader)
    assert info.value.sw == 0x6300 and info.value.retry is True
    card.fail_uid(0x6A81)  # this card cannot return a UID at all
    with pytest.raises(CardError) as info:
        read_uid(pcscd.reader)
    assert info.value.sw == 0x6A81 and info.value.retry is False
    card.fail_uid(None)
    assert read_uid(pcscd.reader) == UID


def test_no_card_and_unknown_reader_are_distinct_errors(pcscd: Pcscd) -> None:
    with pytest.raises(NoCard) as info:
        read_uid(pcscd.reader)
    assert info.value.retry is True
    assert isinstance(info.value.__cause__, BaseSCardException)  # pyscard's, kept
    with pytest.raises(ReaderUnavailable) as unknown:
        read_uid("Acme Reader 9000")
    assert "Virtual PCD 00 00" in str(unknown.value)  # says which readers exist


def test_insert_and_remove_produce_uid_events(monitor: CardMonitor, card: CardSimulator) -> None:
    card.insert(UID)
    assert next_event(monitor) == CardEvent("inserted", monitor.reader or "", UID)
    assert monitor.present_uid == UID
    card.remove()
    ev = next_event(monitor)
    assert (ev.kind, ev.uid) == ("removed", UID)
    card.insert(UID7)
    ev = next_event(monitor)
    assert (ev.kind, ev.uid) == ("inserted", UID7)
    # Another card put straight on the reader: the old one leaves, the new one arrives.
    card.insert(UID)
    assert [(e.kind, e.uid) for e in (next_event(monitor), next_event(monitor))] == [
        ("removed", UID7),
        ("inserted", UID),
    ]
    assert monitor.get(0.8) is None  # and nothing else


def test_an_unreadable_card_is_reported_as_an_error_event(
    monitor: CardMonitor, card: CardSimulator
) -> None:
    card.fail_uid(0x6F00)  # set before the card arrives
    card.insert(UID)
    ev = next_event(monitor)
    assert ev.kind == "error" and isinstance(ev.error, CardError)
    assert ev.error.sw == 0x6F00
    assert ev.as_dict()["retry"] is True
    card.remove()
    assert next_event(monitor).kind == "removed"


def test_async_card_events(pcscd: Pcscd, card: CardSimulator) -> None:
    async def run() -> list[tuple[str, str | None]]:
        seen: list[tuple[str, str | None]] = []
        async with CardEvents(pcscd.reader, poll_interval=0.2) as events:
            seen.append(((await events.next(5)).kind, None))
            card.insert(UID)
            async for ev in events:
                seen.append((ev.kind, ev.uid))
                if ev.kind == "inserted":
                    assert await aread_uid(pcscd.reader) == UID
                    card.remove()
                if ev.kind == "removed":
                    break
        return seen

    assert asyncio.run(asyncio.wait_for(run(), 15)) == [
        ("online", None),
        ("inserted", UID),
        ("removed", UID),
    ]


def test_pcscd_down_is_service_unavailable(pcscd: Pcscd) -> None:
    pcscd.stop()
    with pytest.raises(ServiceUnavailable) as info:
        read_uid(None)
    assert info.value.retry is True
    # One root for every transport, and the generic kind of failure.
    assert isinstance(info.value, PcscError) and isinstance(info.value, PortUnavailable)
    assert isinstance(info.value, DriverError)


def test_pcscd_restart_then_recovery(
    pcscd: Pcscd, monitor: CardMonitor, card: CardSimulator
) -> None:
    card.insert(UID)
    assert next_event(monitor).uid == UID
    pcscd.stop()
    ev = next_event(monitor)
    assert ev.kind == "offline" and isinstance(ev.error, ServiceUnavailable)
    assert not monitor.online
    with pytest.raises(ServiceUnavailable):
        read_uid(pcscd.reader)
    pcscd.start()
    assert next_event(monitor).kind == "online"
    # The card stayed on the reader: it reconnects, and is not announced a second time.
    assert wait_uid(pcscd.reader) == UID
    assert card.sessions >= 2
    assert monitor.get(1.5) is None  # longer than the settle time
    card.remove()
    assert (next_event(monitor).kind, monitor.present_uid) == ("removed", None)
    card.insert(UID7)
    assert next_event(monitor).uid == UID7


def test_pcscd_killed_while_card_removed_reports_the_removal_after_recovery(
    pcscd: Pcscd, monitor: CardMonitor, card: CardSimulator
) -> None:
    card.insert(UID)
    assert next_event(monitor).uid == UID
    pcscd.kill()
    assert next_event(monitor).kind == "offline"
    card.remove()
    pcscd.start()
    assert next_event(monitor).kind == "online"
    ev = next_event(monitor, 6)
    assert (ev.kind, ev.uid) == ("removed", UID)


def test_card_unplugged_from_vpcd_is_seen_leaving_and_coming_back(
    pcscd: Pcscd, monitor: CardMonitor, card: CardSimulator
) -> None:
    card.insert(UID)
    assert next_event(monitor).kind == "inserted"
    card.unplug()  # the simulator's socket drops; the card reconnects by itself
    assert [(e.kind, e.uid) for e in (next_event(monitor), next_event(monitor))] == [
        ("removed", UID),
        ("inserted", UID),
    ]
    assert card.sessions == 2


def test_a_running_system_pcscd_is_detected_and_left_alone(tmp_path: Path) -> None:
    """Our pcscd runs beside one on /run/pcscd/pcscd.comm and gives back its pid file."""
    pcscd_bin, _ = require_pcscd()
    system = None
    if pcscd_mod.system_pcscd_pid() is None:
        empty = tmp_path / "system-conf"
        empty.mkdir()
        system = subprocess.Popen(
            [pcscd_bin, "--foreground", "--config", str(empty)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 10
        while pcscd_mod.system_pcscd_pid() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        system_pid = pcscd_mod.system_pcscd_pid()
        assert system_pid is not None, "a pcscd on /run/pcscd/pcscd.comm was not detected"
        ours = Pcscd(tmp_path / "ours")
        assert ours.system_pid == system_pid
        ours.start()
        try:
            assert ours.proc is not None and ours.proc.pid != system_pid
            assert ours.reader in list_readers()  # ours answers on its own socket
        finally:
            ours.stop()
        assert pcscd_mod.system_pcscd_pid() == system_pid  # its pid file is back
        assert Path(f"/proc/{system_pid}").exists()
    finally:
        if system is not None:
            system.terminate()
            system.wait(timeout=10)


def test_missing_pcscd_fails_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pcscd_mod, "find_pcscd", lambda: None)
    with pytest.raises(PcscdUnavailable) as info:
        Pcscd(tmp_path).start()
    assert INSTALL_HINT in str(info.value)
    monkeypatch.setattr(pcscd_mod, "find_vpcd_driver", lambda: None)
    with pytest.raises(PcscdUnavailable, match="vpcd"):
        require_pcscd()


# -- the card simulator's answers, without pcscd -------------------------------------------


def test_card_simulator_answers() -> None:
    sim = CardSimulator(port=1)  # never connects: no card inserted
    try:
        assert sim.answer(b"\x04") == sim.atr
        assert sim.answer(b"\x01") is None and sim.powered
        assert sim.answer(b"\x00") is None and not sim.powered
        assert sim.answer(GET_UID) == b"\x6d\x00"  # no card: nothing to answer with
        sim.insert(UID7)  # nothing listens on port 1: answer() is called directly
        assert sim.answer(GET_UID) == bytes.fromhex(UID7) + b"\x90\x00"
        assert sim.answer(bytes.fromhex("FFCA000007")) == bytes.fromhex(UID7) + b"\x90\x00"
        assert sim.answer(bytes.fromhex("FFCA00000A")) == bytes.fromhex(UID7) + b"\x62\x82"
        assert sim.answer(bytes.fromhex("FFCA000004")) == b"\x6c\x07"
        assert sim.answer(bytes.fromhex("FFCA00")) == b"\x67\x00"  # not an APDU
        assert sim.answer(bytes.fromhex("00B0000010")) == b"\x6d\x00"
    finally:
        sim.close()


@pytest.mark.parametrize("bad", ["", "zz", "0", "00" * 17])
def test_card_simulator_rejects_bad_uids(bad: str) -> None:
    with pytest.raises(ValueError, match="UID"):
        parse_uid(bad)
