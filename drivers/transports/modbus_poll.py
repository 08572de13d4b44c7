"""Poll an elevator controller's status over Modbus TCP or RTU with pymodbus (asyncio).

:class:`ElevatorPoller` reads the ``COUNT`` holding registers from ``START`` of
:mod:`drivers.codecs.modbus_elevator` and decodes them with that codec. Targets
(:meth:`Target.parse`): ``tcp://HOST:PORT`` for Modbus TCP, a device path (``/dev/ttyUSB0``,
``/dev/pts/7``) or ``rtu:///dev/ttyUSB0?baudrate=9600`` for Modbus RTU.

Errors (every one has ``retry``), under the transports' common root
:class:`~drivers.transports.errors.DriverError` and, where the meaning is the same, its
generic kinds::

    DriverError                    drivers.transports.errors
     └── ModbusError               root of this transport's errors
          ├── ModbusConnectError   cannot connect / open the port (a PortUnavailable)
          ├── ModbusTimeout        no answer within ``timeout`` (a DeviceTimeout)
          ├── ModbusDeviceError    the controller answered with a Modbus exception
          │                        (``code``; 1-3 never help, busy / gateway codes may;
          │                        a DeviceFault)
          └── ModbusDecodeError    the registers do not decode (codec FrameError)

Reconnection policy (pymodbus's own reconnect is switched off so there is exactly one):
a failed read closes the client, so the next read connects afresh (for RTU that also
drops any late answer still on the line). :meth:`ElevatorPoller.poll` keeps reading
forever, yielding a :class:`Poll` for every attempt, good or bad; after a failure it
waits a capped exponential backoff with jitter (``backoff_initial`` 0.2 s doubling up to
``backoff_cap`` 2 s) instead of the poll interval, and a success resets it, so polling
resumes within ``backoff_cap`` seconds of the controller coming back.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from drivers.codecs.errors import FrameError
from drivers.codecs.modbus_elevator import COUNT, START, decode_status

from .errors import DeviceFault, DeviceTimeout, DriverError, PortUnavailable

__all__ = [
    "ElevatorPoller",
    "ModbusConnectError",
    "ModbusDecodeError",
    "ModbusDeviceError",
    "ModbusError",
    "ModbusTimeout",
    "Poll",
    "Target",
    "read_status",
]


class ModbusError(DriverError):
    """Root of the Modbus transport's errors; ``retry`` says whether retrying can help."""


class ModbusConnectError(ModbusError, PortUnavailable):
    """The TCP connection or the serial port could not be opened."""


class ModbusTimeout(ModbusError, DeviceTimeout):
    """The controller did not answer in time."""


class ModbusDeviceError(ModbusError, DeviceFault):
    """The controller answered with a Modbus exception response (``code``)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message, code, retry=code not in _FINAL_EXCEPTIONS)


class ModbusDecodeError(ModbusError):
    """The registers read do not form a valid status."""


EXCEPTION_CODES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge (still processing)",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
_FINAL_EXCEPTIONS = {1, 2, 3}


@dataclass(frozen=True)
class Target:
    """Where the controller is: ``kind`` ``tcp`` (host, port) or ``rtu`` (device path)."""

    kind: str
    host: str = ""
    port: int = 502
    device: str = ""
    baudrate: int = 19200
    parity: str = "N"
    stopbits: int = 1

    @classmethod
    def parse(cls, text: str) -> Target:
        """``tcp://HOST:PORT``, ``rtu:///dev/X?baudrate=9600&parity=E``, or a device path."""
        if text.startswith("tcp://"):
            parts = urlsplit(text)
            try:
                port = parts.port or 502
            except ValueError:
                raise ValueError(f"bad port in {text!r}") from None
            if not parts.hostname:
                raise ValueError(f"no host in {text!r} (expected tcp://HOST:PORT)")
            return cls("tcp", host=parts.hostname, port=port)
        if text.startswith("rtu://"):
            parts = urlsplit(text)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            unknown = set(query) - {"baudrate", "parity", "stopbits"}
            if unknown:
                raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))} in {text!r}")
            try:
                baud = int(query.get("baudrate", "19200"))
                stop = int(query.get("stopbits", "1"))
            except ValueError:
                raise ValueError(f"baudrate and stopbits must be integers in {text!r}") from None
            parity = query.get("parity", "N").upper()
            if parity not in ("N", "E", "O"):
                raise ValueError(f"parity must be N, E or O in {text!r}")
            if not parts.path:
                raise ValueError(f"no device in {text!r} (expected rtu:///dev/ttyX)")
            return cls("rtu", device=parts.path, baudrate=baud, parity=parity, stopbits=stop)
        if text.startswith("/") or text.upper().startswith("COM"):
            return cls("rtu", device=text)
        raise ValueError(f"{text!r} is neither tcp://HOST:PORT nor a serial device path")

    def __str__(self) -> str:
        if self.kind == "tcp":
            return f"tcp://{self.host}:{self.port}"
        return self.device


