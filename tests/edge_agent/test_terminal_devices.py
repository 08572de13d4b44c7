"""The stall terminal's scale source against all four scale simulators on real ptys (the
e2e test uses two): a stable reading becomes the same sale line, an unplugged scale is
reported and refused, a replugged one is found again; the printer kept or absent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.transports.errors import DriverError
from drivers.transports.scales import PROTOCOLS
from edge_agent.terminal.devices import Printer, ScaleSource
from edge_agent.terminal.sale import Sale
from edge_agent.terminal.settings import Goods, PrinterSettings, SaleSettings, ScaleSettings
from simulators.scale_sim import SCALES
from wire.settlement import priced

PORK = Goods(1, "33014225112300000076", "10010004", "五花肉", "weighed", "T1", 2980)
CFG = SaleSettings(
    "M1", "330142", "330106", "M1-017", 17, "SW 1", "Market", "https://t/", 480,
    {"9C3A11F0": "T1"}, {}, {1: PORK},
)  # fmt: skip


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_each_scale_protocol_gives_a_line_and_survives_unplugging(
    protocol: str, tmp_path: Path
) -> None:
    states: list[tuple[str, str]] = []

    async def main() -> None:
        src = ScaleSource(
            ScaleSettings(str(tmp_path / "scale"), protocol, timeout_s=3.0, reconnect_cap_s=0.2),
            lambda dev, state, detail: states.append((dev, state)),
        )
        try:
            sale = Sale(CFG)
            sale.card("9C3A11F0", 0.0)
            r = await src.read(True, 3.0)
            line = sale.weighed(sale.select(1, [], 0.0), r, 0.0)
            assert line["weight_g"] == 1235
            if protocol == "cas_ecr":  # the scale's own price and total
                assert (line["price_fen_per_kg"], line["amount_fen"]) == (1290, 1593)
            else:  # priced by the terminal from the goods
                assert line["amount_fen"] == priced(1235, 2980)
            assert src.state == "ready"
            sim.unplug()
            with pytest.raises(DriverError):
                await src.read(True, 1.0)
            assert src.state in ("gone", "absent", "silent")
            sim.replug()
            r = await src.read(True, 3.0)
            assert r.weight is not None and r.stable and src.state == "ready"
        finally:
            await src.close()

    sim = SCALES[protocol](weight=1235, decimals=3, link=tmp_path / "scale")
    with sim:
        asyncio.run(main())
    assert ("scale", "ready") in states and states[-1] == ("scale", "ready")


def test_a_scale_absent_at_start_is_found_when_plugged(tmp_path: Path) -> None:
    async def main() -> None:
        src = ScaleSource(
            ScaleSettings(str(tmp_path / "scale"), "sics", timeout_s=2.0), lambda *a: None
        )
        try:
            with pytest.raises(DriverError):
                await src.read(False, 0.5)
            assert src.state == "absent"
            with SCALES["sics"](weight=500, decimals=3, link=tmp_path / "scale"):
                r = await src.read(True, 2.0)
                assert r.weight is not None and r.weight.value == 500
        finally:
            await src.close()

    asyncio.run(main())


def test_an_absent_printer_is_reported_and_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "lp0"
    seen: list[str] = []
    p = Printer(PrinterSettings("device", str(path)), lambda d, s, x: seen.append(s))
    assert not p.print_bytes(b"one") and p.state == "absent"
    path.write_bytes(b"")
    assert p.print_bytes(b"two") and p.print_bytes(b"three") and p.state == "ok"
    assert path.read_bytes() == b"twothree" and seen == ["absent", "ok"]
    assert not Printer(None, lambda *a: None).print_bytes(b"x")


def test_a_silent_scale_is_reported_and_heard_again(tmp_path: Path) -> None:
    states: list[str] = []

    async def main() -> None:
        src = ScaleSource(
            ScaleSettings(str(tmp_path / "scale"), "toledo8217", timeout_s=1.0),
            lambda dev, state, detail: states.append(state),
        )
        try:
            await src.read(True, 2.0)
            sim.silent = True
            with pytest.raises(DriverError):
                await src.read(True, 0.5)
            assert src.state == "silent"
            sim.silent = False
            await src.read(True, 2.0)
        finally:
            await src.close()

    with SCALES["toledo8217"](weight=800, decimals=3, link=tmp_path / "scale") as sim:
        asyncio.run(main())
    assert states == ["ready", "silent", "ready"]
