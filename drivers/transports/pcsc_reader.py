"""PC/SC readers through pcscd with pyscard: read a card's UID, watch cards come and go.

One-shot calls open their own PC/SC context and close it again, so they work across pcscd
restarts without any state: :func:`list_readers`, :func:`find_reader`, :func:`read_uid`
(``FF CA 00 00 00``, decoded by :mod:`drivers.codecs.pcsc`; :func:`aread_uid` from asyncio)
and :func:`transmit`.

:class:`CardMonitor` watches one reader in a thread with ``SCardGetStatusChange`` and
reports :class:`CardEvent` s: ``inserted`` (with the UID), ``removed``, ``error`` (a card is
there but its UID cannot be read; ``error`` says why), ``offline`` (pcscd or the reader
went away; ``error`` says why) and ``online`` (the reader is back). :class:`CardEvents` is
the asyncio face of the same thing::

    async with CardEvents("Virtual PCD") as events:
        async for event in events:
            ...

Reconnection policy: when pcscd stops, restarts or the reader disappears, the monitor
reports ``offline`` once, drops its PC/SC context and tries again after a capped
exponential backoff with jitter (0.1 s doubling up to 2 s by default), so it is back within
about 2 s of pcscd. Once the reader is found again it reports ``online`` and then only what
*changed* compared with what it reported before the outage: the same card still on the
reader produces no event (a technician's sign-in is not repeated), a different card
produces ``removed`` then ``inserted``, no card produces ``removed`` once the reader has
stayed empty for ``settle`` seconds (1.5 s by default: a remote card, like the ones behind
vpcd, needs a moment to reconnect to a restarted pcscd).

Errors are those of :mod:`drivers.transports.pcsc_errors`, raised ``from`` pyscard's own
exception or the codec's error.
"""

from __future__ import annotations

import asyncio
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smartcard import scard
from smartcard.pcsc.PCSCExceptions import BaseSCardException

from drivers.codecs.errors import DeviceError, FrameError
from drivers.codecs.pcsc import check_status, decode_uid_response, encode_get_uid, split_response

from .pcsc_errors import (
    CardError,
    NoCard,
    PcscError,
    ProtocolError,
    ReaderUnavailable,
    ServiceUnavailable,
    from_hresult,
    hresult_text,
)

__all__ = [
    "CardEvent",
    "CardEvents",
    "CardMonitor",
    "aread_uid",
    "find_reader",
    "list_readers",
    "read_uid",
    "transmit",
]

_PROTOCOLS = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1


def _check(hresult: int, what: str) -> None:
    if hresult != scard.SCARD_S_SUCCESS:
        exc = BaseSCardException(hresult=hresult, message=what)
        raise from_hresult(hresult, what) from exc


def _watch_error(hresult: int, reader: str) -> PcscError:
    """A failed wait for reader events means the reader or pcscd went away (pcscd shutting
    down answers with assorted codes, even "access denied")."""
    what = f"lost pcscd while watching {reader!r}"
    err = from_hresult(hresult, what)
    if not isinstance(err, (ServiceUnavailable, ReaderUnavailable)):
        err = ServiceUnavailable(f"{what}: {hresult_text(hresult)}", hresult=hresult)
    return err


class _Context:
    """An SCARDCONTEXT, released on exit."""

    def __init__(self) -> None:
        try:
            hresult, self.handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        except BaseSCardException as exc:  # pragma: no cover - pyscard returns codes here
            raise ServiceUnavailable(f"cannot reach pcscd: {exc}") from exc
        _check(hresult, "cannot reach pcscd")

    def readers(self) -> list[str]:
        hresult, names = scard.SCardListReaders(self.handle, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        _check(hresult, "cannot list readers")
        return list(names)

    def find(self, name: str | None) -> str:
        return _match(self.readers(), name)

    def release(self) -> None:
        scard.SCardReleaseContext(self.handle)

    def __enter__(self) -> _Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _match(readers: list[str], name: str | None) -> str:
    """The reader called ``name``, or the first whose name starts with it (None: the first)."""
    if name is None:
        if readers:
            return readers[0]
        raise ReaderUnavailable("no PC/SC reader is connected")
    if name in readers:
        return name
    for reader in readers:
        if reader.startswith(name):
            return reader
    known = ", ".join(readers) or "none"
    raise ReaderUnavailable(f"no reader named {name!r} (readers: {known})")


def _exchange(ctx: _Context, reader: str, apdu: bytes) -> bytes:
    """Connect, send one APDU, disconnect; the raw ``data + SW1 SW2``."""
    hresult, card, protocol = scard.SCardConnect(
        ctx.handle, reader, scard.SCARD_SHARE_SHARED, _PROTOCOLS
    )
    _check(hresult, f"cannot connect to the card in {reader!r}")
    try:
        hresult, response = scard.SCardTransmit(card, protocol, list(apdu))
        _check(hresult, f"exchange with the card in {reader!r} failed")
        return bytes(response)
    finally:
        scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)


