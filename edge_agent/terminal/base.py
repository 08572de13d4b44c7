"""What both Linux terminals (stall and warehouse) run alike: :class:`TerminalCore`.

It owns the durable log (:mod:`edge_agent.terminal.log`), the sender
(:mod:`edge_agent.terminal.sender`), the stop list the agent relayed (taken on the MQTT
thread under a lock), the sender's pump, the broker's state, the saved state the
``status`` command reads, the start/run/close lifecycle, the console loop and the
commands every terminal has (``status``, ``help``, ``quit``). Each app supplies its
devices, its commands and its status lines through the hooks below.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from edge_agent.terminal.commands import Command, InputError
from edge_agent.terminal.log import LogFull, TerminalLog, read_status
from edge_agent.terminal.sender import Sender
from edge_agent.terminal.settings import Identity
from wire.envelope import make_record
from wire.settlement import stopped_batches

log = logging.getLogger(__name__)

SYNCED = Path("/run/systemd/timesync/synchronized")
OnMessage = Callable[[dict[str, object]], None]


def time_quality() -> str:
    """``ntp`` when systemd-timesyncd says the clock is synchronised, else ``rtc``."""
    return "ntp" if SYNCED.exists() else "rtc"


def state_line(name: str, state: str, detail: str) -> str:
    """One device's state as the console says it."""
    return f"{name}: {state}" + (f" ({detail})" if detail else "")


class CoreSettings(Protocol):
    """What :class:`TerminalCore` reads of an app's settings."""

    @property
    def identity(self) -> Identity: ...
    @property
    def window(self) -> int: ...
    @property
    def ack_timeout_s(self) -> float: ...
    @property
    def dev(self) -> str: ...
    @property
    def log_path(self) -> Path: ...


S = TypeVar("S", bound=CoreSettings)


class NotRecorded(Exception):
    """The log could not store a record: nothing was made (the message says why)."""


