"""The terminal's main loop: one ``poll`` drives link, sender, gate, app and health.

Everything is polled (no threads, no blocking calls), so the same code runs on the board
(``run``), under the simulator's virtual clock (tests call ``poll``) and under
``asyncio`` in the WebAssembly interpreter (``run_async``, which yields to JavaScript so
a Node socket can move the bytes). A subsystem that raises is counted and skipped; its
heartbeat is not renewed, so a subsystem that keeps failing stops the watchdog feed.
"""

import gc
import json

from te.flashlog import FlashLog
from te.gate import GateClient
from te.health import Health
from te.recorder import Ids, Recorder
from te.sender import Sender
from te.timekeeper import TimeKeeper

_TYPING = False
if _TYPING:
    from typing import Any, Callable

    from te.channel import Channel
    from te.config import Identity, Section
    from te.fs import FS
    from te.hal import Board

GC_EVERY_MS = 5000
MESSAGES = 16


class App:
    """Base of the three apps."""

    name = "app"

    def __init__(self, rt: "Runtime", cfg: "Section") -> None:
        self.rt = rt
        self.cfg = cfg

    def poll(self, now: int) -> None:
        pass

    def on_cmd(self, msg: "dict[str, Any]", payload: bytes) -> None:
        """A command on ``t/{dev}/cmd`` other than a gate answer: ``msg`` is parsed but not
        verified (for dispatch only); an app that takes commands unseals ``payload``
        itself (``wire.auth``) before acting on it. This one takes none: counted."""
        self.rt.count("cmd")

    def healthy(self) -> bool:
        return True