def _uid_of(ctx: _Context, reader: str) -> str:
    response = _exchange(ctx, reader, encode_get_uid())
    try:
        return decode_uid_response(response).hex().upper()
    except DeviceError as exc:
        sw = exc.code if isinstance(exc.code, int) else 0
        raise CardError(f"GET UID on {reader!r}: {exc.message}", sw, exc.retry) from exc
    except FrameError as exc:
        raise ProtocolError(f"GET UID on {reader!r}: {exc.message}") from exc


def list_readers() -> list[str]:
    """Names of the readers pcscd knows; ServiceUnavailable when pcscd is not there."""
    with _Context() as ctx:
        return ctx.readers()


def find_reader(name: str | None = None) -> str:
    """The full name of the reader called ``name`` or starting with it (None: the first)."""
    with _Context() as ctx:
        return ctx.find(name)


def read_uid(reader: str | None = None) -> str:
    """UID of the card on ``reader`` (a name or its prefix) as upper-case hex."""
    with _Context() as ctx:
        return _uid_of(ctx, ctx.find(reader))


async def aread_uid(reader: str | None = None) -> str:
    """:func:`read_uid` for asyncio code (PC/SC calls block; this runs in a thread)."""
    return await asyncio.to_thread(read_uid, reader)


def transmit(reader: str | None, apdu: bytes) -> bytes:
    """Send one command APDU; the response data, CardError unless the status is 90 00."""
    with _Context() as ctx:
        name = ctx.find(reader)
        response = _exchange(ctx, name, apdu)
    try:
        data, sw1, sw2 = split_response(response)
        check_status(sw1, sw2)
    except DeviceError as exc:
        sw = exc.code if isinstance(exc.code, int) else 0
        raise CardError(
            f"APDU {apdu.hex().upper()} on {name!r}: {exc.message}", sw, exc.retry
        ) from exc
    except FrameError as exc:
        raise ProtocolError(f"APDU {apdu.hex().upper()} on {name!r}: {exc.message}") from exc
    return data


@dataclass(frozen=True)
class CardEvent:
    """``kind`` is ``inserted``, ``removed``, ``error``, ``offline`` or ``online``."""

    kind: str
    reader: str
    uid: str | None = None
    error: PcscError | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind, "reader": self.reader}
        if self.uid is not None:
            out["uid"] = self.uid
        if self.error is not None:
            out["error"] = str(self.error)
            out["retry"] = self.error.retry
        return out


class _Backoff:
    """Delay before the n-th retry: uniform(d/2, d) with d = min(cap, initial * 2**n)."""

    def __init__(self, initial: float, cap: float) -> None:
        self.initial = initial
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        d = min(self.cap, self.initial * 2 ** min(self.failures, 30))
        self.failures += 1
        return random.uniform(d / 2, d)

    def reset(self) -> None:
        self.failures = 0


