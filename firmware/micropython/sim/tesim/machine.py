"""A simulated ``machine`` module over ``tesim.world.WORLD`` (same API subset as the board's)."""

_TYPING = False
if _TYPING:
    from typing import Any, Callable

    from tesim.world import World


def _world() -> "World":
    # imported late: tesim.world needs te.hal, which imports this module as ``machine``
    from tesim import world

    return world.WORLD

PWRON_RESET = 1
WDT_RESET = 3


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id: int, mode: int = -1, pull: "int | None" = None,
                 value: "int | None" = None) -> None:
        self.id = id
        self.mode = mode
        if pull is not None:
            _world().pulls[id] = pull
        if value is not None and mode == Pin.OUT:
            _world().drive(id, value)

    def value(self, v: "int | None" = None) -> int:
        if v is None:
            return _world().read_pin(self.id)
        _world().drive(self.id, 1 if v else 0)
        return 0

    def on(self) -> None:
        self.value(1)

    def off(self) -> None:
        self.value(0)

    def irq(self, handler: "Callable[[Pin], None] | None" = None, trigger: int = 3) -> None:
        _world().irqs[self.id] = (handler, trigger, self)


class UART:
    def __init__(self, id: int, baudrate: int = 9600, **kw: "Any") -> None:
        self.id = id
        self.baudrate = baudrate
        self.kw = kw

    def write(self, buf: bytes) -> int:
        _world().from_host(self.id, bytes(buf))
        return len(buf)

    def read(self, n: int = -1) -> "bytes | None":
        data = _world().host_read(self.id)
        return data if data else None

    def flush(self) -> None:
        """Everything written has left (the simulated line is instant)."""

    def any(self) -> int:
        q = _world().rx.get(self.id) or []
        return sum(len(d) for t, d in q if t <= _world().now)


class SPI:
    def __init__(self, id: int, baudrate: int = 1000000, **kw: "Any") -> None:
        self.id = id

    def _dev(self) -> "Any":
        for d in _world().spi.get(self.id, []):
            if _world().read_pin(d.cs) == 0:
                return d
        return None

    def write(self, buf: bytes) -> None:
        d = self._dev()
        if d is not None:
            d.transfer(bytes(buf))

    def write_readinto(self, out: bytes, into: bytearray) -> None:
        d = self._dev()
        got = d.transfer(bytes(out)) if d is not None else b"\xff" * len(out)
        for i in range(len(into)):
            into[i] = got[i]

    def read(self, n: int, write: int = 0) -> bytes:
        d = self._dev()
        return d.transfer(bytes([write]) * n) if d is not None else b"\xff" * n


class WDT:
    def __init__(self, id: int = 0, timeout: int = 5000) -> None:
        _world().wdt_timeout = timeout
        _world().wdt_fed = _world().now

    def feed(self) -> None:
        _world().wdt_fed = _world().now


class RTC:
    def datetime(self, dt: "tuple[int, ...] | None" = None) -> "tuple[int, ...]":
        import time

        c = _world().clock
        if dt is None:
            t = time.gmtime(c.wall_ms() // 1000)
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        secs = time.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0))
        c.set_wall_ms(secs * 1000 + dt[7] // 1000)
        return dt


class ADC:
    def __init__(self, pin: "Pin | int") -> None:
        self.id = pin.id if isinstance(pin, Pin) else pin

    def read_u16(self) -> int:
        return _world().adc.get(self.id, 0)


def reset_cause() -> int:
    return PWRON_RESET


def reset() -> None:
    from tesim.world import WatchdogReset

    raise WatchdogReset("machine.reset()")


def unique_id() -> bytes:
    return b"\x00\x11\x22\x33\x44\x55"
