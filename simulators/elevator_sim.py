"""An elevator controller as a Modbus server (pymodbus), driven by a small car model.

The register map is the one of :mod:`drivers.codecs.modbus_elevator`: ``COUNT`` holding
registers from ``START``, read-only, filled with :func:`encode_status` of the car model at
each read. Serve it over TCP (:meth:`ElevatorSimulator.start_tcp`, the URL is
``tcp://HOST:PORT``) or as Modbus RTU on a pty (:meth:`ElevatorSimulator.start_pty`, a path
such as ``/dev/pts/7`` that a serial client opens like a real RS-485 adapter).

The car model (:class:`CarModel`) is a time-stepped state machine: landing calls are
served nearest-first in the direction of travel; the car runs at rated speed between
floors (``floor_time`` seconds per floor), stops at the called floor, opens its doors
(``door_time``), dwells (``dwell_time``) and closes them. ``door_zone`` is true within
``zone`` floors of a landing. Counters: ``runs`` (each completed run), ``door_cycles``
(each open-close cycle), ``run_hours`` (motor running time, plus ``run_hours`` given at
construction). With ``auto=True`` the car gets a random call whenever it has been idle
for ``idle_time``.

Faults, injected at run time (:meth:`CarModel.inject`, cleared by :meth:`clear_faults`):

``door_open_while_moving``
    while the car runs its doors read ``open`` and the fault code is 1 (door lock
    circuit open while running).
``stop_outside_door_zone``
    the next time the car is running outside a door zone it stops dead there (running
    0, door zone 0, fault 10) until the fault is cleared; then it carries on.
``overspeed``
    while running the speed reads 130 % of rated and the fault code is 4 (governor).
``fault`` (:meth:`CarModel.set_fault`)
    any controller fault code, reported as is (it wins over the codes above).

Power loss is the server's business: :meth:`ElevatorSimulator.power_off` stops answering
(the TCP listener and its connections close, the pty stays open but silent) and freezes
the car; :meth:`ElevatorSimulator.power_on` serves again on the same port or pty.
:meth:`ElevatorSimulator.silence` keeps connections open but never answers (a hung
controller or a dead gateway behind a live TCP socket).
:meth:`ElevatorSimulator.answer_exception` answers with a Modbus exception code and
:meth:`ElevatorSimulator.override` serves raw register values (say, out of the map).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import threading
import time
import tty
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.base import ModbusBaseServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.codecs.modbus_elevator import COUNT, START, encode_status

FAULT_DOOR_LOCK = 1
FAULT_OVERSPEED = 4
FAULT_OUTSIDE_ZONE = 10
INJECTABLE = ("door_open_while_moving", "stop_outside_door_zone", "overspeed")

T = TypeVar("T")


@dataclass(frozen=True)
class CarConfig:
    lowest: int = -1
    highest: int = 10
    floor_time: float = 1.0  # seconds to travel one floor at rated speed
    door_time: float = 0.5  # seconds for the doors to open, and to close
    dwell_time: float = 1.0  # seconds the doors stay open
    idle_time: float = 1.0  # auto mode: seconds idle before the next random call
    rated_speed_mm_s: int = 1000
    zone: float = 0.1  # half-width of a door zone, in floors

    def __post_init__(self) -> None:
        if self.lowest >= self.highest:
            raise ValueError(f"lowest floor {self.lowest} must be below highest {self.highest}")
        for name in ("floor_time", "door_time", "dwell_time", "idle_time"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if not 0 < self.zone < 0.5:
            raise ValueError("zone must be between 0 and 0.5 floors")


class CarModel:
    """The car: position, doors, calls, counters and injected faults; :meth:`advance` it."""

    def __init__(
        self,
        config: CarConfig | None = None,
        floor: int = 0,
        runs: int = 0,
        door_cycles: int = 0,
        run_hours: int = 0,
        auto: bool = False,
        seed: int | None = None,
    ) -> None:
        self.config = config or CarConfig()
        self._check_floor(floor)
        self.position = float(floor)
        self.direction = "idle"
        self.door = "closed"
        self.running = False
        self.runs = runs
        self.door_cycles = door_cycles
        self.base_run_hours = run_hours
        self.run_seconds = 0.0
        self.calls: set[int] = set()
        self.auto = auto
        self.rng = random.Random(seed)
        self.fault_code = 0  # set by set_fault(); 0 = derive from the injected faults
        self.faults: set[str] = set()
        self.halted = False
        self._timer = 0.0  # time left in the current door phase / idle wait
        self._target: int | None = None

    # -- commands --------------------------------------------------------------------------

    def _check_floor(self, floor: int) -> None:
        if not self.config.lowest <= floor <= self.config.highest:
            raise ValueError(f"floor {floor} outside {self.config.lowest}..{self.config.highest}")

    def call(self, floor: int) -> None:
        """A landing call to ``floor``."""
        self._check_floor(floor)
        self.calls.add(floor)

    def inject(self, fault: str) -> None:
        if fault not in INJECTABLE:
            raise ValueError(f"unknown fault {fault!r} (one of {', '.join(INJECTABLE)})")
        self.faults.add(fault)

    def set_fault(self, code: int) -> None:
        if not 0 <= code <= 0xFFFF:
            raise ValueError(f"fault code {code} not in 0..65535")
        self.fault_code = code

    def clear_faults(self) -> None:
        self.faults.clear()
        self.fault_code = 0
        self.halted = False

    # -- state -----------------------------------------------------------------------------

    @property
    def floor(self) -> int:
        return math.floor(self.position + 0.5)

    @property
    def door_zone(self) -> bool:
        return abs(self.position - round(self.position)) <= self.config.zone + 1e-9

    @property
    def run_hours(self) -> int:
        return min(0xFFFF, self.base_run_hours + int(self.run_seconds // 3600))

    def status(self) -> dict[str, object]:
        """What the controller reports, in the shape of ``decode_status``."""
        moving = self.running and not self.halted
        door = self.door
        speed = self.config.rated_speed_mm_s if moving else 0
        code = 0
        if moving and "door_open_while_moving" in self.faults:
            door, code = "open", FAULT_DOOR_LOCK
        if moving and "overspeed" in self.faults:
            speed, code = self.config.rated_speed_mm_s * 13 // 10, FAULT_OVERSPEED
        if self.halted:
            code = FAULT_OUTSIDE_ZONE
        if self.fault_code:
            code = self.fault_code
        return {
            "floor": self.floor,
            "direction": self.direction if moving else "idle",
            "door": door,
            "door_zone": self.door_zone,
            "running": moving,
            "fault_code": code,
            "speed_mm_s": speed,
            "runs": self.runs & 0xFFFFFFFF,
            "door_cycles": self.door_cycles & 0xFFFFFFFF,
            "run_hours": self.run_hours,
        }

    def registers(self) -> list[int]:
        return encode_status(self.status())

    # -- time ------------------------------------------------------------------------------

    def advance(self, dt: float) -> None:
        """Let ``dt`` seconds pass."""
        for _ in range(1000):  # each step ends a phase or uses up dt
            if dt <= 1e-9:
                return
            dt = self._step(dt)

    def _step(self, dt: float) -> float:
        c = self.config
        if self.halted:
            return 0.0
        if self.door in ("opening", "open", "closing"):
            used = min(dt, self._timer)
            self._timer -= used
            if self._timer <= 1e-9:
                if self.door == "opening":
                    self.door, self._timer = "open", c.dwell_time
                elif self.door == "open":
                    self.door, self._timer = "closing", c.door_time
                else:
                    self.door, self._timer = "closed", 0.0
                    self.door_cycles += 1
            return dt - used
        if self.running:
            return self._move(dt)
        target = self._next_target()
        if target is None:
            if not self.auto:
                return 0.0
            used = min(dt, self.config.idle_time - self._timer)
            self._timer += used
            if self._timer >= self.config.idle_time - 1e-9:
                self._timer = 0.0
                choices = [f for f in range(c.lowest, c.highest + 1) if f != self.floor]
                self.calls.add(self.rng.choice(choices))
            return dt - used
        if target == self.floor and self.door_zone:
            self.calls.discard(target)
            self.position = float(target)
            self.door, self._timer = "opening", c.door_time
            return dt
        self._target = target
        self.running = True
        self.direction = "up" if target > self.position else "down"
        return dt

    def _next_target(self) -> int | None:
        if not self.calls:
            return None
        pos = self.position
        ahead = [f for f in self.calls if (f > pos if self.direction != "down" else f < pos)]
        if self.direction != "idle" and ahead:
            return min(ahead, key=lambda f: abs(f - pos))
        return min(self.calls, key=lambda f: (abs(f - pos), f))

    def _move(self, dt: float) -> float:
        c = self.config
        sign = 1.0 if self.direction == "up" else -1.0
        # A call further on but nearer than the target is served on the way.
        reach = (self._target_or_here() - self.position) * sign
        nearer = [f for f in self.calls if 0 < (f - self.position) * sign < reach]
        if nearer:
            self._target = min(nearer, key=lambda f: abs(f - self.position))
        target = self._target_or_here()
        speed = 1.0 / c.floor_time  # floors per second
        needed = abs(target - self.position) / speed
        used = min(dt, needed)
        self.position += sign * speed * used
        self.run_seconds += used
        if "stop_outside_door_zone" in self.faults and not self.door_zone:
            self.halted = True  # stops dead between floors
            return dt - used
        if used >= needed - 1e-9:
            self.position = float(target)
            self.running = False
            self.direction = "idle"
            self.runs += 1
            self.calls.discard(target)
            self._target = None
            self.door, self._timer = "opening", c.door_time
        return dt - used

    def _target_or_here(self) -> int:
        return self._target if self._target is not None else self.floor


class _PtyTransport(asyncio.Transport):
    """The master side of a pty as an asyncio transport for pymodbus's serial server.

    Closing it stops reading and writing but leaves the pty open: the client's device path
    stays valid across a power cut, as a real serial line does.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, protocol: Any) -> None:
        super().__init__()
        self._loop = loop
        self._fd = fd
        self._protocol = protocol
        self._out = bytearray()
        self._closing = False

    def setup(self) -> None:
        self._loop.add_reader(self._fd, self._read_ready)
        self._loop.call_soon(self._protocol.connection_made, self)

    def _read_ready(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # EIO while nobody has the slave open: nothing to read
        if data and not self._closing:
            self._protocol.data_received(data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        self._out += data
        self._write_ready()

    def _write_ready(self) -> None:
        try:
            n = os.write(self._fd, self._out)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            self._out.clear()
            n = 0
        del self._out[:n]
        if self._out:
            self._loop.add_writer(self._fd, self._write_ready)
        else:
            self._loop.remove_writer(self._fd)

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        self._loop.remove_writer(self._fd)
        self._out.clear()

    def is_closing(self) -> bool:
        return self._closing

    def abort(self) -> None:
        self.close()

    def get_write_buffer_size(self) -> int:
        return len(self._out)


class _PtyServer(ModbusSerialServer):
    """pymodbus's RTU server, on the master side of our pty instead of a device path."""

    def __init__(self, devices: list[SimDevice], fd: int, **kw: Any) -> None:
        super().__init__(devices, framer=FramerType.RTU, port=f"pty-fd-{fd}", **kw)
        self._fd = fd
        self.call_create = self._create

    async def _create(self) -> tuple[asyncio.Transport, Any]:
        protocol = self.handle_new_connection()
        transport = _PtyTransport(self.loop, self._fd, protocol)
        self.loop.call_soon(transport.setup)
        return transport, protocol


class ElevatorSimulator:
    """The controller: a car model and a Modbus server in a thread of its own.

    Thread-safe; use as a context manager or call :meth:`stop`.
    """

    def __init__(self, model: CarModel | None = None, unit: int = 1, tick: float = 0.05) -> None:
        self.model = model or CarModel()
        self.unit = unit
        self.tick = tick
        self.lock = threading.Lock()
        self.url: str | None = None
        self.requests = 0
        self._mode: str | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._master: int | None = None
        self._slave: int | None = None
        self._server: ModbusBaseServer | None = None
        self._silent = False
        self._powered = False
        self._exception: int | None = None
        self._override: list[int] | None = None
        self._loop = asyncio.new_event_loop()
        self._ticker: asyncio.Task[None] | None = None
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="elevator-sim", daemon=True
        )
        self._thread.start()
        self._call(self._start_ticker())

    # -- plumbing --------------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start_ticker(self) -> None:
        self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    async def _tick_forever(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            with self.lock:
                if self._powered:
                    self.model.advance(now - last)
            last = now

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        with self.lock:
            self.requests += 1
            if self._exception is not None:
                return ExcCodes(self._exception)
            regs = self._override or self.model.registers()
        registers[START - start_address : START - start_address + COUNT] = regs
        return None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        if self._silent:
            return b""
        if self._mode == "pty" and data and data[0] != self.unit:
            return b""  # on a serial bus nobody answers for a unit that is not there
        return data

    async def _no_such_unit(self, *_args: Any) -> ExcCodes:
        return ExcCodes.GATEWAY_NO_RESPONSE

    def _devices(self) -> list[SimDevice]:
        data = SimData(START, values=[0] * COUNT, datatype=DataType.REGISTERS, readonly=True)
        other = SimData(START, values=[0] * COUNT, datatype=DataType.REGISTERS, readonly=True)
        # Unit 0 catches every other unit id: a TCP gateway answers "target device failed to
        # respond" (exception 11); on the pty the answer is dropped (see _trace_packet).
        return [
            SimDevice(self.unit, simdata=[data], action=self._action),
            SimDevice(0, simdata=[other], action=self._no_such_unit),
        ]

    async def _serve(self) -> None:
        server: ModbusBaseServer
        if self._mode == "tcp":
            server = ModbusTcpServer(
                self._devices(), address=(self._host, self._port), trace_packet=self._trace_packet
            )
        else:
            assert self._master is not None
            server = _PtyServer(self._devices(), self._master, trace_packet=self._trace_packet)
        await server.serve_forever(background=True)
        if self._mode == "tcp":
            listener: Any = server.transport
            self._port = int(listener.sockets[0].getsockname()[1])
        self._server = server

    async def _shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]
            await asyncio.sleep(0)  # let the connections' close callbacks run

    # -- public ----------------------------------------------------------------------------

    def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve Modbus TCP; returns ``tcp://HOST:PORT`` (port 0: a free one)."""
        if self._mode is not None:
            raise RuntimeError(f"already serving {self.url}")
        self._mode, self._host, self._port = "tcp", host, port
        self._call(self._serve())
        self._powered = True
        self.url = f"tcp://{host}:{self._port}"
        return self.url

    def start_pty(self) -> str:
        """Serve Modbus RTU on a new pty; returns the path a serial client opens."""
        if self._mode is not None:
            raise RuntimeError(f"already serving {self.url}")
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline until the client sets its own
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._mode = "pty"
        self._call(self._serve())
        self._powered = True
        self.url = os.ttyname(slave)
        return self.url

    @property
    def port(self) -> int:
        return self._port

    @property
    def powered(self) -> bool:
        return self._powered

    def power_off(self) -> None:
        """Power loss: stop answering, freeze the car."""
        with self.lock:
            self._powered = False
        self._call(self._shutdown())

    def power_on(self) -> None:
        """Power back: serve again on the same port or pty."""
        if self._server is None and self._mode is not None:
            self._call(self._serve())
        with self.lock:
            self._powered = True

    def silence(self, on: bool = True) -> None:
        """Keep connections up but never answer (True) or answer again (False)."""
        self._silent = on

    def answer_exception(self, code: int | None) -> None:
        """Answer every read with this Modbus exception code (None: answer normally)."""
        if code is not None:
            ExcCodes(code)  # ValueError for a code Modbus does not define
        with self.lock:
            self._exception = code

    def override(self, registers: list[int] | None) -> None:
        """Serve these raw register values instead of the model's (None: the model again)."""
        if registers is not None and len(registers) != COUNT:
            raise ValueError(f"expected {COUNT} registers, got {len(registers)}")
        with self.lock:
            self._override = list(registers) if registers is not None else None

    def call(self, floor: int) -> None:
        with self.lock:
            self.model.call(floor)

    def inject(self, fault: str) -> None:
        with self.lock:
            self.model.inject(fault)

    def set_fault(self, code: int) -> None:
        with self.lock:
            self.model.set_fault(code)

    def clear_faults(self) -> None:
        with self.lock:
            self.model.clear_faults()

    def status(self) -> dict[str, object]:
        with self.lock:
            return self.model.status()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())

        async def stop_ticker() -> None:
            if self._ticker is not None:
                self._ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._ticker

        self._call(stop_ticker())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        self._powered = False

    def __enter__(self) -> ElevatorSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