class CardMonitor:
    """Watch one reader in a thread; events go to ``on_event`` or to :meth:`get`.

    ``reader`` is a reader name or a prefix of it (``"Virtual PCD"``); None watches the
    first reader. Start with :meth:`start` (or ``with``), stop with :meth:`stop`.
    """

    def __init__(
        self,
        reader: str | None = None,
        on_event: Callable[[CardEvent], None] | None = None,
        poll_interval: float = 0.5,
        backoff_initial: float = 0.1,
        backoff_cap: float = 2.0,
        settle: float = 1.5,
    ) -> None:
        self.reader = reader
        self.settle = settle
        self.poll_ms = max(10, int(poll_interval * 1000))
        self._queue: queue.Queue[CardEvent] = queue.Queue()
        self._on_event = on_event or self._queue.put
        self._backoff = _Backoff(backoff_initial, backoff_cap)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ctx: _Context | None = None
        self._thread: threading.Thread | None = None
        self._online: bool | None = None  # None: nothing reported yet
        self._present = False  # a card was last reported on the reader
        self._uid: str | None = None  # its UID (None: none, or unreadable)
        self._reader_name = reader or ""

    # -- public ----------------------------------------------------------------------------

    def start(self) -> CardMonitor:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pcsc-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._ctx is not None:
                scard.SCardCancel(self._ctx.handle)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def get(self, timeout: float | None = None) -> CardEvent | None:
        """The next event, or None after ``timeout`` seconds (only without ``on_event``)."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    @property
    def online(self) -> bool:
        return bool(self._online)

    @property
    def present_uid(self) -> str | None:
        """UID of the card last reported on the reader."""
        return self._uid

    def __enter__(self) -> CardMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the thread ------------------------------------------------------------------------

    def _emit(self, kind: str, uid: str | None = None, error: PcscError | None = None) -> None:
        self._on_event(CardEvent(kind, self._reader_name, uid, error))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._session()
            except PcscError as exc:
                if self._online is not False:
                    self._online = False
                    self._emit("offline", error=exc)
                self._stop.wait(self._backoff.next_delay())

    def _session(self) -> None:
        ctx = _Context()
        with self._lock:
            self._ctx = ctx
        try:
            reader = ctx.find(self.reader)
            self._reader_name = reader
            if self._online is not True:
                self._online = True
                self._emit("online")
            self._backoff.reset()
            self._watch(ctx, reader)
        finally:
            with self._lock:
                self._ctx = None
            ctx.release()

    def _watch(self, ctx: _Context, reader: str) -> None:
        state = scard.SCARD_STATE_UNAWARE
        seen_count: int | None = None
        seen_card = False  # a card was seen present in this session
        # After an outage the card reported before it may take a moment to be seen again
        # (a remote card reconnecting); its removal is reported only if it stays away.
        settle_until = time.monotonic() + self.settle if self._present else 0.0
        while not self._stop.is_set():
            hresult, states = scard.SCardGetStatusChange(
                ctx.handle, self.poll_ms, [(reader, state)]
            )
            if hresult in (scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED):
                waiting = seen_count is not None and not state & scard.SCARD_STATE_PRESENT
                if waiting and time.monotonic() >= settle_until:
                    self._gone()
                continue
            if hresult != scard.SCARD_S_SUCCESS:
                cause = BaseSCardException(hresult=hresult, message=f"watching {reader!r}")
                raise _watch_error(hresult, reader) from cause
            event_state = states[0][1]
            state = event_state & ~scard.SCARD_STATE_CHANGED
            if event_state & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
                raise ReaderUnavailable(f"reader {reader!r} went away")
            present = bool(event_state & scard.SCARD_STATE_PRESENT) and not (
                event_state & scard.SCARD_STATE_MUTE
            )
            count = event_state >> 16  # pcscd counts card insertions in the high word
            if not present:
                if time.monotonic() >= settle_until:
                    self._gone()
                seen_count = count
                continue
            settle_until = 0.0
            if seen_count == count:
                continue
            seen_count = count
            self._card_present(ctx, reader, fresh=not seen_card)
            seen_card = True  # later arrivals in this session are new insertions

    def _card_present(self, ctx: _Context, reader: str, fresh: bool) -> None:
        try:
            uid = _uid_of(ctx, reader)
        except (ServiceUnavailable, ReaderUnavailable):
            raise
        except NoCard:
            return  # gone again before we could read it; the next state change says so
        except PcscError as exc:
            self._gone()
            self._present = True
            self._emit("error", error=exc)
            return
        if fresh and self._present and uid == self._uid:
            return  # the same card, seen again after an outage
        self._gone()  # a card taken off and put back between two looks counts as both
        self._present, self._uid = True, uid
        self._emit("inserted", uid)

    def _gone(self) -> None:
        if self._present:
            uid, self._present, self._uid = self._uid, False, None
            self._emit("removed", uid)


class CardEvents:
    """``async with CardEvents(reader) as events: async for event in events: ...``"""

    def __init__(self, reader: str | None = None, **monitor_options: Any) -> None:
        self.reader = reader
        self._options = monitor_options
        self._queue: asyncio.Queue[CardEvent] | None = None
        self._monitor: CardMonitor | None = None

    async def __aenter__(self) -> CardEvents:
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[CardEvent] = asyncio.Queue()
        self._queue = q

        def deliver(event: CardEvent) -> None:
            loop.call_soon_threadsafe(q.put_nowait, event)

        self._monitor = CardMonitor(self.reader, on_event=deliver, **self._options).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._monitor is not None:
            self._monitor.stop()
            self._monitor = None

    def __aiter__(self) -> CardEvents:
        return self

    async def __anext__(self) -> CardEvent:
        if self._queue is None:
            raise RuntimeError("use CardEvents inside `async with`")
        return await self._queue.get()

    async def next(self, timeout: float) -> CardEvent:
        """The next event; TimeoutError after ``timeout`` seconds."""
        return await asyncio.wait_for(self.__anext__(), timeout)
