"""Hardware abstraction: the only module that imports ``machine``; quirks in one table.

``Board`` builds peripherals by *name* from the ``hw`` section of ``app.json``::

    {"pins": {"door": 4, "alarm": {"pin": 27, "active_low": true, "pull": "up"}},
     "uart": {"scale": {"id": 1, "baud": 9600, "tx": 17, "rx": 16}},
     "spi": {"rfid": {"id": 1, "baud": 1000000, "sck": 18, "mosi": 23, "miso": 19,
                      "cs": 5, "rst": 22}},
     "adc": {"residual": {"pin": 34, "zero": 6500, "full": 58000, "full_kpa": 2500}}}

so apps never see pin numbers. ``Clock`` is the time seam: the simulator swaps in a
virtual clock, everything else asks ``board.clock``. ``random_hex`` is the one source of
unpredictable bytes (nonces).
"""

import os
import random
import sys
import time
from binascii import hexlify

import machine
from micropython import const

_TYPING = False
if _TYPING:
    from typing import Any

_UNIX_2000 = const(946684800)

# Platform quirks, in one place. Keys:
#   rename_replaces  os.rename() atomically replaces an existing file (littlefs: yes;
#                    FAT: no, the target must be removed first)
#   uart_pins        how UART takes tx/rx: "int" (esp32), "pin" (rp2: Pin objects),
#                    "none" (fixed pins: stm32, the simulator ignores them too)
#   wdt_max_ms       the longest watchdog timeout the port accepts
QUIRKS: "dict[str, dict[str, Any]]" = {
    "esp32": {"rename_replaces": True, "uart_pins": "int", "wdt_max_ms": 60000},
    "rp2": {"rename_replaces": True, "uart_pins": "pin", "wdt_max_ms": 8388},
    "pyboard": {"rename_replaces": False, "uart_pins": "none", "wdt_max_ms": 32000},
    "webassembly": {"rename_replaces": True, "uart_pins": "int", "wdt_max_ms": 60000},
    "linux": {"rename_replaces": True, "uart_pins": "int", "wdt_max_ms": 60000},
}
QUIRK = QUIRKS.get(sys.platform, QUIRKS["esp32"])

# Some ports count time.time() from 2000-01-01: detect it instead of listing ports.
EPOCH_OFFSET_MS = 0 if time.gmtime(0)[0] == 1970 else _UNIX_2000 * 1000

# Unpredictable bytes: os.urandom (the hardware RNG: esp32, rp2, stm32) where the port has
# it, else the random module seeded from the port's hardware source (random.seed() with
# no argument; webassembly: the host's crypto). A port with neither gets no nonces at all:
# a fill-gate request cannot be made there, so nothing is filled.
_urandom = getattr(os, "urandom", None)
_seeded = True
if _urandom is None:
    try:
        random.seed()
    except ValueError:
        _seeded = False


class HalError(Exception):
    """A peripheral named in the config is missing or malformed, or the port has no source
    of unpredictable bytes. Retrying will not help."""


def random_hex(n: int) -> str:
    """``n`` unpredictable bytes as ``2n`` lower-case hex digits."""
    if _urandom is not None:
        raw = _urandom(n)
    elif _seeded:
        raw = bytes(random.getrandbits(8) for _ in range(n))
    else:
        raise HalError("no hardware random source on this port")
    return hexlify(raw).decode()


class Clock:
    """Monotonic ticks (wrapping, compare with ``diff``) and wall time in ms since 1970."""

    def ticks_ms(self) -> int:
        return time.ticks_ms()

    def diff(self, a: int, b: int) -> int:
        """``a - b`` in ticks, correct across wrap-around."""
        return time.ticks_diff(a, b)

    def add(self, a: int, ms: int) -> int:
        return time.ticks_add(a, ms)

    def sleep_ms(self, ms: int) -> None:
        time.sleep_ms(ms)

    def wall_ms(self) -> int:
        return time.time_ns() // 1000000 + EPOCH_OFFSET_MS

    def set_wall_ms(self, ms: int) -> None:
        """Set the RTC (UTC) to ``ms`` since 1970."""
        t = time.gmtime((ms - EPOCH_OFFSET_MS) // 1000)
        machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], (ms % 1000) * 1000))


class In:
    """A digital input; ``on()`` is the logical level (``active_low`` inverts)."""

    __slots__ = ("pin", "inv")

    def __init__(self, pin: machine.Pin, inv: bool) -> None:
        self.pin = pin
        self.inv = inv

    def on(self) -> bool:
        return bool(self.pin.value()) != self.inv


class Out:
    """A digital output; ``set(True)`` drives the active level."""

    __slots__ = ("pin", "inv", "state")

    def __init__(self, pin: machine.Pin, inv: bool) -> None:
        self.pin = pin
        self.inv = inv
        self.state = False
        self.set(False)

    def set(self, on: bool) -> None:
        self.state = on
        self.pin.value(1 if on != self.inv else 0)


class HalfDuplex:
    """A UART behind an RS-485 transceiver: the driver is enabled only while this station
    writes (``flush`` waits until the last bit has left), so the bus is free for the
    others the rest of the time. Reads pass through."""

    __slots__ = ("uart", "de")

    def __init__(self, uart: machine.UART, de: Out) -> None:
        self.uart = uart
        self.de = de

    def write(self, buf: bytes) -> int:
        self.de.set(True)
        try:
            n = self.uart.write(buf)
            self.uart.flush()
        finally:
            self.de.set(False)
        return n or 0

    def read(self) -> "bytes | None":
        return self.uart.read()


