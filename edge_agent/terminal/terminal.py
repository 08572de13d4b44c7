"""The Linux stall terminal (``traceedge terminal run --app settlement``).

One asyncio loop drives the operator's commands (:mod:`edge_agent.terminal.console`,
from stdin or :meth:`Terminal.handle`), the card events, the scale probe, the sender and
the state the ``status`` command reads; the MQTT link runs in its own thread
(:mod:`hostlib.mqttlink`) and hands acks and stop lists to the sender under a lock.

A sale settled here is the MCU app's sale (``wire/settlement.py``, the receipt from
``drivers/codecs/receipt.py``): one transaction stores the day's serial, the signed record
and its receipt (:mod:`edge_agent.terminal.log`); only then is the receipt printed and
"settled" said. The record stays in the log until the agent's sealed ack names it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from drivers.codecs.receipt import escpos, receipt
from drivers.transports.errors import DriverError
from edge_agent.terminal.base import NotRecorded, TerminalCore
from edge_agent.terminal.console import HELP, Command, parse
from edge_agent.terminal.devices import CardSource, Printer, ScaleSource
from edge_agent.terminal.log import TerminalLog
from edge_agent.terminal.runner import run_app
from edge_agent.terminal.sale import Sale, SaleError
from edge_agent.terminal.settings import TerminalSettings
from wire.settlement import codes, next_serial
from wire.tracecode import local_date

KIND = "market.settlement"


class Terminal(TerminalCore[TerminalSettings]):
    help = HELP

    def __init__(
        self,
        settings: TerminalSettings,
        out: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        tlog = TerminalLog(settings.log_path, settings.log_max_bytes, settings.receipts_keep_days)
        super().__init__(settings, tlog, {"sales": 0}, out, clock)
        self.sale = Sale(settings.sale)
        self.printer = Printer(settings.printer, self._state_changed)
        self.scale: ScaleSource | None = None
        self.cards: CardSource | None = None
        self._weighing = asyncio.Lock()

    # -- devices -----------------------------------------------------------------------
    def start_devices(self) -> list[asyncio.Task[None]]:
        self.scale = ScaleSource(self.s.scale, self._state_changed)
        self.cards = CardSource(self.s.reader, self._state_changed).start()
        return [
            asyncio.create_task(self.scale.probe_forever(self._weighing), name="scale-probe"),
            asyncio.create_task(self._card_loop(), name="cards"),
        ]

    async def close_devices(self) -> None:
        if self.cards is not None:
            await asyncio.to_thread(self.cards.stop)
        if self.scale is not None:
            await self.scale.close()

    def device_states(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        if self.scale is not None:
            out["scale"] = {"state": self.scale.state, "detail": self.scale.detail}
        if self.cards is not None:
            out["cards"] = {"state": self.cards.state, "detail": self.cards.detail}
        out["printer"] = {"state": self.printer.state, "detail": self.printer.detail}
        return out

    def tick(self) -> None:
        if self.sale.expired(self.clock()):
            self.sale.clear()
            self.say("sale timed out: cancelled")

    async def _card_loop(self) -> None:
        assert self.cards is not None
        while True:
            ev = await self.cards.queue.get()
            if ev.kind == "inserted" and ev.uid:
                self.say(self.tap(ev.uid))
            elif ev.kind == "error":
                self.say(f"card not readable: {ev.error}")

    def tap(self, uid: str) -> str:
        """A card on the reader (the card loop's path; programs may call it too)."""
        try:
            return self.sale.card(uid, self.clock())
        except SaleError as exc:
            return f"refused: {exc}"

    # -- commands ----------------------------------------------------------------------
    def parse(self, line: str) -> Command | None:
        return parse(line)

    async def do(self, cmd: Command) -> list[str]:
        try:
            return await self._do(cmd)
        except SaleError as exc:
            return [f"refused: {exc}"]

    async def _do(self, cmd: Command) -> list[str]:
        now = self.clock()
        if cmd.name == "goods":
            g = self.sale.select(cmd.number, self.stopped_now(), now)
            if g.mode == "counted":
                return [f"{g.goods_name}: how many pieces? (pieces N)"]
            return [await self._weigh(g)]
        if cmd.name == "pieces":
            ln = self.sale.pieces(cmd.number, now)
            return [f"line: {ln['goods_name']} {ln['pieces']} pc {ln['amount_fen']} fen"]
        if cmd.name == "pay":
            self.sale.set_pay(cmd.text, now)
            return [f"pay {cmd.text}"]
        if cmd.name == "drop":
            ln = self.sale.drop(now)
            return [f"dropped {ln['goods_name']}"]
        if cmd.name == "cancel":
            self.sale.clear()
            return ["sale cancelled"]
        if cmd.name == "settle":
            return self.settle()
        if cmd.name == "reprint":
            return self.reprint(cmd.text or None)
        return self.common(cmd)

    async def _weigh(self, g: Any) -> str:
        assert self.scale is not None
        async with self._weighing:
            try:
                r = await self.scale.read(True, self.s.scale.timeout_s)
            except DriverError as exc:
                self.sale.item = None
                raise SaleError(
                    f"scale {self.scale.state}: {exc.message}; line not added"
                ) from None
        ln = self.sale.weighed(g, r, self.clock())
        return (
            f"line: {ln['goods_name']} {ln['weight_g']} g x {ln['price_fen_per_kg']} fen/kg "
            f"= {ln['amount_fen']} fen"
        )

    def settle(self) -> list[str]:
        self.sale.check_settle(self.stopped_now())
        c = self.s.sale
        ts = int(self.clock() * 1000)
        try:
            date = local_date(ts, c.utc_offset_min)
            serial = next_serial(self.log.serial_state(), date)
            tran, trace = codes(c.region, c.market_no, date, c.terminal_no, serial)
            body = self.sale.body(tran, trace)
        except ValueError as exc:
            raise SaleError(f"SALE NOT RECORDED: {exc}") from None
        r = receipt(body, ts, c.title, c.trace_url, c.utc_offset_min)
        try:
            seq = self.store(KIND, body, ts, {"date": date, "serial": serial}, (trace, r))
        except NotRecorded as exc:  # every sale waits for the gateway: say so, make no new one
            raise SaleError(f"SALE NOT RECORDED: {exc}") from None
        self.counters["sales"] += 1
        self.sale.clear()
        out = [f"settled seq={seq} tran={tran} trace={trace} total={body['total_fen']}"]
        out.append(self._print_receipt(seq, r))
        return out

    def _print_receipt(self, seq: int, r: dict[str, Any]) -> str:
        if self.printer.print_bytes(escpos(r)):
            self.log.mark_printed(seq)
            return f"receipt printed ({r['qr']})"
        return f"receipt NOT printed, kept: reprint when the printer is back ({r['qr']})"

    def reprint(self, trace: str | None) -> list[str]:
        got = self.log.receipt(trace)
        if got is None:
            raise SaleError("no such receipt")
        return [self._print_receipt(*got)]

    # -- status ------------------------------------------------------------------------
    def headline(self) -> str:
        return f"sale: {self.sale.describe()}"


def run_terminal(settings: TerminalSettings) -> None:
    """Run until ``quit``, the end of stdin, SIGTERM or SIGINT."""
    run_app(lambda: Terminal(settings))
