"""Listening sockets for the roles' HTTP endpoints (metrics, query API).

A port that cannot be bound stops start-up with :class:`~hostlib.errors.StartupError`
naming host, port and why ("in use", "permission denied"), before anything else runs.
"""

from __future__ import annotations

import errno
import socket

from hostlib.errors import StartupError

WHY = {
    errno.EADDRINUSE: "in use by another process",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
    errno.EADDRNOTAVAIL: "no such address on this machine",
}


def bind_error(what: str, host: str, port: int, exc: OSError) -> StartupError:
    """``exc`` (from binding ``host:port``) as a one-line error; ``what`` names the setting."""
    if isinstance(exc, socket.gaierror):
        why = f"unknown host ({exc.strerror})"
    else:
        why = WHY.get(exc.errno or 0, exc.strerror or str(exc))
    return StartupError(f"{what}: cannot listen on {host}:{port}: {why}")


def listen(what: str, host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening (IPv4 or IPv6, as ``host`` is)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise bind_error(what, host, port, exc) from exc
