"""The warehouse terminal's devices on real ptys: an R2000 and a Chafon reader hand out a
tag when it enters the field (once, however long it stays), show gone / absent / silent and
come back; a scanner absent at start is found when plugged, survives an unplug, joins a
seed label's four lines into one scan and counts an unreadable line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.codecs.barcode import Scan
from drivers.codecs.itemcodes import seed_qr
from edge_agent.terminal.whdevices import Scanner, TagReader
from edge_agent.terminal.whsettings import ReaderSettings, ScannerSettings
from simulators.scanner_sim import ScannerSim
from simulators.uhf_sim import ChafonReader, R2000Reader, make_tags


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never: {what}")


@pytest.mark.parametrize("sim_class", [ChafonReader, R2000Reader])
def test_a_tag_counts_when_it_enters_the_field(
    sim_class: type[ChafonReader | R2000Reader], tmp_path: Path
) -> None:
    tags = make_tags(3, seed=5)
    seen: list[str] = []
    states: list[tuple[str, str]] = []
    sim = sim_class(tags=[], link=tmp_path / "uhf")
    sim.start()

    async def main() -> None:
        s = ReaderSettings(sim.path, sim.protocol, period_s=0.05, timeout_s=0.5,
                           reconnect_cap_s=0.2)  # fmt: skip
        r = TagReader(s, lambda d, st, det: states.append((d, st)), seen.append)
        task = asyncio.create_task(r.run())
        try:
            await until(lambda: r.state == "ready", "ready")
            sim.tags = tags[:2]
            await until(lambda: len(seen) == 2, "two tags")
            n = r.rounds
            await until(lambda: r.rounds >= n + 5, "five more rounds")
            assert len(seen) == 2  # still in the field: counted once
            sim.tags = tags[1:]
            await until(lambda: len(seen) == 3, "the third tag")
            sim.tags = []
            n = r.rounds
            await until(lambda: r.rounds >= n + 2, "empty rounds")
            sim.tags = tags[:1]
            await until(lambda: len(seen) == 4, "the first tag back")
            sim.unplug()
            await until(lambda: r.state in ("gone", "absent"), "gone")
            sim.replug()
            await until(lambda: r.state == "ready", "ready again")
            sim.fault = 0xFA if sim_class is ChafonReader else 0x22
            await until(lambda: r.state == "silent", "a reader fault shown")
            sim.fault = None
            await until(lambda: r.state == "ready", "ready after the fault")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await r.close()

    try:
        asyncio.run(main())
    finally:
        sim.stop()
    epc = [t.epc.hex().upper() for t in tags]
    assert seen == [epc[0], epc[1], epc[2], epc[0]]
    assert ("reader", "ready") in states


def test_the_scanner_absent_then_plugged_unplugged_and_joining_lines(tmp_path: Path) -> None:
    got: list[Scan] = []
    states: list[tuple[str, str]] = []
    link = tmp_path / "scanner"

    async def main() -> None:
        s = ScannerSettings(str(link), reconnect_cap_s=0.2)
        sc = Scanner(s, lambda d, st, det: states.append((d, st)), got.append)
        task = asyncio.create_task(sc.run())
        sim = ScannerSim(link=link)
        try:
            await until(lambda: sc.state == "absent", "absent")
            sim.start()
            await until(lambda: sc.state == "ready", "found when plugged")
            sim.scan(Scan("]C0", "ABC123"))
            await until(lambda: len(got) == 1, "a scan")
            text = seed_qr("郑单958", "河南秋乐种业", "1100012345678901", "https://x.cn/s/1")
            sim.send(("]Q1" + text + "\r").encode())
            await until(lambda: len(got) == 2, "the seed label")
            assert got[1].data.split("\n")[2] == "1100012345678901"
            sim.unplug()
            await until(lambda: sc.state == "gone", "gone")
            sim.replug()
            await until(lambda: sc.state == "ready", "back")
            sim.send(b"\x00\xff]Q\r\n")
            sim.scan(Scan("]C0", "DEF456"))
            await until(lambda: len(got) == 3, "a scan after the replug")
            assert sc.bad >= 1 and sc.scans == 3  # the noise: counted, not a scan
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await sc.close()
            sim.stop()

    asyncio.run(main())
    assert [g.data for g in (got[0], got[2])] == ["ABC123", "DEF456"]
    assert ("scanner", "gone") in states
