"""The stall terminal's durable log and its ack policy, against a real SQLite file: seq
and boot survive restarts, a sale's serial, record and receipt commit together, an ack
frees only records this process sent, a forged ack or stop list frees or stops nothing."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from edge_agent.terminal.log import LogFull, TerminalLog, read_status
from edge_agent.terminal.sale import Sale, SaleError
from edge_agent.terminal.sender import Sender
from hostlib.mqttlink import BrokerSettings
from hostlib.registry import Device
from wire import auth
from wire.envelope import decode_record, make_record, verify_mac

from .test_terminal_devices import CFG

DEV = Device("MKT-T01-000001", secrets.token_bytes(32), "market-scale", "T01")
BODY = {"x": 1}


def _make(seq: int, boot: int) -> dict[str, Any]:
    return make_record(
        DEV.dev, seq, boot, "market.settlement", 1_763_856_000_000, "rtc", BODY, DEV.key
    )


def test_seq_and_boot_survive_a_restart_and_acks(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    log = TerminalLog(path)
    assert log.boot == 1
    for _ in range(3):
        log.append(_make, {"date": "251123", "serial": 1}, ("8" * 20, {"lines": [], "qr": "q"}))
    assert log.ack([(1, 3)], []) == 3 and log.pending() == 0
    log.close()
    log = TerminalLog(path)  # a restart: the acked records are gone, their seqs are not
    assert log.boot == 2 and log.last_seq == 3
    seq, payload = log.append(_make)
    rec = decode_record(payload)
    assert (seq, rec["seq"], rec["boot"]) == (4, 4, 2) and verify_mac(rec, DEV.key)
    assert log.serial_state() == {"date": "251123", "serial": 1}
    log.close()
    st = read_status(path)
    assert (st["boot"], st["last_seq"], st["waiting"], st["running"]) == (2, 4, 1, False)


def test_a_failed_sale_stores_nothing(tmp_path: Path) -> None:
    log = TerminalLog(tmp_path / "t.sqlite")

    def broken(seq: int, boot: int) -> dict[str, Any]:
        raise ValueError("signing failed")

    with pytest.raises(ValueError):
        log.append(broken, {"date": "251123", "serial": 5}, ("8" * 20, {"qr": "q"}))
    assert (log.last_seq, log.pending(), log.serial_state(), log.receipt()) == (0, 0, None, None)
    log.close()


def _sender(log: TerminalLog, stops: list[dict[str, object]]) -> Sender:
    return Sender(log, DEV, BrokerSettings(port=1), stops.append)  # never started


def test_an_ack_frees_only_what_was_sent_and_only_when_sealed(tmp_path: Path) -> None:
    log = TerminalLog(tmp_path / "t.sqlite")
    for _ in range(5):
        log.append(_make)
    s = _sender(log, [])
    s.high = 3  # records 1..3 were published by this process
    forged = auth.terminal_ack(DEV.dev, 5, [[1, 5]], [], secrets.token_bytes(32))
    s._on_message(f"t/{DEV.dev}/ack", forged)
    assert log.pending() == 5 and s.counters["forged_acks"] == 1
    s._on_message(f"t/{DEV.dev}/ack", auth.terminal_ack(DEV.dev, 5, [[1, 5]], [], DEV.key))
    assert log.pending() == 2 and s.counters["unsent_acks"] == 1  # 4 and 5 were never sent
    assert [seq for seq, _ in log.read(0, 10)] == [4, 5]
    log.close()


def test_only_a_sealed_stop_list_reaches_the_sale(tmp_path: Path) -> None:
    log = TerminalLog(tmp_path / "t.sqlite")
    got: list[dict[str, object]] = []
    s = _sender(log, got)
    batches: list[object] = [{"batch_id": "33014225112300000076"}]
    s._on_message(f"t/{DEV.dev}/cmd", auth.stop_list(DEV.dev, 2, batches, secrets.token_bytes(32)))
    s._on_message(f"t/{DEV.dev}/cmd", b"{not json")
    assert got == [] and s.counters["commands_refused"] == 2
    s._on_message(f"t/{DEV.dev}/cmd", auth.stop_list(DEV.dev, 2, batches, DEV.key))
    assert got and got[0]["version"] == 2
    log.close()


def test_a_sale_refuses_what_it_must() -> None:
    sale = Sale(CFG)
    with pytest.raises(SaleError, match="tap the trader card"):
        sale.select(1, [], 0.0)
    with pytest.raises(SaleError, match="not a trader card"):
        sale.card("04A1B2C3", 0.0)
    sale.card("9C3A11F0", 0.0)
    with pytest.raises(SaleError, match="STOPPED"):
        sale.select(1, ["33014225112300000076"], 1.0)
    with pytest.raises(SaleError, match="no goods 7"):
        sale.select(7, [], 1.0)
    with pytest.raises(SaleError, match="nothing to settle"):
        sale.check_settle([])
    with pytest.raises(SaleError, match="counted goods first"):
        sale.pieces(2, 1.0)
    assert not sale.expired(100.0) and sale.expired(1000.0)


def test_a_batch_stopped_while_the_sale_is_open_cannot_be_settled() -> None:
    sale = Sale(CFG)
    sale.card("9C3A11F0", 0.0)
    g = sale.select(1, [], 0.0)
    sale.lines.append(
        {"batch_id": g.batch_id, "goods_code": "1", "goods_name": "x", "amount_fen": 1}
    )
    sale.check_settle([])
    with pytest.raises(SaleError, match="was STOPPED: drop that line"):
        sale.check_settle([g.batch_id])


def test_a_full_log_refuses_new_sales_and_loses_none(tmp_path: Path) -> None:
    """Bounded in bytes: every waiting record is a sale, so none is dropped; the next sale
    is refused with a reason, and acks make room again. Old receipts of acknowledged
    sales go to make room; a waiting sale's receipt stays."""
    receipt = ("8" * 20, {"lines": ["x" * 200], "qr": "q"})
    probe = TerminalLog(tmp_path / "probe.sqlite")
    probe.append(_make, None, receipt)
    one = probe.nbytes  # a sale's record and receipt (the same size for every seq here)
    probe.close()
    log = TerminalLog(tmp_path / "t.sqlite", max_bytes=one * 5, keep_days=1)
    for _ in range(5):
        log.append(_make, None, receipt)
    with pytest.raises(LogFull, match="5 records waiting for the gateway"):
        log.append(_make, None, receipt)
    assert (log.last_seq, log.pending()) == (5, 5)  # the refused sale took no seq
    assert log.nbytes == log._bytes() == one * 5
    # acknowledged, their records go; their receipts stay (reprints) while young
    assert log.ack([(1, 3)], []) == 3
    assert log.nbytes == log._bytes()
    assert log.append(_make, None, receipt)[0] == 6
    with pytest.raises(LogFull, match="3 records waiting"):
        log.append(_make, None, receipt)
    # two days later the acknowledged sales' receipts are old: they make room
    log.db.execute("UPDATE receipts SET made = made - 2 * 86400")
    log.db.commit()
    assert log.append(_make, None, receipt)[0] == 7
    kept = {int(r[0]) for r in log.db.execute("SELECT seq FROM receipts")}
    assert kept == {4, 5, 6, 7}  # the waiting sales' receipts were old too, and stay
    assert log.nbytes == log._bytes()
    log.close()
    reopened = TerminalLog(tmp_path / "t.sqlite", max_bytes=one * 5)
    assert reopened.nbytes == reopened._bytes()