@dataclass(frozen=True)
class Poll:
    """One poll: ``status`` (decoded) or ``error``; ``at`` is ``time.time()``."""

    at: float
    status: dict[str, object] | None = None
    error: ModbusError | None = None


class _Backoff:
    """Delay before the n-th retry: uniform(d/2, d) with d = min(cap, initial * 2**n)."""

    def __init__(self, initial: float, cap: float) -> None:
        self.initial = initial
        self.cap = cap
        self.failures = 0

    def ceiling(self) -> float:
        return float(min(self.cap, self.initial * 2 ** min(self.failures, 30)))

    def next_delay(self) -> float:
        d = self.ceiling()
        self.failures += 1
        return random.uniform(d / 2, d)

    def reset(self) -> None:
        self.failures = 0


class ElevatorPoller:
    """Reads and decodes the elevator status; one client, reconnected as needed."""

    def __init__(
        self,
        target: str | Target,
        unit: int = 1,
        timeout: float = 1.0,
        backoff_initial: float = 0.2,
        backoff_cap: float = 2.0,
    ) -> None:
        self.target = Target.parse(target) if isinstance(target, str) else target
        if not 0 <= unit <= 247:
            raise ValueError(f"unit {unit} not in 0..247")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.unit = unit
        self.timeout = timeout
        self.backoff = _Backoff(backoff_initial, backoff_cap)
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        t = self.target
        if t.kind == "tcp":
            return AsyncModbusTcpClient(
                t.host, port=t.port, timeout=self.timeout, retries=0, reconnect_delay=0
            )
        return AsyncModbusSerialClient(
            t.device,
            framer=FramerType.RTU,
            baudrate=t.baudrate,
            parity=t.parity,
            stopbits=t.stopbits,
            timeout=self.timeout,
            retries=0,
            reconnect_delay=0,
        )

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def connect(self) -> None:
        if self.connected:
            return
        self.close()
        t = self.target
        if (
            t.kind == "rtu"
            and not t.device.upper().startswith("COM")
            and not os.path.exists(t.device)
        ):
            raise ModbusConnectError(f"no such port {t.device} (adapter unplugged?)")
        client = self._new_client()
        try:
            ok = await client.connect()
        except (OSError, ModbusException) as exc:  # serial ports raise on open
            client.close()
            raise ModbusConnectError(f"cannot open {self.target}: {exc}") from exc
        if not ok:
            client.close()
            raise ModbusConnectError(f"cannot connect to {self.target}")
        self._client = client

    async def read_registers(self) -> list[int]:
        """The raw status registers (connects first if needed)."""
        await self.connect()
        assert self._client is not None
        try:
            rr = await asyncio.wait_for(
                self._client.read_holding_registers(START, count=COUNT, device_id=self.unit),
                self.timeout * 2 + 1,  # pymodbus times out first; this is a backstop
            )
        except (TimeoutError, ModbusIOException) as exc:
            self.close()
            raise ModbusTimeout(
                f"no answer from unit {self.unit} at {self.target} within {self.timeout:g} s"
            ) from exc
        except ConnectionException as exc:
            self.close()
            raise ModbusConnectError(f"connection to {self.target} lost: {exc}") from exc
        except ModbusException as exc:
            self.close()
            raise ModbusError(f"reading {self.target} failed: {exc}") from exc
        if rr.isError():
            code = int(getattr(rr, "exception_code", 0))
            text = EXCEPTION_CODES.get(code, "unknown exception")
            raise ModbusDeviceError(
                f"unit {self.unit} at {self.target} answered exception {code} ({text})", code
            )
        registers = list(rr.registers)
        if len(registers) != COUNT:
            self.close()
            raise ModbusDecodeError(f"expected {COUNT} registers, got {len(registers)}")
        return registers

    async def read_status(self) -> dict[str, object]:
        """One decoded status (keys of ``decode_status``)."""
        registers = await self.read_registers()
        try:
            return decode_status(registers)
        except FrameError as exc:
            raise ModbusDecodeError(f"status from {self.target}: {exc.message}", exc.retry) from exc

    async def poll(self, interval: float = 1.0) -> AsyncIterator[Poll]:
        """Read forever: a :class:`Poll` per attempt, capped backoff after failures."""
        while True:
            try:
                status = await self.read_status()
            except ModbusError as exc:
                yield Poll(time.time(), error=exc)
                await asyncio.sleep(self.backoff.next_delay())
                continue
            self.backoff.reset()
            yield Poll(time.time(), status=status)
            await asyncio.sleep(interval)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def __aenter__(self) -> ElevatorPoller:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


async def read_status(target: str, unit: int = 1, timeout: float = 1.0) -> dict[str, object]:
    """One status from the controller at ``target``."""
    async with ElevatorPoller(target, unit, timeout) as poller:
        return await poller.read_status()
