"""The Linux warehouse terminal (``traceedge terminal run --app warehouse``).

A desk or door terminal at a dangerous-chemicals store, an agricultural-inputs dealer or a
pharmacy: a UHF reader and a barcode/QR scanner on serial
(:mod:`edge_agent.terminal.whdevices`), the operator's commands on the tty
(:mod:`edge_agent.terminal.whconsole`), the records of the handheld
(:mod:`edge_agent.terminal.desk`, bodies from ``wire/goods_records.py``), stored in the
stall terminal's durable bounded log and sent by its sender (acks sealed, stop lists
verified). One asyncio loop; the MQTT link has its own thread.

Every read becomes an item (``drivers.codecs.itemcodes``: pesticide codes, seed label QR,
drug codes, GS1, Digital Link, EPC); one that is not understood is counted and shown, never
recorded. A dispatch asks the agent's dispatch gate first
(:mod:`edge_agent.terminal.dispatch`): only its sealed answer for this request's nonce
lets a ``goods.out`` be made. A product whose lot is on the stop list the agent relayed is
not dispatched.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from drivers.codecs import barcode
from drivers.codecs.errors import CodecError
from drivers.codecs.itemcodes import parse_item, parse_scan
from edge_agent.terminal.base import NotRecorded, TerminalCore
from edge_agent.terminal.commands import Command
from edge_agent.terminal.desk import Desk
from edge_agent.terminal.dispatch import DispatchClient
from edge_agent.terminal.log import TerminalLog
from edge_agent.terminal.runner import run_app
from edge_agent.terminal.whconsole import HELP, parse
from edge_agent.terminal.whdevices import Scanner, TagReader
from edge_agent.terminal.whsettings import WarehouseSettings
from wire.goods_records import DISPATCH

COUNTERS_SHOWN = (
    "records", "reads", "bad_reads", "dispatch_asked", "dispatch_timeouts", "dispatch_forged",
    "forged_acks", "commands_refused",
)  # fmt: skip


def typed_item(text: str) -> dict[str, object]:
    """A code the operator typed: as scanned, else as a tag's EPC (hex)."""
    try:
        return parse_item(text, "scan")
    except CodecError as first:
        try:
            return parse_item(text, "epc")
        except CodecError:
            raise first from None


