"""Helpers for the broker wall tests: run the CLI, a paho client that waits for its SUBACKs
and PUBACKs (so "never delivered" is measured after the broker had every chance), and a
product :class:`~hostlib.mqttlink.MqttLink` expected to be refused."""

from __future__ import annotations

import os
import pwd
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from hostlib.backoff import Backoff
from hostlib.mqttlink import BrokerSettings, MqttLink
from traceedge.cli import main

# Mosquitto started as root drops to this account before reading key and password files;
# naming ourselves keeps it as we are (a non-root Mosquitto ignores the setting).
ME = pwd.getpwuid(os.geteuid()).pw_name


def cli(*args: str | Path) -> str:
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.output


class Peer:
    """A client for the tests; raises if the broker does not let it in."""

    def __init__(
        self,
        port: int,
        client_id: str,
        user: str | None = None,
        password: str | None = None,
        tls: tuple[Path, Path, Path] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.got: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._acked: dict[int, threading.Event] = {}
        self._up = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        if user is not None:
            c.username_pw_set(user, password)
        if tls is not None:
            ca, cert, key = tls
            c.tls_set(str(ca), str(cert), str(key))
        c.on_connect = self._connected
        c.on_message = self._message
        c.on_subscribe = lambda cl, ud, mid, rcs, pr: self._event(mid).set()
        c.connect("127.0.0.1", port, keepalive=10)
        c.loop_start()
        self.client = c
        if not self._up.wait(timeout):
            self.stop()
            raise AssertionError(f"{client_id} was not let in")

    def _connected(
        self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object
    ) -> None:
        if not getattr(rc, "is_failure", True):
            self._up.set()

    def _event(self, mid: int) -> threading.Event:
        with self._lock:
            return self._acked.setdefault(mid, threading.Event())

    def _message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.got.append((msg.topic, bytes(msg.payload)))

    def subscribe(self, *topics: str) -> None:
        for t in topics:
            _, mid = self.client.subscribe(t, qos=1)
            assert self._event(mid).wait(10), f"no SUBACK for {t}"

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def payloads(self) -> list[bytes]:
        with self._lock:
            return [p for _, p in self.got]

    def wait_for(self, payload: bytes, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while payload not in self.payloads():
            assert time.monotonic() < deadline, f"{payload!r} never came; got {self.got}"
            time.sleep(0.02)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def refused(settings: BrokerSettings, cause: str, timeout: float = 20.0) -> str:
    """Run a product link until its ``last_error`` names ``cause``; it must never get in.

    With TLS 1.3 the broker's verdict on a client certificate is an alert the client may
    read or may lose to the connection closing first, so one attempt can only say
    "closed"; the link retries, and one of its attempts reads the alert.
    """
    link = MqttLink(settings, "impostor", lambda t, p: None, backoff=Backoff(0.05, 0.3))
    link.start()
    try:
        deadline = time.monotonic() + timeout
        while cause not in link.last_error:
            assert not link.connected, "the broker let it in"
            assert time.monotonic() < deadline, f"last_error {link.last_error!r} lacks {cause!r}"
            time.sleep(0.05)
        assert not link.connected
        return link.last_error
    finally:
        link.stop()
