"""The Linux stall terminal end to end: real Mosquitto, agent and collector (the chain
fixture), the terminal as a child process driven on its stdin, a CAS ECR then a SICS
scale on ptys, cards through a private pcscd + vpcd, receipts to a printer device file.

Sales are recorded while the scale is unplugged and replugged, pcscd is killed and
started again, the printer is gone, the agent is killed (-9) mid-exchange and the
terminal itself is killed (-9) between its record and the ack; at the end every sale
the terminal said it settled is stored once at the collector (schema-checked, nothing
quarantined) with the body the terminal made, and a stop order issued at the collector
reaches the terminal, which then refuses the batch.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from drivers.codecs.receipt import escpos, receipt
from simulators.card_sim import CardSimulator
from simulators.pcscd import Pcscd, PcscdUnavailable, require_pcscd
from simulators.scale_sim import CasEcrScale, SicsScale
from tests.apiauth import admin_headers
from tests.conftest import Chain, wait_until
from tests.e2e.stall import (
    BUYER,
    BUYER_ID,
    COUNTED,
    SELLER,
    TRADER,
    WEIGHED,
    StallTerminal,
    python_env,
    write_config,
)
from traceedge.brokers import free_port
from wire.settlement import priced

SETTLED = r"settled seq=(\d+) tran=(\d{20}) trace=(\d{20}) total=(\d+)"


@pytest.fixture
def pcscd(tmp_path: Path) -> Iterator[Pcscd]:
    try:
        require_pcscd()
        p = Pcscd(tmp_path / "pcscd").start()
    except PcscdUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield p
    p.stop()


def tap(term: StallTerminal, card: CardSimulator, uid: str, said: str) -> None:
    at = term.mark()
    card.insert(uid)
    term.expect(said, at)
    card.remove()
    time.sleep(0.4)  # the reader sees the card leave before the next tap


def sell(
    term: StallTerminal,
    card: CardSimulator,
    weighed: bool = True,
    pieces: int = 0,
    buyer: bool = False,
    pay: str = "",
) -> dict[str, Any]:
    """One sale through the operator's commands; what the terminal said it settled."""
    tap(term, card, SELLER, f"seller {TRADER}: sale open")
    if weighed:
        term.ask("goods 1", r"^line: .* g x \d+ fen/kg = \d+ fen")
    if pieces:
        term.ask("goods 2", "how many pieces")
        term.ask(f"pieces {pieces}", rf"^line: 豆腐 {pieces} pc {pieces * 250} fen")
    if buyer:
        tap(term, card, BUYER, f"buyer {BUYER_ID}")
    if pay:
        term.ask(f"pay {pay}", f"pay {pay}")
    return settle(term)


def settle(term: StallTerminal) -> dict[str, Any]:
    seq, tran, trace, total = term.ask("settle", SETTLED).groups()
    return {"seq": int(seq), "tran": tran, "trace": trace, "total": int(total)}


def stored(ch: Chain, dev: str) -> dict[int, list[dict[str, Any]]]:
    db = sqlite3.connect(ch.store)
    try:
        rows = db.execute("SELECT seq, rec FROM records WHERE dev = ?", (dev,)).fetchall()
    finally:
        db.close()
    out: dict[int, list[dict[str, Any]]] = {}
    for seq, rec in rows:
        out.setdefault(int(seq), []).append(json.loads(rec))
    return out