class TerminalCore(Generic[S]):
    name = "terminal"  # the start banner's first word(s)
    stopped_what = "batch(es)"  # what the stop list stops, as the console says it

    def __init__(
        self,
        settings: S,
        log_: TerminalLog,
        counters: dict[str, int],
        out: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
        on_gate: OnMessage | None = None,
    ) -> None:
        self.s = settings
        self.clock = clock
        self._out = out or self._print
        self.log = log_
        self._stop_lock = threading.Lock()
        self.stop_version, self.stopped = self.log.stop_list()
        self.counters = {**counters, "stop_lists_refused": 0}
        self.sender = Sender(
            self.log,
            settings.identity.device,
            settings.identity.broker,
            self._on_stop_list,
            settings.window,
            settings.ack_timeout_s,
            on_gate=on_gate,
        )
        self._broker_up = False
        self._tasks: list[asyncio.Task[None]] = []
        self.stopping = asyncio.Event()

    # -- hooks for each app ------------------------------------------------------------
    def start_devices(self) -> list[asyncio.Task[None]]:
        """Open the app's devices; the tasks that run them (cancelled at close)."""
        return []

    async def close_devices(self) -> None:
        """Close what :meth:`start_devices` opened (its tasks are already cancelled)."""

    def device_states(self) -> dict[str, dict[str, str]]:
        """The app's devices' states (``state``, ``detail``), the broker's added after."""
        return {}

    def tick(self) -> None:
        """One more turn of the pump (about every 50 ms), on the event loop."""

    def parse(self, line: str) -> Command | None:
        raise NotImplementedError

    async def do(self, cmd: Command) -> list[str]:
        """Do one parsed command (the app's own, else :meth:`common`)."""
        return self.common(cmd)

    help = ""  # the console's command list

    def saved(self) -> dict[str, Any]:
        """The app's own entries of the saved state."""
        return {}

    def more_counters(self) -> dict[str, int]:
        """Counters kept elsewhere than :attr:`counters` (devices, the gate)."""
        return {}

    def headline(self) -> str:
        """The first line of ``status``: the work in progress."""
        raise NotImplementedError

    def more_status(self, st: dict[str, Any]) -> list[str]:
        """The last lines of ``status``, from the saved state ``st``."""
        return []

    # -- output ------------------------------------------------------------------------
    @staticmethod
    def _print(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def say(self, line: str) -> None:
        self._out(line)

    def _state_changed(self, device: str, state: str, detail: str) -> None:
        self.say(state_line(device, state, detail))

    # -- stop list (MQTT thread) -------------------------------------------------------
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
        stopped = f"{len(ids)} {self.stopped_what} stopped {' '.join(ids)}".rstrip()
        self.say(f"stop list v{version}: {stopped}")

    def stopped_now(self) -> list[str]:
        with self._stop_lock:
            return list(self.stopped)

    # -- records -----------------------------------------------------------------------
    def store(self, kind: str, body: dict[str, Any], ts: int, *extra: Any) -> int:
        """Sign and store one record made at ``ts`` (ms) with the log's ``extra`` (the
        sale's serial state and receipt); its seq. Raises :class:`NotRecorded`."""
        dev = self.s.identity.device
        tq = time_quality()

        def make(seq: int, boot: int) -> dict[str, Any]:
            return make_record(dev.dev, seq, boot, kind, ts, tq, body, dev.key_for(seq))

        try:
            seq, _ = self.log.append(make, *extra)
        except LogFull as exc:  # every record waits for the gateway: say so, make no new one
            log.error("terminal: %s", exc)
            raise NotRecorded(str(exc)) from None
        except Exception as exc:  # the log could not store it: nothing was made
            log.exception("terminal: storing a %s record failed", kind)
            raise NotRecorded(str(exc)) from None
        return seq

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        self.say(
            f"{self.name} {self.s.dev} boot {self.log.boot}: {self.log.pending()} record(s)"
            f" waiting, last seq {self.log.last_seq}"
        )
        self.sender.start()
        self._tasks = [asyncio.create_task(self._pump(), name="sender")]
        self._tasks += self.start_devices()

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.close_devices()
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
                self.tick()
            except Exception:  # one bad turn never stops the sender
                log.exception("terminal: sender turn failed")
            await asyncio.sleep(0.05)

    # -- state -------------------------------------------------------------------------
    def devices(self) -> dict[str, dict[str, str]]:
        out = self.device_states()
        out["broker"] = {
            "state": "connected" if self.sender.connected else "down",
            "detail": self.sender.link.last_error,
        }
        return out

    def save_state(self) -> None:
        counters: dict[str, Any] = dict(self.sender.snapshot())
        counters.update(self.counters)
        counters.update(self.more_counters())
        self.log.save_state(
            {
                "updated_at": time.time(),
                **self.saved(),
                "devices": self.devices(),
                "counters": counters,
            }
        )

    def status_lines(self) -> list[str]:
        self.save_state()
        st = read_status(self.s.log_path)
        lines = [self.headline()]
        lines += [state_line(n, d["state"], d["detail"]) for n, d in st["devices"].items()]
        lines.append(
            f"log: {st['waiting']} waiting, last seq {st['last_seq']}, "
            f"last ack {st['last_ack_age_s']} s ago, stop list v{st['stop_list']['version']}"
        )
        return lines + self.more_status(st)

    # -- commands ----------------------------------------------------------------------
    async def handle(self, line: str) -> list[str]:
        """Do one operator command; returns what to show. Never raises for bad input."""
        try:
            cmd = self.parse(line)
        except InputError as exc:
            return [f"? {exc}"]
        if cmd is None:
            return []
        return await self.do(cmd)

    def common(self, cmd: Command) -> list[str]:
        """The commands every terminal has: ``status``, ``help``, ``quit``."""
        if cmd.name == "status":
            return self.status_lines()
        if cmd.name == "help":
            return self.help.splitlines()
        self.stopping.set()  # quit
        return ["stopping"]
