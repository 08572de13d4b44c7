"""The board's network: WiFi station, a non-blocking TCP transport, NTP time.

Device only (the simulator uses ``tesim.jsnet`` instead). Everything here is polled and
returns quickly, except DNS (``getaddrinfo`` blocks on every port): names are resolved
once per address and cached, so give the gateway as an IP address on sites with flaky DNS.
"""

import errno
import select
import socket

from te.transport import CLOSED, CONNECTING, OPEN, Transport

_TYPING = False
if _TYPING:
    from typing import Any

    from te.hal import Clock
    from te.timekeeper import TimeKeeper

_AGAIN = (errno.EAGAIN, errno.EINPROGRESS, errno.ETIMEDOUT)


class Wifi:
    """Keeps the station connected; ``up()`` says whether it is."""

    def __init__(self, ssid: str, password: str, clock: "Clock", retry_ms: int = 10000) -> None:
        import network

        self.wlan = network.WLAN(network.STA_IF)
        self.ssid = ssid
        self.password = password
        self.clock = clock
        self.retry_ms = retry_ms
        self.tried = clock.add(clock.ticks_ms(), -retry_ms)

    def up(self) -> bool:
        return bool(self.wlan.isconnected())

    def poll(self, now: int) -> None:
        if self.wlan.isconnected() or self.clock.diff(now, self.tried) < self.retry_ms:
            return
        self.tried = now
        self.wlan.active(True)
        try:
            self.wlan.connect(self.ssid, self.password)
        except OSError:
            pass  # tried again after retry_ms


class SocketTransport(Transport):
    def __init__(self, wifi: "Wifi | None" = None) -> None:
        self.wifi = wifi
        self.sock: "Any" = None
        self.poller: "Any" = None
        self._state = CLOSED
        self.tx = b""
        self.addrs: "dict[str, Any]" = {}

    def open(self, host: str, port: int) -> None:
        self.close()
        if self.wifi is not None and not self.wifi.up():
            return
        key = "%s:%d" % (host, port)
        try:
            addr = self.addrs.get(key)
            if addr is None:
                addr = socket.getaddrinfo(host, port)[0][-1]
                self.addrs[key] = addr
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(addr)
            except OSError as exc:
                if exc.errno not in _AGAIN:
                    s.close()
                    return
        except OSError:
            return
        self.sock = s
        self.poller = select.poll()
        self.poller.register(s, select.POLLOUT | select.POLLIN)
        self._state = CONNECTING

    def state(self) -> int:
        if self._state == CONNECTING:
            for ev in self.poller.poll(0):
                if ev[1] & (select.POLLERR | select.POLLHUP):
                    self.close()
                elif ev[1] & select.POLLOUT:
                    self._state = OPEN
                    self.poller.modify(self.sock, select.POLLIN)
        return self._state

    def read(self) -> "bytes | None":
        if self._state != OPEN:
            return None if self._state == CLOSED else b""
        self._flush()
        try:
            data = self.sock.recv(1024)
        except OSError as exc:
            if exc.errno in _AGAIN:
                return b""
            self.close()
            return None
        if not data:
            self.close()
            return None
        return bytes(data)

    def _flush(self) -> None:
        while self.tx:
            try:
                n = self.sock.send(self.tx)
            except OSError as exc:
                if exc.errno in _AGAIN:
                    return
                self.close()
                raise
            if not n:
                return
            self.tx = self.tx[n:]

    def write(self, data: bytes) -> None:
        if self._state != OPEN:
            raise OSError(errno.ENOTCONN)
        self.tx += data
        self._flush()

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.tx = b""
        self._state = CLOSED


class NtpSync:
    """Sets the RTC from an NTP server (the gateway, usually) every ``every_ms``."""

    def __init__(self, host: str, time: "TimeKeeper", clock: "Clock",
                 every_ms: int = 3600000) -> None:
        self.host = host
        self.time = time
        self.clock = clock
        self.every_ms = every_ms
        self.last = clock.add(clock.ticks_ms(), -every_ms)

    def poll(self, now: int, wifi_up: bool) -> None:
        if not wifi_up or self.clock.diff(now, self.last) < self.every_ms:
            return
        self.last = now
        import ntptime

        ntptime.host = self.host
        try:
            secs = ntptime.time()  # type: ignore[no-untyped-call]  # port epoch, UTC
        except (OSError, IndexError):
            return
        from te.hal import EPOCH_OFFSET_MS

        self.time.synced(int(secs) * 1000 + EPOCH_OFFSET_MS)