def test_stall_terminal_end_to_end(
    chain_factory: Callable[..., Chain], pcscd: Pcscd, tmp_path: Path
) -> None:
    api = free_port()
    ch = chain_factory(api_port=api)
    device = next(d for d in ch.devices if d.type == "market-scale")
    card = CardSimulator(pcscd.vpcd_port)
    printer = tmp_path / "lp0"
    printer.write_bytes(b"")
    scale = CasEcrScale(link=tmp_path / "scale-cas", weight=1235, unit_price=3280)
    scale.start()
    root = tmp_path / "stall"
    root.mkdir()
    cfg = write_config(root, device, ch.broker.port, scale.path, "cas_ecr", pcscd.reader, printer)
    term = StallTerminal(cfg, python_env(pcscd.env), tmp_path / "terminal.log")
    sales: list[dict[str, Any]] = []
    try:
        term.start()
        term.expect(r"^broker: connected")
        term.expect(r"^cards: online")
        term.expect(r"^scale: ready")

        # 1. a full sale: weighed and counted lines, buyer card, payment
        first = sell(term, card, pieces=3, buyer=True, pay="wechat")
        assert first["seq"] == 1 and first["total"] == 4051 + 750
        sales.append(first)
        term.expect(re.escape(f"receipt printed (https://trace.example.cn/t/{first['trace']})"))

        # 2. the scale unplugged mid-day: the sale waits and says so, nothing recorded wrong
        at = term.mark()
        scale.unplug()
        term.expect(r"^scale: (gone|absent)", at)
        tap(term, card, SELLER, "sale open")
        term.ask("goods 1", r"^refused: scale (gone|absent|silent)")
        scale.replug()
        term.expect(r"^scale: ready", at)
        term.ask("goods 1", r"^line: 五花肉 1235 g x 3280 fen/kg = 4051 fen")
        sales.append(settle(term))

        # 3. the card reader gone (pcscd killed) and back
        at = term.mark()
        pcscd.kill()
        term.expect(r"^cards: offline", at)
        pcscd.start()
        term.expect(r"^cards: online", at, timeout=30)
        sales.append(sell(term, card, pieces=2))

        # 4. the printer gone: the sale is recorded anyway, the receipt kept and reprinted
        printer.rename(tmp_path / "lp0.away")
        s4 = sell(term, card, pay="cash")
        term.expect(r"receipt NOT printed, kept")
        sales.append(s4)
        (tmp_path / "lp0.away").rename(printer)
        term.ask(
            f"reprint {s4['trace']}",
            re.escape(f"receipt printed (https://trace.example.cn/t/{s4['trace']})"),
        )

        # 5. the agent killed -9 mid-exchange: records wait in the terminal's log, resent
        ch.agent.kill9()
        for _ in range(3):
            sales.append(sell(term, card))
        assert term.status()["waiting"] >= 3
        ch.agent.start()
        sales.append(sell(term, card, pieces=1))
        ch.agent.kill9()  # again, with the last one perhaps in flight
        ch.agent.start()
        wait_until(lambda: term.status()["waiting"] == 0, 60, "the terminal's log to drain")

        # 6. the terminal killed -9 after a record was made, before its ack
        ch.agent.kill9()
        orphan = sell(term, card, pieces=4)
        sales.append(orphan)
        boot = term.status()["boot"]
        term.kill9()
        ch.agent.start()
        term.start()
        term.expect(r"boot \d+: [1-9]\d* record\(s\) waiting")
        wait_until(lambda: term.status()["waiting"] == 0, 60, "the orphan to be acked")
        assert term.status()["boot"] == boot + 1
        nxt = sell(term, card)
        assert nxt["seq"] == orphan["seq"] + 1  # seq never reused, never skipped here
        sales.append(nxt)
        term.stop()

        # 7. a SICS scale (weighs only): the terminal prices the line from its goods
        scale.stop()
        sics = SicsScale(link=tmp_path / "scale-sics", weight=2150, decimals=3)
        sics.start()
        try:
            write_config(root, device, ch.broker.port, sics.path, "sics", pcscd.reader, printer)
            term.start()
            term.expect(r"^scale: ready")
            tap(term, card, SELLER, "sale open")
            amount = priced(2150, WEIGHED["price_fen_per_kg"])
            term.ask("goods 1", rf"^line: 五花肉 2150 g x 2980 fen/kg = {amount} fen")
            sales.append(settle(term))

            # 8. a stop order for the weighed goods' batch, issued at the collector
            batch = WEIGHED["batch_id"]
            wait_until(lambda: term.status()["waiting"] == 0, 60, "the sales to be acked")
            wait_until(lambda: bool(stored(ch, device.dev)), 30, "the sales at the collector")
            r = httpx.post(
                f"http://127.0.0.1:{api}/markets/batches/{batch}/stop",
                json={"reason": "瘦肉精 test positive"},
                headers=admin_headers(ch.store),
                timeout=10,
            )
            assert r.status_code == 200, r.text
            term.expect(rf"^stop list v\d+: 1 batch\(es\) stopped {batch}", timeout=30)
            tap(term, card, SELLER, "sale open")
            term.ask("goods 1", rf"^refused: batch {batch} is STOPPED")
            term.ask("goods 2", "how many pieces")  # other goods still sell
            term.ask("pieces 1", "line: 豆腐")
            sales.append(settle(term))
            st = term.status()
            assert st["stop_list"]["batches"] == [batch]
            wait_until(lambda: term.status()["waiting"] == 0, 60, "the last sales to be acked")
        finally:
            sics.stop()
    finally:
        term.stop()
        card.close()
        scale.stop()

    # every sale stored once, with the terminal's codes, nothing quarantined
    n = len(sales)
    wait_until(lambda: len(stored(ch, device.dev)) == n, 60, f"{n} sales at the collector")
    got = stored(ch, device.dev)
    printed = printer.read_bytes()  # sale 4's receipt: printed once, by the reprint
    assert sorted(got) == list(range(1, n + 1))
    assert all(len(v) == 1 for v in got.values()), "a record stored twice"
    for s in sales:
        rec = got[int(s["seq"])][0]
        body = rec["body"]
        assert rec["kind"] == "market.settlement" and rec["dev"] == device.dev
        assert (body["tran_id"], body["trace_id"], body["total_fen"]) == (
            s["tran"],
            s["trace"],
            int(s["total"]),
        )
        assert body["market"] == "M330106042" and body["seller"] == TRADER
        assert body["seller_card"] == SELLER
        # the printer got exactly the bytes the shared receipt module makes for it
        r = receipt(body, rec["ts"], "西湖农贸市场", "https://trace.example.cn/t/")
        assert printed.count(escpos(r)) == 1, f"receipt of {s['trace']} not printed once"
    b1 = got[1][0]["body"]
    assert b1["buyer"] == BUYER_ID and b1["buyer_card"] == BUYER and b1["pay"] == "wechat"
    assert [ln["mode"] for ln in b1["lines"]] == ["weighed", "counted"]
    assert b1["lines"][0] == {
        "batch_id": WEIGHED["batch_id"],
        "goods_code": WEIGHED["goods_code"],
        "goods_name": "五花肉",
        "mode": "weighed",
        "weight_g": 1235,
        "price_fen_per_kg": 3280,
        "amount_fen": 4051,
    }
    assert b1["lines"][1]["batch_id"] == COUNTED["batch_id"]
    stats = ch.collector_stats()
    assert stats["quarantined"] == 0, stats.get("quarantine_by_reason")
    assert stats["gaps"] == 0, stats