class Runtime:
    def __init__(
        self,
        board: "Board",
        ident: "Identity",
        cfg: "Section",
        fs: "FS",
        channel: "Channel | None" = None,
        app: "Callable[[Runtime, Section], App] | None" = None,
        root: str = "",
    ) -> None:
        self.board = board
        self.clock = board.clock
        self.ident = ident
        self.fs = fs
        lc = cfg.sub("log", False)
        self.log = FlashLog(
            fs,
            root + "/log",
            lc.num("seg_bytes", 16384, 512, 1 << 20),
            lc.num("max_bytes", 262144, 2048, 1 << 26),
            lc.num("reserve", 32768, 0, 1 << 26),
        )
        self.log.open()
        fs.mkdir(root + "/state")
        self.state_dir = root + "/state"
        self.ids = Ids(fs, root + "/state/ids.json")
        self.time = TimeKeeper(self.clock)
        self.rec = Recorder(ident.dev, ident.keys, self.log, self.ids, self.time)
        self.wifi: "Any" = None
        self.ntp: "Any" = None
        self.channel = channel if channel is not None else self._channel(ident)
        self.channel.on_cmd = self._on_cmd
        sc = cfg.sub("sender", False)
        self.sender = Sender(
            self.log,
            self.channel,
            self.clock,
            ident.dev,
            ident.keys.recent,
            sc.num("window", 8, 1, 64),
            sc.num("ack_timeout_ms", 10000, 200, 600000),
        )
        self.gate = GateClient(
            self.channel, self.clock, self.rec.boot, ident.dev, ident.keys.recent
        )
        hc = cfg.sub("health", False)
        self.health = Health(
            self.clock,
            board.watchdog(hc.num("wdt_ms", 8000, 1000, 120000)),
            hc.num("every_ms", 1000, 100, 60000),
            hc.num("stale_ms", 10000, 500, 120000),
            hc.num("min_free", 8192, 0, 1 << 20),
        )
        self.health.add("flash", lambda: self.rec.io_errors < 3)
        self.messages: "list[str]" = []
        self.errors: "dict[str, int]" = {}
        self.last_gc = self.clock.ticks_ms()
        name = cfg.text("app")
        if app is None:
            mod = __import__(name)
            app = mod.App
        assert app is not None
        self.app = app(self, cfg.sub(name, False))
        self.health.add("app", self.app.healthy)

    def _channel(self, ident: "Identity") -> "Channel":
        lk = ident.link
        if lk.kind == "serial":
            from te.slink import SerialChannel

            return SerialChannel(
                self.board.link_uart(lk.uart), self.clock, lk.rto_ms, lk.bus_addr, lk.silence_ms
            )
        from te.mqttlink import MqttChannel
        from te.net import NtpSync, SocketTransport, Wifi

        if lk.wifi_ssid:
            self.wifi = Wifi(lk.wifi_ssid, lk.wifi_password, self.clock)
        if lk.ntp:
            self.ntp = NtpSync(lk.ntp, self.time, self.clock)
        return MqttChannel(
            SocketTransport(self.wifi),
            self.clock,
            ident.dev,
            lk.host,
            lk.port,
            lk.prefix,
            lk.keepalive_s,
            user=lk.user,
            password=lk.password,
            backoff_min_ms=lk.backoff_min_ms,
            backoff_max_ms=lk.backoff_max_ms,
        )

    # -- operator display ---------------------------------------------------------
    def say(self, text: str) -> None:
        self.messages.append(text)
        if len(self.messages) > MESSAGES:
            self.messages.pop(0)
        print("[%s] %s" % (self.ident.dev, text))

    # -- commands from the gateway ------------------------------------------------
    def _on_cmd(self, payload: bytes) -> None:
        try:
            msg = json.loads(payload)
        except ValueError:
            self.count("cmd")
            return
        if not isinstance(msg, dict):
            self.count("cmd")
            return
        if msg.get("t") == "gate":
            self.gate.on_answer(msg)
        else:
            self.app.on_cmd(msg, payload)

    def count(self, what: str) -> int:
        """Count one more ``what`` in ``errors``, the terminal's error counters."""
        n = self.errors.get(what, 0) + 1
        self.errors[what] = n
        return n

    def _error(self, what: str, exc: Exception) -> None:
        n = self.count(what)
        if n == 1 or n % 100 == 0:
            self.say("%s error (%d so far): %r" % (what, n, exc))

    # -- the loop -------------------------------------------------------------------
    def poll(self) -> None:
        now = self.clock.ticks_ms()
        try:
            if self.wifi is not None:
                self.wifi.poll(now)
                if self.ntp is not None:
                    self.ntp.poll(now, self.wifi.up())
            self.channel.poll(now)
            self.sender.poll(now)
            self.gate.poll(now)
            self.health.beat("link", now)
        except Exception as exc:  # counted; the stale beat stops the watchdog feed
            self._error("link", exc)
        try:
            self.app.poll(now)
            self.health.beat("app", now)
        except Exception as exc:
            self._error("app", exc)
        if self.clock.diff(now, self.last_gc) >= GC_EVERY_MS:
            self.last_gc = now
            gc.collect()
        self.health.poll(now)

    def run(self, period_ms: int = 10) -> None:
        while True:
            self.poll()
            self.clock.sleep_ms(period_ms)

    async def run_async(self, stop: "Callable[[], bool]", period_ms: int = 10) -> None:
        import asyncio

        while not stop():
            self.poll()
            await asyncio.sleep_ms(period_ms)


def boot() -> None:
    """``main.py``: load the config, build the board and run the app named in it."""
    from te.config import ConfigError, load, load_identity
    from te.fs import FS
    from te.hal import Board

    fs = FS()
    try:
        ident = load_identity(fs, "/config.json")
        cfg = load(fs, "/app.json")
        rt = Runtime(Board(cfg.obj("hw")), ident, cfg, fs)
    except ConfigError as exc:
        print("CONFIG ERROR:", exc)
        return
    rt.say("boot %d, %s up, %d records waiting" % (rt.rec.boot, cfg.text("app"),
                                                   rt.log.pending()))
    rt.run()
