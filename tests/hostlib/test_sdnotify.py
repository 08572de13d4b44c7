"""sd_notify over a real unix datagram socket, as systemd listens for it: a path and an
abstract name (``@``), nothing at all without ``NOTIFY_SOCKET``, and a socket nobody
listens on logged once, never raised."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostlib.sdnotify import Notifier, notify_address


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_states_arrive_as_systemd_reads_them(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("collector c1: running")
    assert n.watchdog()
    assert n.stopping()
    n.close()
    got = [sock.recv(4096).decode() for _ in range(3)]
    assert got == ["READY=1\nSTATUS=collector c1: running", "WATCHDOG=1", "STOPPING=1"]


def test_an_abstract_socket_name_starts_with_at() -> None:
    name = f"traceedge-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert n.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
        n.close()
    finally:
        sock.close()


def test_without_notify_socket_nothing_is_sent() -> None:
    n = Notifier({})
    assert not n.enabled
    assert not n.ready() and not n.watchdog() and not n.stopping()


def test_an_address_of_another_kind_is_refused_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert notify_address("vsock:2:1234") is None
    with caplog.at_level(logging.WARNING):
        n = Notifier({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not n.enabled and not n.watchdog()
    assert "not a path or @name" in caplog.text


def test_nobody_listening_is_logged_once_and_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    with caplog.at_level(logging.WARNING):
        results = [n.watchdog() for _ in range(5)]
    n.close()
    assert results == [False] * 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert "cannot notify" in warnings[0].getMessage()
