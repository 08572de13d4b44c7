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
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from drivers.codecs.receipt import escpos, receipt
from drivers.transports.errors import DriverError
from edge_agent.terminal.console import HELP, Command, InputError, parse
from edge_agent.terminal.devices import CardSource, Printer, ScaleSource
from edge_agent.terminal.log import TerminalLog, read_status
from edge_agent.terminal.sale import Sale, SaleError
from edge_agent.terminal.sender import Sender
from edge_agent.terminal.settings import TerminalSettings
from wire.envelope import make_record
from wire.settlement import codes, next_serial, stopped_batches
from wire.tracecode import local_date

log = logging.getLogger(__name__)

KIND = "market.settlement"
SYNCED = Path("/run/systemd/timesync/synchronized")


def time_quality() -> str:
    """``ntp`` when systemd-timesyncd says the clock is synchronised, else ``rtc``."""
    return "ntp" if SYNCED.exists() else "rtc"


class Terminal:
    def __init__(
        self,
        settings: TerminalSettings,
        out: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.s = settings
        self.clock = clock
        self._out = out or self._print
        self.log = TerminalLog(settings.log_path)
        self.sale = Sale(settings.sale)
        self._stop_lock = threading.Lock()
        self.stop_version, self.stopped = self.log.stop_list()
        self.stop_lists_refused = 0
        self.sales = 0
        self.sender = Sender(
            self.log,
            settings.identity.device,
            settings.identity.broker,
            self._on_stop_list,
            settings.window,
            settings.ack_timeout_s,
        )
        self.printer = Printer(settings.printer, self._state_changed)
        self.scale: ScaleSource | None = None
        self.cards: CardSource | None = None
        self._weighing = asyncio.Lock()
        self._broker_up = False
        self._tasks: list[asyncio.Task[None]] = []
        self.stopping = asyncio.Event()

    # -- output ------------------------------------------------------------------------
    @staticmethod
    def _print(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def say(self, line: str) -> None:
        self._out(line)

    def _state_changed(self, device: str, state: str, detail: str) -> None:
        self.say(f"{device}: {state}" + (f" ({detail})" if detail else ""))

    # -- stop list (MQTT thread) -------------------------------------------------------
    def _on_stop_list(self, msg: dict[str, object]) -> None:
        with self._stop_lock:
            ids = stopped_batches(msg, self.stop_version)
            if ids is None:
                self.stop_lists_refused += 1
                return
            version = msg["version"]
            assert isinstance(version, int)
            self.log.save_stop_list(version, ids)
            self.stop_version, self.stopped = version, ids
        self.say(f"stop list v{version}: {len(ids)} batch(es) stopped {' '.join(ids)}".rstrip())

    def stopped_now(self) -> list[str]:
        with self._stop_lock:
            return list(self.stopped)

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        s = self.s
        self.say(
            f"terminal {s.dev} boot {self.log.boot}: {self.log.pending()} record(s) waiting, "
            f"last seq {self.log.last_seq}"
        )
        self.scale = ScaleSource(s.scale, self._state_changed)
        self.cards = CardSource(s.reader, self._state_changed).start()
        self.sender.start()
        self._tasks = [
            asyncio.create_task(self._pump(), name="sender"),
            asyncio.create_task(self.scale.probe_forever(self._weighing), name="scale-probe"),
            asyncio.create_task(self._card_loop(), name="cards"),
        ]

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self.cards is not None:
            await asyncio.to_thread(self.cards.stop)
        if self.scale is not None:
            await self.scale.close()
        await asyncio.to_thread(self.sender.stop)
        self.save_state()
        self.log.close()

    async def run(self, lines: AsyncIterator[str]) -> None:
        """Take commands from ``lines`` until ``quit``, their end, or :attr:`stopping`."""
        await self.start()
        try:
            reader = asyncio.create_task(self._read(lines))
            stop = asyncio.create_task(self.stopping.wait())
            await asyncio.wait({reader, stop}, return_when=asyncio.FIRST_COMPLETED)
            for t in (reader, stop):
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        finally:
            await self.close()

    async def _read(self, lines: AsyncIterator[str]) -> None:
        async for line in lines:
            for out in await self.handle(line):
                self.say(out)
            if self.stopping.is_set():
                return

    # -- background loops --------------------------------------------------------------
    async def _pump(self) -> None:
        last_state = 0.0
        while True:
            try:
                await asyncio.to_thread(self.sender.poll)
                up = self.sender.connected
                if up != self._broker_up:
                    self._broker_up = up
                    self._state_changed("broker", "connected" if up else "down", "")
                now = time.monotonic()
                if now - last_state >= 1.0:
                    last_state = now
                    await asyncio.to_thread(self.save_state)
                if self.sale.expired(self.clock()):
                    self.sale.clear()
                    self.say("sale timed out: cancelled")
            except Exception:  # one bad turn never stops the sender
                log.exception("terminal: sender turn failed")
            await asyncio.sleep(0.05)

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

    def devices(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        if self.scale is not None:
            out["scale"] = {"state": self.scale.state, "detail": self.scale.detail}
        if self.cards is not None:
            out["cards"] = {"state": self.cards.state, "detail": self.cards.detail}
        out["printer"] = {"state": self.printer.state, "detail": self.printer.detail}
        out["broker"] = {
            "state": "connected" if self.sender.connected else "down",
            "detail": self.sender.link.last_error,
        }
        return out

    def save_state(self) -> None:
        counters: dict[str, Any] = dict(self.sender.snapshot())
        counters.update(sales=self.sales, stop_lists_refused=self.stop_lists_refused)
        self.log.save_state(
            {"updated_at": time.time(), "devices": self.devices(), "counters": counters}
        )

    # -- commands ----------------------------------------------------------------------
    async def handle(self, line: str) -> list[str]:
        """Do one operator command; returns what to show. Never raises for bad input."""
        try:
            cmd = parse(line)
        except InputError as exc:
            return [f"? {exc}"]
        if cmd is None:
            return []
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
        if cmd.name == "status":
            return self.status_lines()
        if cmd.name == "help":
            return HELP.splitlines()
        self.stopping.set()  # quit
        return ["stopping"]

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
        tq = time_quality()
        try:
            date = local_date(ts, c.utc_offset_min)
            serial = next_serial(self.log.serial_state(), date)
            tran, trace = codes(c.region, c.market_no, date, c.terminal_no, serial)
            body = self.sale.body(tran, trace)
        except ValueError as exc:
            raise SaleError(f"SALE NOT RECORDED: {exc}") from None
        r = receipt(body, ts, c.title, c.trace_url, c.utc_offset_min)
        dev = self.s.identity.device

        def make(seq: int, boot: int) -> dict[str, Any]:
            return make_record(dev.dev, seq, boot, KIND, ts, tq, body, dev.key_for(seq))

        try:
            seq, _ = self.log.append(make, {"date": date, "serial": serial}, (trace, r))
        except Exception as exc:  # the log could not store it: the sale is not made
            log.exception("terminal: storing the sale failed")
            raise SaleError(f"SALE NOT RECORDED: {exc}") from None
        self.sales += 1
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

    def status_lines(self) -> list[str]:
        self.save_state()
        st = read_status(self.s.log_path)
        lines = [f"sale: {self.sale.describe()}"]
        for name, d in st["devices"].items():
            lines.append(f"{name}: {d['state']}" + (f" ({d['detail']})" if d["detail"] else ""))
        lines.append(
            f"log: {st['waiting']} waiting, last seq {st['last_seq']}, "
            f"last ack {st['last_ack_age_s']} s ago, stop list v{st['stop_list']['version']}"
        )
        return lines


async def stdin_lines() -> AsyncIterator[str]:
    """Lines typed by the operator (stdin), read by a daemon thread so that ``quit`` or
    SIGTERM never waits for a line that will not come."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[str | None] = asyncio.Queue(64)

    def reader() -> None:
        for line in sys.stdin:
            asyncio.run_coroutine_threadsafe(q.put(line), loop).result()
        asyncio.run_coroutine_threadsafe(q.put(None), loop).result()

    threading.Thread(target=reader, name="stdin", daemon=True).start()
    while (line := await q.get()) is not None:
        yield line


def run_terminal(settings: TerminalSettings) -> None:
    """Run until ``quit``, the end of stdin, SIGTERM or SIGINT."""

    async def main() -> None:
        term = Terminal(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, term.stopping.set)
        await term.run(stdin_lines())

    asyncio.run(main())