class WarehouseTerminal(TerminalCore[WarehouseSettings]):
    name = "warehouse terminal"
    stopped_what = "lot(s)"
    help = HELP

    def __init__(
        self,
        settings: WarehouseSettings,
        out: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        tlog = TerminalLog(settings.log_path, settings.log_max_bytes)
        counters = {"records": 0, "reads": 0, "bad_reads": 0}
        super().__init__(settings, tlog, counters, out, clock, on_gate=self._on_gate)
        self.desk = Desk(settings, self.log.boot)
        self.gate = DispatchClient(settings.identity.device, self.sender.send_dispatch, tlog.boot)
        self.reader: TagReader | None = None
        self.scanner: Scanner | None = None
        self.asking = False

    def _on_gate(self, msg: dict[str, object]) -> None:  # the MQTT thread
        self.gate.on_answer(msg)

    # -- devices -----------------------------------------------------------------------
    def start_devices(self) -> list[asyncio.Task[None]]:
        s, tasks = self.s, []
        if s.reader is not None:
            self.reader = TagReader(s.reader, self._state_changed, self.tag)
            tasks.append(asyncio.create_task(self.reader.run(), name="reader"))
        if s.scanner is not None:
            self.scanner = Scanner(s.scanner, self._state_changed, self.scan)
            tasks.append(asyncio.create_task(self.scanner.run(), name="scanner"))
        return tasks

    async def close_devices(self) -> None:
        for d in (self.reader, self.scanner):
            if d is not None:
                with contextlib.suppress(Exception):
                    await d.close()

    def device_states(self) -> dict[str, dict[str, str]]:
        return {
            d.name: {"state": d.state, "detail": d.detail}
            for d in (self.reader, self.scanner)
            if d is not None
        }

    # -- reads -------------------------------------------------------------------------
    def _item(self, what: str, parse_it: Callable[[], dict[str, object]]) -> None:
        self.counters["reads"] += 1
        try:
            parsed = parse_it()
        except CodecError as exc:
            self.counters["bad_reads"] += 1
            self.say(f"{what} not understood: {exc}")
            return
        for line in self.desk.read(parsed, self._record):
            self.say(line)

    def tag(self, epc: str) -> None:
        """A tag entered the reader's field (the reader's path; programs may call it)."""
        self._item(f"tag {epc}", lambda: parse_item(epc, "epc"))

    def scan(self, s: barcode.Scan) -> None:
        """A scan from the scanner."""
        self._item("code", lambda: parse_scan(s))

    # -- records -----------------------------------------------------------------------
    def _record(self, kind: str, body: dict[str, Any]) -> bool:
        try:
            seq = self.store(kind, body, int(self.clock() * 1000))
        except NotRecorded as exc:
            self.say(f"NOT RECORDED: {exc}")
            return False
        self.counters["records"] += 1
        self.say(f"recorded {kind} seq={seq}")
        return True

    async def _dispatch(self) -> list[str]:
        product = self.desk.product
        lot = product.get("lot") if product is not None else None
        if lot and lot in self.stopped_now():
            return [f"lot {lot} is on the stop list: NOT dispatched"]
        fields, why = self.desk.dispatch_request()
        if fields is None:
            return why
        self.say("asking the gateway...")
        self.asking = True
        try:
            answer = await self.gate.ask(fields, self.s.gate_timeout_s)
        finally:
            self.asking = False
        return self.desk.answered(answer, self._record)

    # -- commands ----------------------------------------------------------------------
    def parse(self, line: str) -> Command | None:
        return parse(line)

    async def do(self, cmd: Command) -> list[str]:
        if self.asking and cmd.name not in ("status", "help"):
            return ["waiting for the gateway's answer"]
        d = self.desk
        if cmd.name == "mode":
            return d.set_mode(cmd.number)
        if cmd.name == "product":
            return d.choose_product(cmd.number)
        if cmd.name == "party":
            return d.choose_party(cmd.number)
        if cmd.name == "products":
            return [
                f"{k}: {p['name']} ({p['class']}, {p['amount']} {p['unit']}"
                + (f", lot {p['lot']})" if p.get("lot") else ")")
                for k, p in sorted(self.s.products.items())
            ] or ["no products on file"]
        if cmd.name == "parties":
            return [
                f"{k}: {p['party']}" + (f" (licence {p['licence']})" if p.get("licence") else "")
                for k, p in sorted(self.s.parties.items())
            ] or ["no parties on file"]
        if cmd.name == "read":
            text = cmd.text
            self._item("code", lambda: typed_item(text))
            return []
        if cmd.name == "drop":
            return d.drop()
        if cmd.name == "cancel":
            return d.cancel()
        if cmd.name == "record":
            if d.mode == DISPATCH:
                return await self._dispatch()
            return d.commit(self._record)
        return self.common(cmd)

    # -- state -------------------------------------------------------------------------
    def saved(self) -> dict[str, Any]:
        return {"app": "warehouse", "desk": self.desk.describe()}

    def more_counters(self) -> dict[str, int]:
        out = self.gate.snapshot()
        if self.reader is not None:
            out.update(reader_rounds=self.reader.rounds, reader_bad=self.reader.bad)
        if self.scanner is not None:
            out.update(scans=self.scanner.scans, scanner_bad=self.scanner.bad)
        return out

    def headline(self) -> str:
        return f"now: {self.desk.describe()}"

    def more_status(self, st: dict[str, Any]) -> list[str]:
        c = st["counters"]
        return ["counters: " + " ".join(f"{k}={c.get(k, 0)}" for k in COUNTERS_SHOWN)]


def run_warehouse(settings: WarehouseSettings) -> None:
    """Run until ``quit``, the end of stdin, SIGTERM or SIGINT."""
    run_app(lambda: WarehouseTerminal(settings))
