"""Errors of the host device drivers (serial transport and the device drivers on top).

    Exception
     └── DriverError              root; ``retry`` says whether trying again can help
          ├── SettingsError       bad port settings (baud rate, parity ...); never retry
          ├── PortUnavailable     the port cannot be opened: no such device, busy,
          │    │                  no permission; ``retry`` from the errno (a missing
          │    │                  device may be plugged in, a permission will not change)
          │    └── DeviceGone     the port was open and vanished (unplugged: a read or
          │                       write failed, EOF) or is still away after waiting for
          │                       it to come back; retrying helps once it is replugged
          ├── DeviceTimeout       no complete answer before the deadline: silence, wrong
          │                       baud rate or protocol, device off; retrying may help
          ├── BadReply            only corrupt (or unexpected) frames arrived before the
          │                       deadline; ``bad`` holds them; line noise, retrying helps
          ├── DeviceFault         the device answered and reports a failure (SICS ``ES``,
          │                       a reader's error status); ``code`` and ``retry`` come
          │                       from the codec's :class:`~drivers.codecs.DeviceError`
          └── NotOpen             used before ``open()`` or after ``close()``; never retry

The codecs' :class:`~drivers.codecs.CodecError` is deliberately *not* part of this tree:
it is a ``ValueError`` about bytes, raised by pure functions. The drivers translate at
the boundary with ``raise ... from exc`` so the pyserial exception, the ``OSError`` or
the codec error stays attached as ``__cause__``.

How a caller decides: ``except DriverError as exc: if exc.retry: ...``. Every message
ends with the same hint, so a technician reading it knows too.
"""

from __future__ import annotations

import errno

from drivers.codecs.stream import BadFrame


class DriverError(Exception):
    """Root of the host drivers' errors. ``retry`` says whether trying again can help."""

    retry = True

    def __init__(self, message: str, retry: bool | None = None) -> None:
        if retry is not None:
            self.retry = retry
        self.message = message
        hint = "retrying may help" if self.retry else "retrying will not help"
        super().__init__(f"{message} ({hint})")


class SettingsError(DriverError):
    """The port settings are invalid; fix them, retrying will not help."""

    retry = False


class PortUnavailable(DriverError):
    """The port cannot be opened. ``errno`` is the OS error number when known."""

    def __init__(self, message: str, retry: bool | None = None, errno: int | None = None):
        self.errno = errno
        super().__init__(message, retry)


class DeviceGone(PortUnavailable):
    """The device disappeared while open (unplugged), or has not come back in time."""

    retry = True


class DeviceTimeout(DriverError):
    """No complete answer (or frame) arrived before the deadline."""

    retry = True


class BadReply(DriverError):
    """Only corrupt or unexpected frames arrived before the deadline."""

    retry = True

    def __init__(self, message: str, bad: list[BadFrame] | None = None) -> None:
        self.bad = bad or []
        super().__init__(message)


class DeviceFault(DriverError):
    """The device answered with a failure of its own; ``code`` is the device's code."""

    retry = False

    def __init__(self, message: str, code: object = None, retry: bool | None = None) -> None:
        self.code = code
        super().__init__(message, retry)


class NotOpen(DriverError):
    """The device is not open (never opened, or closed)."""

    retry = False


# A missing or vanished device may come back; a permission or a wrong path kind will not.
_PERMANENT_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTTY})


def retryable_errno(code: int | None) -> bool:
    """Whether opening again can help after an ``OSError`` with this ``errno``."""
    return code not in _PERMANENT_ERRNOS


__all__ = [
    "BadReply",
    "DeviceFault",
    "DeviceGone",
    "DeviceTimeout",
    "DriverError",
    "NotOpen",
    "PortUnavailable",
    "SettingsError",
    "retryable_errno",
]
