"""A contactless card behind vsmartcard's vpcd reader driver, so the real pcscd sees it.

vpcd (the ``Virtual PCD`` reader of pcscd) *listens* on a TCP port (35963 for the first
slot, 35964 for the second); the card is the *client*: it connects and answers what vpcd
sends. Every message either way is a 2-byte big-endian length, then that many bytes.
From vpcd, a 1-byte message is a control code (0 power off, 1 power on, 2 reset: no
answer; 4 get ATR: answer the ATR); anything longer is a command APDU to answer with
``data + SW1 SW2``.

Presence, as vpcd decides it (``vicc_present`` in vsmartcard's ``vpcd.c``): every polling
cycle (about 0.4 s) it accepts a waiting connection and asks for the ATR. A card is present
while a connection is up and answers with a non-empty ATR. When the connection closes
(or the ATR answer is empty) vpcd closes its side and reports the slot empty. So
:meth:`CardSimulator.remove` closes the socket, and :meth:`CardSimulator.insert` connects.
A card that loses its connection while inserted (pcscd stopped or restarted) keeps
reconnecting until it is removed, like a card left on the reader.

Answers, built with the PC/SC codec (:mod:`drivers.codecs.pcsc`): ``FF CA 00 00 00``
(GET UID) -> ``UID 90 00`` (``UID 62 82`` when Le asks for more than the UID, ``6C xx``
when Le is too short); an APDU that does not parse -> ``67 00``; anything else
-> ``6D 00`` (instruction not supported). :meth:`CardSimulator.fail_uid` makes GET UID
answer a given status word instead, to drive a reader's error paths.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import suppress

from drivers.codecs.errors import FrameError
from drivers.codecs.pcsc import MAX_UID, decode_apdu, encode_response

log = logging.getLogger(__name__)

DEFAULT_VPCD_PORT = 35963
# PC/SC part 3 ATR of a contactless storage card (MIFARE Classic 1K) as PC/SC readers report it.
DEFAULT_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")

CTRL_OFF = 0
CTRL_ON = 1
CTRL_RESET = 2
CTRL_ATR = 4

SW_WRONG_LENGTH = 0x6700
SW_INS_NOT_SUPPORTED = 0x6D00
SW_END_OF_DATA = 0x6282


def parse_uid(uid_hex: str) -> bytes:
    """``"04A1B2C3"`` -> bytes; ValueError naming the problem for anything else."""
    text = uid_hex.strip().replace(":", "").replace(" ", "")
    try:
        uid = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"UID {uid_hex!r} is not hexadecimal") from None
    if not 1 <= len(uid) <= MAX_UID:
        raise ValueError(f"UID {uid_hex!r} has {len(uid)} bytes (expected 1-{MAX_UID})")
    return uid


class CardSimulator:
    """One card slot of vpcd: ``insert(uid)``, ``remove()``; serves in a thread.

    ``port`` is vpcd's port for the slot (the driver's ``CHANNELID``, 35963 by default).
    Thread-safe; use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        port: int = DEFAULT_VPCD_PORT,
        host: str = "127.0.0.1",
        atr: bytes = DEFAULT_ATR,
        retry_interval: float = 0.1,
    ) -> None:
        self.host = host
        self.port = port
        self.atr = atr
        self.retry_interval = retry_interval
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._uid: bytes | None = None
        self._uid_status: int | None = None
        self._sock: socket.socket | None = None
        self._closing = False
        self._powered = False
        self._connected = threading.Event()
        self._sessions = 0
        self.apdus: list[bytes] = []  # every command APDU received, in order
        self._thread = threading.Thread(target=self._run, name="card-sim", daemon=True)
        self._thread.start()

    # -- control ---------------------------------------------------------------------------

    @property
    def uid(self) -> str | None:
        with self._lock:
            return self._uid.hex().upper() if self._uid is not None else None

    @property
    def connected(self) -> bool:
        """True while vpcd holds the card's connection (the card is on the reader)."""
        return self._connected.is_set()

    @property
    def powered(self) -> bool:
        return self._powered

    @property
    def sessions(self) -> int:
        """How many connections to vpcd were made so far (reconnects included)."""
        return self._sessions

    def insert(self, uid_hex: str) -> None:
        """Put a card with this UID on the reader (replacing any card there)."""
        uid = parse_uid(uid_hex)
        with self._lock:
            replacing = self._uid is not None and self._uid != uid
            self._uid = uid
            if replacing:
                self._drop_locked()
            self._wake.notify_all()

    def remove(self) -> None:
        """Take the card away: the connection to vpcd is closed, vpcd reports no card."""
        with self._lock:
            self._uid = None
            self._uid_status = None
            self._drop_locked()
            self._wake.notify_all()

    def unplug(self) -> None:
        """Drop the connection to vpcd once, card still inserted; it reconnects."""
        with self._lock:
            self._drop_locked()

    def fail_uid(self, sw: int | None) -> None:
        """Answer GET UID with this status word (None: normally again); reset by remove()."""
        with self._lock:
            self._uid_status = sw

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self._connected.wait(timeout)

    def close(self) -> None:
        """Stop the thread and close the connection."""
        with self._lock:
            self._closing = True
            self._uid = None
            self._drop_locked()
            self._wake.notify_all()
        self._thread.join(timeout=5)

    def __enter__(self) -> CardSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the thread ------------------------------------------------------------------------

    def _drop_locked(self) -> None:
        sock = self._sock
        if sock is not None:
            # shutdown() wakes the thread blocked in recv(); it closes the socket itself.
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closing and self._uid is None:
                    self._wake.wait()
                if self._closing:
                    return
            try:
                sock = socket.create_connection((self.host, self.port), timeout=2.0)
            except OSError as exc:
                log.debug("vpcd at %s:%d not reachable: %s", self.host, self.port, exc)
                self._sleep(self.retry_interval)
                continue
            with self._lock:
                if self._closing or self._uid is None:
                    sock.close()
                    continue
                sock.settimeout(None)
                self._sock = sock
                self._sessions += 1
            self._connected.set()
            try:
                self._serve(sock)
            finally:
                self._connected.clear()
                self._powered = False
                with self._lock:
                    self._sock = None
                sock.close()
            self._sleep(self.retry_interval)

    def _sleep(self, seconds: float) -> None:
        with self._lock:
            if not self._closing:
                self._wake.wait(seconds)

    def _serve(self, sock: socket.socket) -> None:
        for message in _messages(sock):
            answer = self.answer(message)
            if answer is not None:
                try:
                    sock.sendall(struct.pack(">H", len(answer)) + answer)
                except OSError:
                    return

    def answer(self, message: bytes) -> bytes | None:
        """What the card sends back for one message from vpcd (None: no answer)."""
        if len(message) == 1:
            code = message[0]
            if code == CTRL_ATR:
                return self.atr
            if code in (CTRL_ON, CTRL_RESET):
                self._powered = True
            elif code == CTRL_OFF:
                self._powered = False
            else:
                log.warning("unknown vpcd control code %d", code)
            return None
        with self._lock:
            self.apdus.append(message)
            uid = self._uid
            fail = self._uid_status
        try:
            apdu = decode_apdu(message)
        except FrameError:
            return encode_response(b"", SW_WRONG_LENGTH)
        if not apdu.is_get_uid or uid is None:
            return encode_response(b"", SW_INS_NOT_SUPPORTED)
        if fail is not None:
            return encode_response(b"", fail)
        le = apdu.le or 0  # absent or 0: the whole UID
        if le == 0 or le == len(uid):
            return encode_response(uid)
        if le > len(uid):
            return encode_response(uid, SW_END_OF_DATA)
        return encode_response(b"", 0x6C00 | len(uid))


def _messages(sock: socket.socket) -> Iterator[bytes]:
    """Length-prefixed messages until the peer closes (or the socket is shut down)."""
    buf = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except OSError:
            return
        if not chunk:
            return
        buf += chunk
        while len(buf) >= 2:
            (size,) = struct.unpack(">H", buf[:2])
            if len(buf) < 2 + size:
                break
            yield buf[2 : 2 + size]
            buf = buf[2 + size :]