class Analog:
    """An ADC input scaled linearly: raw ``zero`` -> 0, raw ``full`` -> ``full_units``."""

    __slots__ = ("adc", "zero", "full", "units")

    def __init__(self, adc: machine.ADC, zero: int, full: int, units: int) -> None:
        self.adc = adc
        self.zero = zero
        self.full = full
        self.units = units

    def read(self) -> int:
        raw = self.adc.read_u16()
        if raw <= self.zero:
            return 0
        return (raw - self.zero) * self.units // (self.full - self.zero)


def _spec(section: "dict[str, Any]", name: str, what: str) -> "dict[str, Any]":
    spec = section.get(name)
    if spec is None:
        raise HalError("hw.%s.%s is not configured" % (what, name))
    if isinstance(spec, int):
        return {"pin": spec}
    if not isinstance(spec, dict):
        raise HalError("hw.%s.%s must be a pin number or an object" % (what, name))
    return spec


def _int(spec: "dict[str, Any]", key: str, name: str, default: "int | None" = None) -> int:
    v = spec.get(key, default)
    if not isinstance(v, int):
        raise HalError("hw %s: %s must be an integer" % (name, key))
    return v


class Board:
    """Peripherals by name from the ``hw`` config; one instance per run."""

    def __init__(self, hw: "dict[str, Any]", clock: "Clock | None" = None) -> None:
        self.hw = hw
        self.clock = clock if clock is not None else Clock()
        self._wdt: "machine.WDT | None" = None

    def _pin(self, name: str) -> "tuple[int, dict[str, Any]]":
        spec = _spec(self.hw.get("pins", {}), name, "pins")
        return _int(spec, "pin", name), spec

    def has(self, section: str, name: str) -> bool:
        return name in self.hw.get(section, {})

    def input(self, name: str) -> In:
        n, spec = self._pin(name)
        pull = spec.get("pull")
        if pull == "up":
            pin = machine.Pin(n, machine.Pin.IN, machine.Pin.PULL_UP)
        elif pull == "down":
            pin = machine.Pin(n, machine.Pin.IN, machine.Pin.PULL_DOWN)
        else:
            pin = machine.Pin(n, machine.Pin.IN)
        return In(pin, bool(spec.get("active_low", False)))

    def output(self, name: str) -> Out:
        n, spec = self._pin(name)
        return Out(machine.Pin(n, machine.Pin.OUT), bool(spec.get("active_low", False)))

    def raw_pin(self, n: int, out: bool, pull_up: bool = False) -> machine.Pin:
        if out:
            return machine.Pin(n, machine.Pin.OUT)
        if pull_up:
            return machine.Pin(n, machine.Pin.IN, machine.Pin.PULL_UP)
        return machine.Pin(n, machine.Pin.IN)

    def uart(self, name: str) -> machine.UART:
        spec = _spec(self.hw.get("uart", {}), name, "uart")
        uid = _int(spec, "id", name)
        parity = spec.get("parity")
        kw: "dict[str, Any]" = {
            "baudrate": _int(spec, "baud", name, 9600),
            "bits": _int(spec, "bits", name, 8),
            "parity": None if parity is None else int(parity),
            "stop": _int(spec, "stop", name, 1),
            "timeout": 0,
            "rxbuf": _int(spec, "rxbuf", name, 1024),
        }
        style = QUIRK["uart_pins"]
        if style != "none" and "tx" in spec:
            tx, rx = _int(spec, "tx", name), _int(spec, "rx", name)
            kw["tx"] = machine.Pin(tx) if style == "pin" else tx
            kw["rx"] = machine.Pin(rx) if style == "pin" else rx
        return machine.UART(uid, **kw)

    def link_uart(self, name: str) -> "machine.UART | HalfDuplex":
        """The UART to the gateway. With ``"de": pin`` in its spec (``"de_active_low"``
        optional) it drives an RS-485 transceiver's driver enable around each write."""
        uart = self.uart(name)
        spec = _spec(self.hw.get("uart", {}), name, "uart")
        if "de" not in spec:
            return uart
        pin = machine.Pin(_int(spec, "de", name), machine.Pin.OUT)
        return HalfDuplex(uart, Out(pin, bool(spec.get("de_active_low", False))))

    def spi(self, name: str) -> "tuple[machine.SPI, Out, Out | None]":
        """The bus, its chip select (active low) and an optional reset line."""
        spec = _spec(self.hw.get("spi", {}), name, "spi")
        bus = machine.SPI(
            _int(spec, "id", name),
            baudrate=_int(spec, "baud", name, 1000000),
            polarity=0,
            phase=0,
            sck=machine.Pin(_int(spec, "sck", name)),
            mosi=machine.Pin(_int(spec, "mosi", name)),
            miso=machine.Pin(_int(spec, "miso", name)),
        )
        cs = Out(machine.Pin(_int(spec, "cs", name), machine.Pin.OUT), True)
        rst = None
        if "rst" in spec:
            rst = Out(machine.Pin(_int(spec, "rst", name), machine.Pin.OUT), True)
        return bus, cs, rst

    def analog(self, name: str) -> Analog:
        spec = _spec(self.hw.get("adc", {}), name, "adc")
        adc = machine.ADC(machine.Pin(_int(spec, "pin", name)))
        zero = _int(spec, "zero", name, 0)
        full = _int(spec, "full", name, 65535)
        if full <= zero:
            raise HalError("hw adc %s: full must be above zero" % name)
        return Analog(adc, zero, full, _int(spec, "full_units", name, 65535))

    def watchdog(self, timeout_ms: int) -> machine.WDT:
        if self._wdt is None:
            self._wdt = machine.WDT(timeout=min(timeout_ms, int(QUIRK["wdt_max_ms"])))
        return self._wdt

    def reset_cause(self) -> int:
        return machine.reset_cause()

    def reset(self) -> None:
        machine.reset()
