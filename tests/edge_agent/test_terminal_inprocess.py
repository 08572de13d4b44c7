"""The stall terminal in this process through its programmatic API (``handle``, ``tap``):
a real SICS scale on a pty, a printer file, no broker reachable (the sale is recorded and
waits in the log), the operator's errors answered, never raised."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from edge_agent.terminal.log import read_status
from edge_agent.terminal.settings import load_terminal
from edge_agent.terminal.terminal import Terminal
from hostlib.registry import Device
from simulators.scale_sim import SicsScale
from tests.e2e.stall import SELLER, TRADER, only_record, write_config
from traceedge.brokers import free_port
from wire.envelope import verify_mac


def test_a_sale_through_the_api_waits_in_the_log_while_the_broker_is_away(
    tmp_path: Path,
) -> None:
    dev = Device("MKT-T01-00AA01", b"\7" * 32, "market-scale", "T01")
    printer = tmp_path / "lp0"
    printer.write_bytes(b"")
    said: list[str] = []

    async def main(scale_path: str) -> None:
        cfg = write_config(tmp_path, dev, free_port(), scale_path, "sics", "", printer)
        term = Terminal(load_terminal(cfg), out=said.append)
        await term.start()
        try:
            assert (await term.handle("goods 1"))[0].startswith("refused: no sale open")
            assert await term.handle("sell fish") == ["? unknown command 'sell': type help"]
            assert term.tap("DEADBEEF") == "refused: card DEADBEEF is not a trader card"
            assert term.tap(SELLER) == f"seller {TRADER}: sale open"
            line = (await term.handle("goods 1"))[0]
            assert line == "line: 五花肉 1500 g x 2980 fen/kg = 4470 fen"
            assert await term.handle("pay 1") == ["pay cash"]
            out = await term.handle("settle")
            assert out[0].startswith("settled seq=1 ") and out[1].startswith("receipt printed")
            status = "\n".join(await term.handle("status"))
            assert "broker: down" in status and "log: 1 waiting, last seq 1" in status
            assert (await term.handle("reprint"))[0].startswith("receipt printed")
            assert await term.handle("quit") == ["stopping"] and term.stopping.is_set()
        finally:
            await term.close()

    with SicsScale(weight=1500, decimals=3, link=tmp_path / "scale") as sim:
        asyncio.run(main(sim.path))
    st = read_status(tmp_path / "data" / "terminal.sqlite")
    assert (st["waiting"], st["last_seq"], st["unprinted_receipts"]) == (1, 1, 0)
    assert st["devices"]["scale"]["state"] == "ready"
    assert printer.read_bytes().count(b"\x1dVB\x00") == 2  # printed, then reprinted
    rec = only_record(tmp_path / "data" / "terminal.sqlite")
    assert verify_mac(rec, dev.key) and rec["kind"] == "market.settlement"
    body = rec["body"]
    assert isinstance(body, dict) and body["pay"] == "cash" and body["total_fen"] == 4470
    assert any("scale: ready" in s for s in said), json.dumps(said)


def test_terminal_status_reads_the_log_of_a_stopped_terminal(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from edge_agent.terminal.log import TerminalLog
    from traceedge.cli import main

    dev = Device("MKT-T01-00AA02", b"\7" * 32, "market-scale", "T01")
    cfg = write_config(tmp_path, dev, 1883, "/dev/null", "cas_ecr", "", tmp_path / "lp0")
    args = ["terminal", "status", "--config", str(cfg)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 3 and "never run" in res.output
    TerminalLog(tmp_path / "data" / "terminal.sqlite").close()
    res = CliRunner().invoke(main, [*args, "--json"])
    assert res.exit_code == 3, res.output
    st = json.loads(res.stdout)
    assert (st["running"], st["boot"], st["waiting"], st["stop_list"]["version"]) == (
        False,
        1,
        0,
        0,
    )
    res = CliRunner().invoke(main, args)
    assert "waiting for ack: 0" in res.stdout and "stop list v0: -" in res.stdout
