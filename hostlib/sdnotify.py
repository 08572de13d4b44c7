"""systemd's service notification protocol (``sd_notify``), the few lines of it we use.

A service started with ``Type=notify`` finds a datagram socket's address in
``$NOTIFY_SOCKET`` and sends it newline-separated ``KEY=VALUE`` lines:

    READY=1        start-up is done (systemd starts the units ordered after this one)
    WATCHDOG=1     still healthy; with ``WatchdogSec=`` systemd kills and restarts a
                   service that stays silent longer than that
    STOPPING=1     shutting down
    STATUS=text    a line for ``systemctl status``

The address is a file system path, or an abstract socket name when it starts with ``@``
(the ``@`` stands for a leading NUL byte). Without ``$NOTIFY_SOCKET`` (a process not
started by systemd, or by a unit of another ``Type``) every call does nothing. A send that
fails is logged once and never raised: a service must not stop because its supervisor
cannot hear it (systemd's own ``sd_notify`` ignores such errors too).

The roles ping the watchdog from their main loop, once a second, and only while every
worker thread they cannot do without is alive: a hung main loop or a dead worker both go
silent, and systemd restarts the process (``WatchdogSec=`` a few times that second).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def notify_address(value: str) -> str | bytes | None:
    """The socket address in a ``$NOTIFY_SOCKET`` value; None when there is none we can
    use (empty, or a kind other than a path or an abstract name, e.g. ``vsock:``)."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None


class Notifier:
    """Sends notifications to the service manager named in ``env`` (the process's own
    environment unless given); does nothing when there is none."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        self.address = notify_address(raw)
        if raw and self.address is None:
            log.warning("sd_notify: NOTIFY_SOCKET=%r is not a path or @name; not notifying", raw)
        self._sock: socket.socket | None = None
        self._failed = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` (``KEY=VALUE``) in one datagram; True when it was sent."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError as exc:
            if not self._failed:  # said once: a deaf supervisor must not flood the log
                log.warning("sd_notify: cannot notify %r: %s", self.address, exc)
            self._failed = True
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
