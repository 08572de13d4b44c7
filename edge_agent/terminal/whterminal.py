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
import logging
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from drivers.codecs import barcode
from drivers.codecs.errors import CodecError
from drivers.codecs.itemcodes import parse_item, parse_scan
from edge_agent.terminal.console import Command, InputError
from edge_agent.terminal.desk import Desk
from edge_agent.terminal.dispatch import DispatchClient
from edge_agent.terminal.log import LogFull, TerminalLog, read_status
from edge_agent.terminal.sender import Sender
from edge_agent.terminal.terminal import stdin_lines, time_quality
from edge_agent.terminal.whconsole import HELP, parse
from edge_agent.terminal.whdevices import Scanner, TagReader
from edge_agent.terminal.whsettings import WarehouseSettings
from wire.envelope import make_record
from wire.goods_records import DISPATCH
from wire.settlement import stopped_batches

log = logging.getLogger(__name__)


def typed_item(text: str) -> dict[str, object]:
    """A code the operator typed: as scanned, else as a tag's EPC (hex)."""
    try:
        return parse_item(text, "scan")
    except CodecError as first:
        try:
            return parse_item(text, "epc")
        except CodecError:
            raise first from None


class WarehouseTerminal:
    def __init__(
        self,
        settings: WarehouseSettings,
        out: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.s = settings
        self.clock = clock
        self._out = out or self._print
        self.log = TerminalLog(settings.log_path, settings.log_max_bytes)
        self.desk = Desk(settings, self.log.boot)
        self._stop_lock = threading.Lock()
        self.stop_version, self.stopped = self.log.stop_list()
        self.counters = {"records": 0, "reads": 0, "bad_reads": 0, "stop_lists_refused": 0}
        dev = settings.identity.device
        self.sender = Sender(
            self.log,
            dev,
            settings.identity.broker,
            self._on_stop_list,
            settings.window,
            settings.ack_timeout_s,
            on_gate=self._on_gate,
        )
        self.gate = DispatchClient(dev, self.sender.send_dispatch, self.log.boot)
        self.reader: TagReader | None = None
        self.scanner: Scanner | None = None
        self.asking = False
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

    # -- from the MQTT thread ----------------------------------------------------------
    def _on_gate(self, msg: dict[str, object]) -> None:
        self.gate.on_answer(msg)

    def _on_stop_list(self, msg: dict[str, object]) -> None:
        with self._stop_lock:
            ids = stopped_batches(msg, self.stop_version)
            if ids is None:
                self.counters["stop_lists_refused"] += 1
                return
            version = msg["version"]
            assert isinstance(version, int)
            self.log.save_stop_list(version, ids)
            self.stop_version, self.stopped = version, ids
        self.say(f"stop list v{version}: {len(ids)} lot(s) stopped {' '.join(ids)}".rstrip())

    def stopped_now(self) -> list[str]:
        with self._stop_lock:
            return list(self.stopped)

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        s = self.s
        self.say(
            f"warehouse terminal {s.dev} boot {self.log.boot}: {self.log.pending()} record(s)"
            f" waiting, last seq {self.log.last_seq}"
        )
        self.sender.start()
        self._tasks = [asyncio.create_task(self._pump(), name="sender")]
        if s.reader is not None:
            self.reader = TagReader(s.reader, self._state_changed, self.tag)
            self._tasks.append(asyncio.create_task(self.reader.run(), name="reader"))
        if s.scanner is not None:
            self.scanner = Scanner(s.scanner, self._state_changed, self.scan)
            self._tasks.append(asyncio.create_task(self.scanner.run(), name="scanner"))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for d in (self.reader, self.scanner):
            if d is not None:
                with contextlib.suppress(Exception):
                    await d.close()
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
            except Exception:  # one bad turn never stops the sender
                log.exception("terminal: sender turn failed")
            await asyncio.sleep(0.05)

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
        dev = self.s.identity.device
        ts = int(self.clock() * 1000)
        tq = time_quality()

        def make(seq: int, boot: int) -> dict[str, Any]:
            return make_record(dev.dev, seq, boot, kind, ts, tq, body, dev.key_for(seq))

        try:
            seq, _ = self.log.append(make)
        except LogFull as exc:
            log.error("terminal: %s", exc)
            self.say(f"NOT RECORDED: {exc}")
            return False
        except Exception as exc:  # the log could not store it: nothing was made
            log.exception("terminal: storing a record failed")
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
    async def handle(self, line: str) -> list[str]:
        """Do one operator command; returns what to show. Never raises for bad input."""
        try:
            cmd = parse(line)
        except InputError as exc:
            return [f"? {exc}"]
        if cmd is None:
            return []
        if self.asking and cmd.name not in ("status", "help"):
            return ["waiting for the gateway's answer"]
        return await self._do(cmd)

    async def _do(self, cmd: Command) -> list[str]:
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
        if cmd.name == "status":
            return self.status_lines()
        if cmd.name == "help":
            return HELP.splitlines()
        self.stopping.set()  # quit
        return ["stopping"]

    # -- state -------------------------------------------------------------------------
    def devices(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for d in (self.reader, self.scanner):
            if d is not None:
                out[d.name] = {"state": d.state, "detail": d.detail}
        out["broker"] = {
            "state": "connected" if self.sender.connected else "down",
            "detail": self.sender.link.last_error,
        }
        return out

    def save_state(self) -> None:
        counters: dict[str, Any] = dict(self.sender.snapshot())
        counters.update(self.counters)
        counters.update(self.gate.snapshot())
        if self.reader is not None:
            counters.update(reader_rounds=self.reader.rounds, reader_bad=self.reader.bad)
        if self.scanner is not None:
            counters.update(scans=self.scanner.scans, scanner_bad=self.scanner.bad)
        self.log.save_state(
            {
                "updated_at": time.time(),
                "app": "warehouse",
                "desk": self.desk.describe(),
                "devices": self.devices(),
                "counters": counters,
            }
        )

    def status_lines(self) -> list[str]:
        self.save_state()
        st = read_status(self.s.log_path)
        lines = [f"now: {self.desk.describe()}"]
        for name, d in st["devices"].items():
            lines.append(f"{name}: {d['state']}" + (f" ({d['detail']})" if d["detail"] else ""))
        lines.append(
            f"log: {st['waiting']} waiting, last seq {st['last_seq']}, "
            f"last ack {st['last_ack_age_s']} s ago, stop list v{st['stop_list']['version']}"
        )
        c = st["counters"]
        lines.append(
            "counters: "
            + " ".join(
                f"{k}={c.get(k, 0)}"
                for k in (
                    "records", "reads", "bad_reads", "dispatch_asked", "dispatch_timeouts",
                    "dispatch_forged", "forged_acks", "commands_refused",
                )
            )
        )  # fmt: skip
        return lines


def run_warehouse(settings: WarehouseSettings) -> None:
    """Run until ``quit``, the end of stdin, SIGTERM or SIGINT."""

    async def main() -> None:
        term = WarehouseTerminal(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, term.stopping.set)
        await term.run(stdin_lines())

    asyncio.run(main())
