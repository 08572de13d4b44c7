"""The warehouse terminal in this process through its programmatic API (``handle``): a real
scanner on a pty, no broker reachable. Receipts by scan are recorded and wait in the log;
a dispatch finds no gateway and nothing leaves; a stopped lot is not dispatched; gate
answers that are not sealed for the request are counted and ignored; operator errors are
answered, never raised."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from drivers.codecs.barcode import Scan
from edge_agent.terminal.log import read_status
from edge_agent.terminal.whsettings import load_warehouse
from edge_agent.terminal.whterminal import WarehouseTerminal
from hostlib.registry import Device
from simulators.scanner_sim import ScannerSim
from tests.e2e.stall import only_record
from tests.e2e.test_warehouse_terminal import pesticide, write_config
from traceedge.brokers import free_port
from wire import auth, topics
from wire.envelope import verify_mac

DEV = Device("WHS-T01-00AA01", b"\7" * 32, "warehouse-terminal", "T01")


async def until(said: list[str], text: str, since: int = 0, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if any(text in s for s in said[since:]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never said {text!r}: {said[-10:]}")


def test_receive_by_scan_and_a_dispatch_without_the_gateway(tmp_path: Path) -> None:
    said: list[str] = []

    async def main(scanner: ScannerSim) -> None:
        cfg = write_config(tmp_path, DEV, free_port(), str(tmp_path / "no-reader"), scanner.path)
        s = load_warehouse(cfg)
        s = replace(s, gate_timeout_s=0.5)
        term = WarehouseTerminal(s, out=said.append)
        await term.start()
        try:
            await until(said, "scanner: ready")
            await until(said, "reader: absent")
            assert await term.handle("record") == ["choose a mode first"]
            assert await term.handle("sell") == ["? unknown command 'sell': type help"]
            assert await term.handle("product 9") == ["no product 9 (type products)"]
            assert await term.handle("receive") == ["mode: receive"]
            assert await term.handle("record") == ["choose a product (product N)"]
            assert await term.handle("product 2") == ["product: 吡虫啉 70% 水分散粒剂"]
            for n in (1, 2, 1):
                scanner.scan(pesticide(n))
            await until(said, "2: pesticide")
            await until(said, "already read")
            assert await term.handle("record") == ["received 2"]
            assert "recorded goods.in seq=1" in said

            # a dispatch: the gateway is unreachable, nothing leaves
            await term.handle("dispatch")
            await term.handle("product 2")
            await term.handle("party 2")
            at = len(said)
            scanner.scan(pesticide(1))
            await until(said, "1: pesticide", at)
            assert await term.handle("record") == ["no answer from the gateway: NOT dispatched"]
            assert term.gate.snapshot()["dispatch_timeouts"] == 1

            # a gate answer nobody asked for, and one not sealed: counted, ignored
            topic = topics.terminal_cmd(DEV.dev)
            forged = auth.gate_answer(DEV.dev, 1, "0" * 32, "allow", [], 1, b"\1" * 32)
            term.sender._on_message(topic, forged)
            term.sender._on_message(topic, b'{"t": "gate", "id": 1, "decision": "allow"}')
            assert term.gate.snapshot()["dispatch_late"] == 1
            assert term.sender.snapshot()["commands_refused"] == 1

            # a stop list naming product 1's lot: its dispatch is refused at the terminal
            term._on_stop_list({"version": 2, "batches": [{"batch_id": "L20251101"}]})
            await term.handle("product 1")
            await term.handle("party 1")
            assert await term.handle("record") == [
                "lot L20251101 is on the stop list: NOT dispatched"
            ]
            status = "\n".join(await term.handle("status"))
            assert "broker: down" in status and "log: 1 waiting, last seq 1" in status
            assert "stop list v2" in status and "dispatch_asked=1" in status
            assert await term.handle("quit") == ["stopping"] and term.stopping.is_set()
        finally:
            await term.close()

    with ScannerSim(link=tmp_path / "scanner") as sim:
        asyncio.run(main(sim))
    st = read_status(tmp_path / "data" / "terminal.sqlite")
    assert (st["waiting"], st["last_seq"], st["app"]) == (1, 1, "warehouse")
    assert st["devices"]["scanner"]["state"] == "ready"
    assert st["counters"]["scans"] == 4 and st["counters"]["records"] == 1
    rec = only_record(tmp_path / "data" / "terminal.sqlite")
    assert verify_mac(rec, DEV.key) and rec["kind"] == "goods.in"
    body = rec["body"]
    assert isinstance(body, dict) and body["quantity"] == 2 and "party" not in body


def test_a_bad_scan_is_counted_and_shown(tmp_path: Path) -> None:
    said: list[str] = []

    async def main(scanner: ScannerSim) -> None:
        cfg = write_config(tmp_path, DEV, free_port(), str(tmp_path / "x"), scanner.path)
        term = WarehouseTerminal(load_warehouse(cfg), out=said.append)
        await term.start()
        try:
            await until(said, "scanner: ready")
            await term.handle("stocktake")
            scanner.scan(Scan("]Q1", "hello"))
            await until(said, "code not understood")
            assert term.counters["bad_reads"] == 1
            assert await term.handle("read 10803851010000000000000000000003") == []
            await until(said, "1: pesticide")
            assert await term.handle("record") == ["stocktake CNT-1-1 part 1 recorded",
                                                   "stocktake CNT-1-1 closed: 1 items"]  # fmt: skip
        finally:
            await term.close()

    with ScannerSim(link=tmp_path / "scanner") as sim:
        asyncio.run(main(sim))


def test_a_full_log_records_nothing_and_keeps_the_reads(tmp_path: Path) -> None:
    said: list[str] = []

    async def main() -> None:
        cfg = write_config(tmp_path, DEV, free_port(), str(tmp_path / "x"), str(tmp_path / "y"))
        s = load_warehouse(cfg)
        term = WarehouseTerminal(replace(s, log_max_bytes=200), out=said.append)
        await term.start()
        try:
            await term.handle("receive")
            await term.handle("product 2")
            await term.handle("read 10803851010000000000000000000003")
            assert await term.handle("record") == []
            assert any(x.startswith("NOT RECORDED: the terminal's log is full") for x in said)
            assert len(term.desk.reads) == 1 and term.log.last_seq == 0
        finally:
            await term.close()

    asyncio.run(main())
