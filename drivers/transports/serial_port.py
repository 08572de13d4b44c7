"""Asyncio transport over pyserial: move bytes, hand them to a codec's decoder.

Design
------
* **One reader thread per open port.** pyserial is blocking, so a daemon thread
  (``serial-reader <port>``) reads whatever arrives (``read`` with a short timeout, woken
  early by ``cancel_read`` on close) and hands each chunk to the event loop with
  ``call_soon_threadsafe``. The loop side keeps the chunks in a bounded queue (oldest
  chunk dropped and counted when a consumer falls behind). A thread rather than
  ``asyncio.to_thread`` per read: a read in flight can always be stopped and joined, and an
  unplug is noticed even while nobody is waiting for a frame. Writes are short commands and
  go straight to pyserial from the loop, bounded by ``write_timeout``.
* **The codec decides what a frame is.** :meth:`SerialDevice.request` writes a command and
  feeds what comes back to a :class:`~drivers.codecs.stream.StreamDecoder` until a frame
  answers it; :meth:`SerialDevice.frames` feeds a continuous stream. Bad frames never end
  an exchange early: good data after them still counts.
* **Errors** are :mod:`drivers.transports.errors`; pyserial's ``SerialException`` and
  ``OSError`` are translated with ``raise ... from exc``.

Reconnection policy
-------------------
When a read or write fails (the device was unplugged: EOF, ``EIO``, the path is gone) the
port is closed, the state becomes :attr:`LinkState.GONE` and the operation in progress
raises :class:`~drivers.transports.errors.DeviceGone` (``retry`` true). Then:

* ``reconnect=None`` (no policy): the device stays gone until the caller calls
  :meth:`SerialDevice.open` again; every operation raises ``DeviceGone`` at once.
* with a :class:`ReconnectPolicy`: the next operation reopens the same path, waiting
  ``initial, 2*initial, 4*initial ...`` seconds between attempts, capped at ``cap``, so a
  replugged device is found within ``cap`` seconds. :meth:`~SerialDevice.request` waits
  at most until its own deadline, then raises ``DeviceGone``; :meth:`~SerialDevice.frames`
  waits as long as it takes and resumes the stream (the decoder is reset: a frame cut by
  the unplug is dropped, not glued to the next one).
* Each transition is reported to ``on_state(state, error)`` (``GONE`` with the error,
  ``OPEN`` again after a reconnect) and counted in :attr:`SerialDevice.stats`.

A permanent open failure (no permission) is never retried. One consumer at a time:
``request`` calls are serialised by a lock; do not mix them with a running ``frames``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import logging
import termios
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import serial

from drivers.codecs.stream import BadFrame, StreamDecoder
from drivers.transports.errors import (
    BadReply,
    DeviceGone,
    DeviceTimeout,
    NotOpen,
    PortUnavailable,
    SettingsError,
    retryable_errno,
)

log = logging.getLogger(__name__)

PARITIES = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400)
READ_TICK = 0.2
"""Reader thread: longest wait in one ``read`` (``close`` wakes it sooner)."""
MAX_CHUNKS = 1024
"""Chunks kept for a consumer that falls behind; beyond it the oldest are dropped."""


@dataclass(frozen=True)
class SerialSettings:
    """Line settings, validated once: ``SerialSettings(9600, 7, "E", 1)`` is 7E1."""

    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    write_timeout: float = 0.5

    def __post_init__(self) -> None:
        if self.baudrate not in BAUD_RATES:
            raise SettingsError(
                f"baud rate {self.baudrate} not one of {', '.join(map(str, BAUD_RATES))}"
            )
        if self.bytesize not in (7, 8):
            raise SettingsError(f"byte size {self.bytesize} must be 7 or 8")
        if self.parity not in PARITIES:
            raise SettingsError(f"parity {self.parity!r} must be N, E or O")
        if self.stopbits not in (1, 2):
            raise SettingsError(f"stop bits {self.stopbits} must be 1 or 2")
        if not 0 < self.write_timeout <= 10:
            raise SettingsError(f"write timeout {self.write_timeout} s not in (0, 10]")

    def with_baudrate(self, baudrate: int | None) -> SerialSettings:
        if baudrate is None:
            return self
        return SerialSettings(
            baudrate, self.bytesize, self.parity, self.stopbits, self.write_timeout
        )

    def __str__(self) -> str:
        return f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"


@dataclass(frozen=True)
class ReconnectPolicy:
    """Capped exponential backoff between attempts to reopen a vanished port."""

    initial: float = 0.05
    cap: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.cap:
            raise SettingsError(f"reconnect delays need 0 < initial <= cap, got {self}")

    def delays(self) -> Iterator[float]:
        """``initial, 2*initial, 4*initial, ...`` up to ``cap``, then ``cap`` forever."""
        delay = self.initial
        while True:
            yield delay
            delay = min(self.cap, delay * 2)


class LinkState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    GONE = "gone"


@dataclass
class SerialStats:
    bytes_in: int = 0
    bytes_out: int = 0
    frames: int = 0
    bad_frames: int = 0
    timeouts: int = 0
    disconnects: int = 0
    reconnects: int = 0
    dropped_chunks: int = 0


StateCallback = Callable[[LinkState, "DeviceGone | None"], None]


class _Closed:
    """Queue marker: the device was closed while someone waited."""


@dataclass
class _Reader:
    """The reader thread of one opened port."""

    port: Any
    thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)


class SerialDevice:
    """One serial device: ``open()``, ``request()``, ``frames()``, ``close()``.

    ``url`` is a device path (``/dev/ttyUSB0``, a pty, a symlink to one) or any pyserial
    URL (``loop://``). Use as ``async with SerialDevice(...) as dev:``.
    """

    def __init__(
        self,
        url: str,
        settings: SerialSettings | None = None,
        *,
        reconnect: ReconnectPolicy | None = None,
        on_state: StateCallback | None = None,
    ) -> None:
        self.url = url
        self.settings = settings or SerialSettings()
        self.reconnect = reconnect
        self.on_state = on_state
        self.stats = SerialStats()
        self._state = LinkState.CLOSED
        self._reader: _Reader | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[bytes | BaseException | _Closed] | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def state(self) -> LinkState:
        return self._state

    def __repr__(self) -> str:
        return f"SerialDevice({self.url!r}, {self.settings}, {self._state.value})"

    async def __aenter__(self) -> SerialDevice:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- open / close ----------------------------------------------------------------------

    async def open(self) -> None:
        """Open the port once (no retry: a missing device raises ``PortUnavailable``)."""
        if self._state is LinkState.OPEN:
            return
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        if self._lock is None:
            self._lock = asyncio.Lock()
        self._open_port()
        self._set_state(LinkState.OPEN, None)

    async def close(self) -> None:
        """Stop the reader thread and close the port; waiters get ``NotOpen``."""
        self._close_port()
        if self._queue is not None:
            self._queue.put_nowait(_Closed())
        if self._state is not LinkState.CLOSED:
            self._set_state(LinkState.CLOSED, None)

    def _pyserial(self, baudrate: int) -> Any:
        s = self.settings
        port = serial.serial_for_url(
            self.url,
            baudrate=baudrate,
            bytesize=s.bytesize,
            parity=PARITIES[s.parity],
            stopbits=s.stopbits,
            timeout=READ_TICK,
            write_timeout=s.write_timeout,
            do_not_open=True,
        )
        port.open()
        return port

    def _open_pyserial(self) -> Any:
        """Open with pyserial. Linux ptys quirk: a pty keeps 8N1 whatever is asked, and a
        ``tcsetattr`` that changes only the byte size or parity (7E1 asked again at an
        unchanged speed) fails with ``EINVAL``; asking at another speed first and then
        at ours always changes the speed, which the pty accepts. Harmless on real ports."""
        try:
            return self._pyserial(self.settings.baudrate)
        except termios.error as exc:
            if exc.args[0] != errno.EINVAL:
                raise
        other = 19200 if self.settings.baudrate != 19200 else 9600
        port = self._pyserial(other)
        try:
            port.baudrate = self.settings.baudrate
        except BaseException:
            port.close()
            raise
        return port

    def _open_port(self) -> None:
        s = self.settings
        try:
            port = self._open_pyserial()
        except ValueError as exc:
            raise SettingsError(f"{self.url}: {exc}") from exc
        except (serial.SerialException, OSError) as exc:
            code = exc.errno if isinstance(exc.errno, int) else None
            inner = exc.__context__  # "Could not configure port" hides termios' errno
            if code is None and isinstance(inner, termios.error) and inner.args:
                code = inner.args[0] if isinstance(inner.args[0], int) else None
            raise PortUnavailable(
                f"cannot open {self.url}: {exc}", retry=retryable_errno(code), errno=code
            ) from exc
        except termios.error as exc:  # pyserial lets it through; it is not an OSError
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            raise PortUnavailable(
                f"cannot configure {self.url} as {s}: {exc}", retry=False, errno=code
            ) from exc
        reader = _Reader(port)
        reader.thread = threading.Thread(
            target=self._read_loop, args=(reader,), daemon=True, name=f"serial-reader {self.url}"
        )
        self._reader = reader
        reader.thread.start()
        log.debug("opened %s (%s)", self.url, s)

    def _close_port(self) -> None:
        reader, self._reader = self._reader, None
        if reader is None:
            return
        # what the old port said is history; in-flight deliveries are dropped by _deliver
        while self._queue is not None and not self._queue.empty():
            self._queue.get_nowait()
        reader.stop.set()
        with contextlib.suppress(Exception):
            reader.port.cancel_read()
        if reader.thread is not None:
            reader.thread.join(timeout=5)
        with contextlib.suppress(Exception):
            reader.port.close()

    def _closed(self) -> bool:
        return self._state is LinkState.CLOSED

    def _set_state(self, state: LinkState, error: DeviceGone | None) -> None:
        self._state = state
        if self.on_state is not None:
            self.on_state(state, error)

    # -- the reader thread -----------------------------------------------------------------

    def _read_loop(self, reader: _Reader) -> None:
        port = reader.port
        while not reader.stop.is_set():
            try:
                data = port.read(max(1, min(port.in_waiting, 4096)))
            except (serial.SerialException, OSError) as exc:
                if not reader.stop.is_set():
                    self._post(reader, exc)
                return
            if data and not reader.stop.is_set():
                self._post(reader, bytes(data))

    def _post(self, reader: _Reader, item: bytes | BaseException) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop closed: nobody is listening
            loop.call_soon_threadsafe(self._deliver, reader, item)

    def _deliver(self, reader: _Reader, item: bytes | BaseException) -> None:
        queue = self._queue
        if queue is None or reader is not self._reader:  # from a port since closed
            return
        if queue.qsize() >= MAX_CHUNKS:
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
            self.stats.dropped_chunks += 1
        queue.put_nowait(item)

    # -- losing and finding the device -----------------------------------------------------

    def _lost(self, exc: BaseException) -> DeviceGone:
        """The port failed under us: close it, report GONE, return the error to raise
        (``raise self._lost(exc) from exc``)."""
        self._close_port()
        self.stats.disconnects += 1
        error = DeviceGone(f"{self.url} disconnected: {exc}")
        error.__cause__ = exc
        log.warning("%s", error)
        self._set_state(LinkState.GONE, error)
        return error

    async def _ensure_open(self, deadline: float | None) -> None:
        """Return when the port is open; reopen a GONE port per the reconnect policy."""
        if self._state is LinkState.OPEN:
            return
        if self._state is LinkState.CLOSED:
            raise NotOpen(f"{self.url} is not open")
        if self.reconnect is None:
            raise DeviceGone(f"{self.url} is gone and reconnecting is off; open() it again")
        for delay in self.reconnect.delays():
            try:
                self._open_port()
            except PortUnavailable as exc:
                if not exc.retry:
                    raise
                last = exc
            else:
                self.stats.reconnects += 1
                log.warning("%s reconnected", self.url)
                self._set_state(LinkState.OPEN, None)
                return
            if deadline is not None and time.monotonic() + delay > deadline:
                raise DeviceGone(f"{self.url} still gone: {last.message}") from last
            await asyncio.sleep(delay)
            if self._closed():
                raise NotOpen(f"{self.url} was closed while reconnecting")

    async def _next(self, deadline: float | None) -> bytes:
        """The next chunk of bytes; ``TimeoutError`` at ``deadline``."""
        assert self._queue is not None
        if deadline is None:
            item = await self._queue.get()
        else:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            item = await asyncio.wait_for(self._queue.get(), left)
        if isinstance(item, _Closed):
            raise NotOpen(f"{self.url} was closed")
        if isinstance(item, BaseException):
            raise self._lost(item) from item
        self.stats.bytes_in += len(item)
        return item

    def _flush(self) -> None:
        """Drop bytes received before a command: a late answer is not this answer."""
        assert self._queue is not None
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, BaseException):
                raise self._lost(item) from item

    def _write(self, data: bytes) -> None:
        assert self._reader is not None
        try:
            self._reader.port.write(data)
        except serial.SerialTimeoutException as exc:
            raise DeviceTimeout(f"{self.url}: writing {len(data)} bytes timed out") from exc
        except (serial.SerialException, OSError) as exc:
            raise self._lost(exc) from exc
        self.stats.bytes_out += len(data)

    # -- exchanges -------------------------------------------------------------------------

    async def request(
        self,
        command: bytes,
        decoder: StreamDecoder,
        timeout: float,
        *,
        accept: Callable[[object], bool] | None = None,
    ) -> object:
        """Write ``command`` and return the first frame that answers it.

        ``accept`` picks the frames that count as an answer (others are skipped); bad
        frames are skipped too. Raises ``DeviceTimeout`` when nothing answers by
        ``timeout`` seconds, ``BadReply`` when only bad or unexpected frames came.
        """
        frames = await self.exchange(command, decoder, timeout, accept=accept)
        return frames[-1]

    async def exchange(
        self,
        command: bytes,
        decoder: StreamDecoder,
        timeout: float,
        *,
        accept: Callable[[object], bool] | None = None,
        until: Callable[[object], bool] | None = None,
        self_checked: bool = False,
    ) -> list[object]:
        """Write ``command`` (nothing when empty) and collect the accepted frames until
        one satisfies ``until`` (default: the first); for multi-frame answers such as
        a UHF inventory round. The whole exchange has one deadline, ``timeout``.

        A multi-frame answer (``until`` given) during which a corrupt frame arrived
        raises ``BadReply``: without sequence numbers nobody can tell whether the lost
        frame was part of the answer (a tag missing from an inventory), so the caller
        must ask again rather than trust it. A protocol whose answer proves its own
        completeness (R2000's summary counts the tag frames) passes ``self_checked``:
        then the ``BadFrame`` entries are returned too, in stream order, for it to judge."""
        deadline = time.monotonic() + timeout
        if self._lock is None:
            raise NotOpen(f"{self.url} is not open")
        async with self._lock:
            await self._ensure_open(deadline)
            self._flush()
            decoder.reset()
            if command:
                self._write(command)
            got: list[object] = []
            bad: list[BadFrame] = []
            skipped = 0
            while True:
                try:
                    chunk = await self._next(deadline)
                except TimeoutError:
                    self.stats.timeouts += 1
                    cause = bad[-1].error if bad and not got else None
                    raise self._timeout(command, timeout, got, bad, skipped) from cause
                for item in decoder.feed(chunk):
                    if isinstance(item, BadFrame):
                        self.stats.bad_frames += 1
                        bad.append(item)
                        log.debug("%s: bad frame %r", self.url, item)
                        if self_checked and got:
                            got.append(item)
                        continue
                    if accept is not None and not accept(item):
                        skipped += 1
                        continue
                    self.stats.frames += 1
                    if self_checked and not got:
                        got.extend(bad)
                    got.append(item)
                    if until is None:
                        return got
                    if until(item):
                        if bad and not self_checked:
                            raise BadReply(
                                f"{self.url}: {len(bad)} corrupt frames inside a"
                                f" {len(got)}-frame answer; it may be incomplete",
                                bad,
                            ) from bad[-1].error
                        return got

    def _timeout(
        self, command: bytes, timeout: float, got: list[object], bad: list[BadFrame], skipped: int
    ) -> Exception:
        what = f"answer to {command!r}" if command else "frame"
        if got:
            return DeviceTimeout(
                f"{self.url}: incomplete {what} after {timeout:.3g} s ({len(got)} frames so far)"
            )
        if bad or skipped:
            return BadReply(
                f"{self.url}: no valid {what} within {timeout:.3g} s; {len(bad)} corrupt"
                f" and {skipped} unexpected frames",
                bad,
            )
        return DeviceTimeout(
            f"{self.url}: no {what} within {timeout:.3g} s (device silent, off, or another"
            f" protocol / baud rate than {self.settings}?)"
        )

    async def frames(
        self, decoder: StreamDecoder, *, idle_timeout: float | None = None
    ) -> AsyncIterator[object]:
        """Frames (and :class:`BadFrame` entries) of a device that talks unasked.

        With a reconnect policy an unplug is survived: the stream resumes once the
        device is back. ``idle_timeout``: raise ``DeviceTimeout`` (``BadReply`` if
        only bad frames came) when no good frame arrives for that long.
        """
        decoder.reset()
        last_good = time.monotonic()
        bad = 0
        while True:
            deadline = None if idle_timeout is None else last_good + idle_timeout
            try:
                await self._ensure_open(None)
                chunk = await self._next(deadline)
            except DeviceGone:
                if self.reconnect is None:
                    raise
                decoder.reset()
                continue
            except TimeoutError:
                self.stats.timeouts += 1
                if bad:
                    raise BadReply(
                        f"{self.url}: only {bad} corrupt frames in {idle_timeout:.3g} s"
                    ) from None
                raise DeviceTimeout(
                    f"{self.url}: no frame within {idle_timeout:.3g} s (device silent, off,"
                    f" or another protocol / baud rate than {self.settings}?)"
                ) from None
            for item in decoder.feed(chunk):
                if isinstance(item, BadFrame):
                    self.stats.bad_frames += 1
                    bad += 1
                else:
                    self.stats.frames += 1
                    last_good = time.monotonic()
                    bad = 0
                yield item
