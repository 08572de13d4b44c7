"""A paho-mqtt client run by our own connection loop: written reconnect policy, TLS that
never downgrades, and state callers can read (``connected``, ``last_error``).

paho's own ``loop_start`` reconnects without jitter; here one thread pumps the network with
``client.loop()`` and, when the connection drops or cannot be made, sleeps a
:class:`~hostlib.backoff.Backoff` delay before trying again: a short probe delay while
the broker's host refuses the connection (a broker restarting: back within ``initial`` of
it, however long the outage), the growing delay otherwise. One line per cause, not per
attempt: a failure is a WARNING when its explanation changes and once a minute otherwise.
``publish`` is safe from any thread; the subscriptions given at construction are made
again on every connect, and ``on_subscribed`` runs once the broker granted them all.
A ``will`` is published (retained) by the broker when the link dies, and by ``stop()``.

A connection that fails before the broker accepted it is explained, in ``last_error`` and
the log line, by what a person can fix (:func:`explain_failure`, :func:`explain_refusal`):
"TLS: certificate verify failed (unknown CA)", "TLS handshake failed: certificate
revoked", "connection refused: not authorised (bad username or password)". With TLS 1.3 a
broker judges the client certificate after the client's handshake is done, so its verdict
arrives as an alert on the first read, which paho only logs: ``on_log`` keeps that text.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hostlib.backoff import Backoff
from hostlib.config import Section
from hostlib.outage import Outage

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]


MAX_KEEPALIVE_S = 3600  # an hour: a broker drops a silent client only after 1.5 keepalives
MAX_PREFIX = 128  # characters of a topic prefix


@dataclass(frozen=True)
class BrokerSettings:
    """Where and how to reach one MQTT broker (a ``[…broker]`` table of a role's config)."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    keepalive: int = 30
    prefix: str = ""

    @property
    def tls(self) -> bool:
        return self.tls_ca is not None

    @classmethod
    def parse(cls, s: Section) -> BrokerSettings:
        b = cls(
            host=s.host("host", "127.0.0.1"),
            port=s.port("port", 1883),
            username=s.opt("username", str),
            password=s.opt("password", str),
            tls_ca=s.opt("tls_ca", str),
            tls_cert=s.opt("tls_cert", str),
            tls_key=s.opt("tls_key", str),
            keepalive=s.bounded("keepalive", int, 30, MAX_KEEPALIVE_S, "seconds"),
            prefix=s.get("prefix", str, ""),
        )
        s.finish()
        if b.password is not None and b.username is None:
            s.fail("password", "given without username")
        if (b.tls_cert is None) != (b.tls_key is None):
            s.fail("", "tls_cert and tls_key go together")
        if b.tls_cert and not b.tls_ca:
            s.fail("tls_ca", "is required with tls_cert")
        for key in ("tls_ca", "tls_cert", "tls_key"):
            s.must_exist(key, getattr(b, key))
        problem = _prefix_problem(b.prefix)
        if problem:
            s.fail("prefix", problem)
        return b


def _prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot lead our topics (None: it can). It is a plain topic path: no
    wildcards, no ``$`` (reserved by brokers), no NUL, no ``/`` at either end."""
    if len(prefix) > MAX_PREFIX:
        return f"at most {MAX_PREFIX} characters, not {len(prefix)}"
    if any(c in prefix for c in "+#$\0"):
        return f"must hold none of + # $ or NUL (wildcards, reserved), not {prefix!r}"
    if prefix.startswith("/") or prefix.endswith("/"):
        return f"must not start or end with /, not {prefix!r}"
    return None


UNKNOWN_CA = (
    "TLS: certificate verify failed (unknown CA): the broker's certificate is not from tls_ca"
)
# What OpenSSL says (lower case) -> the cause, in the order to test them.
_TLS_CAUSES = (
    (
        "alert certificate required",
        "TLS handshake failed: broker requires a client certificate (set tls_cert and tls_key)",
    ),
    (
        "alert certificate revoked",
        "TLS handshake failed: certificate revoked (our client certificate is on the CRL)",
    ),
    (
        "alert unknown ca",
        "TLS handshake failed: broker does not trust our client certificate (unknown CA)",
    ),
    ("alert certificate expired", "TLS handshake failed: our client certificate has expired"),
    ("alert bad certificate", "TLS handshake failed: broker rejected our client certificate"),
    ("alert handshake failure", "TLS handshake failed: no TLS version or cipher in common"),
    ("self-signed certificate", UNKNOWN_CA),
    ("unable to get local issuer certificate", UNKNOWN_CA),
    ("mismatch", "TLS: certificate verify failed (the broker's certificate does not name {host})"),
    ("certificate has expired", "TLS: certificate verify failed (broker certificate expired)"),
    ("wrong version number", "TLS handshake failed: the port does not speak TLS"),
)
_CLOSED = ("eof", "reset by peer", "connection was lost", "broken pipe")


def explain_failure(raw: str, s: BrokerSettings, handshake: bool) -> str:
    """Why a connection attempt failed before CONNACK. ``raw`` is what the socket, OpenSSL
    or paho said; ``handshake`` is True when it failed inside ``connect()`` (TCP + TLS)."""
    low = raw.lower()
    if s.tls:
        for words, cause in _TLS_CAUSES:
            if words in low:
                return cause.format(host=s.host)
    if not any(w in low for w in _CLOSED):
        return raw
    if not s.tls:
        return "connection closed by the broker before CONNACK (a TLS port? set tls_ca)"
    if handshake:
        return "TLS handshake failed: the broker closed the connection (a plain MQTT port?)"
    if not s.tls_cert:
        return (
            "TLS: the broker closed the connection after the handshake (it may require a "
            "client certificate: set tls_cert and tls_key)"
        )
    return (
        "TLS: the broker closed the connection after the handshake (our client "
        "certificate revoked or not trusted?)"
    )


def explain_refusal(rc: object) -> str:
    """Why the broker refused CONNECT (paho's reason code, MQTT 3.1.1 or 5)."""
    value = getattr(rc, "value", None)
    if value in (4, 134):
        return "connection refused: bad username or password"
    if value in (5, 135):
        return "connection refused: not authorised (bad username or password)"
    return f"connection refused: {rc}"


class _TlsContext(ssl.SSLContext):
    """Keeps the socket of the latest handshake: when the handshake fails, paho drops that
    socket without closing it, and a link retrying against a broker it cannot trust would
    leave one open socket per attempt to the garbage collector."""

    pending: ssl.SSLSocket | None = None

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.pending = super().wrap_socket(*args, **kwargs)
        return self.pending

    def close_pending(self) -> None:
        if self.pending is not None:
            self.pending.close()
            self.pending = None


class MqttLink:
    """One MQTT session with a persistent identity (clean_session False, QoS 1)."""

    def __init__(
        self,
        settings: BrokerSettings,
        client_id: str,
        on_message: MessageHandler,
        subscriptions: tuple[str, ...] = (),
        backoff: Backoff | None = None,
        on_connect: Callable[[], None] | None = None,
        clean_session: bool = False,
        name: str = "mqtt",
        on_subscribed: Callable[[], None] | None = None,
        on_retained: MessageHandler | None = None,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        """``on_retained``: takes the messages the broker sends because we subscribed (a
        retained message, retain flag set) instead of ``on_message``. ``will``: (topic,
        payload) the broker publishes, retained, when this link dies without saying
        goodbye; ``stop()`` publishes it itself."""
        self.settings = settings
        self.name = name
        self.subscriptions = subscriptions
        self.backoff = backoff or Backoff()
        self._on_message = on_message
        self._on_connect_cb = on_connect
        self._on_subscribed_cb = on_subscribed
        self._on_retained = on_retained
        self.will = will
        self._sub_mid: int | None = None
        self._stop = threading.Event()
        self._connected = threading.Event()
        self.last_error = ""
        self._session_up = False  # this attempt reached CONNACK
        self._refused = ""  # this attempt's CONNACK refusal, explained
        self._socket_error = ""  # this attempt's last socket error paho logged
        self._tls: _TlsContext | None = None
        # a broker that stays down: its first failure, a summary every few minutes, its end
        self.outage = Outage(log, name)
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
        )
        c.max_inflight_messages_set(100)
        c.max_queued_messages_set(0)
        if will is not None:
            c.will_set(will[0], will[1], qos=1, retain=True)
        if settings.username:
            c.username_pw_set(settings.username, settings.password)
        if settings.tls:
            ctx = self._tls = _TlsContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies cert and host
            ctx.load_verify_locations(cafile=settings.tls_ca)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if settings.tls_cert:
                ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
            c.tls_set_context(ctx)
        c.on_connect = self._handle_connect
        c.on_disconnect = self._handle_disconnect
        c.on_message = self._handle_message
        c.on_subscribe = self._handle_subscribe
        c.on_log = self._handle_log
        self.client = c
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> MqttLink:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.will is not None and self.connected:  # say it ourselves: a clean goodbye
            with contextlib.suppress(Exception):  # sends no will
                info = self.client.publish(self.will[0], self.will[1], qos=1, retain=True)
                info.wait_for_publish(timeout=2.0)
        self._stop.set()
        self._thread.join(timeout=10)
        with contextlib.suppress(Exception):  # closing a dead socket is not an error
            self.client.disconnect()

    @property
    def thread(self) -> threading.Thread:
        """The thread :meth:`start` runs (a supervisor checks it is alive)."""
        return self._thread

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """Queue a publish; False when not connected (nothing was queued)."""
        if not self.connected:
            return False
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    # -- paho callbacks (network thread) ---------------------------------------------
    def _handle_connect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object
    ) -> None:
        if getattr(rc, "is_failure", False):
            self._refused = explain_refusal(rc)
            return
        self._sub_mid = None
        if self.subscriptions:
            _, self._sub_mid = client.subscribe([(t, 1) for t in self.subscriptions])
        self.backoff.reset()
        self._session_up = True
        self._connected.set()
        self.outage.ended()
        log.info("%s: connected to %s:%d", self.name, self.settings.host, self.settings.port)
        if self._on_connect_cb is not None:
            self._on_connect_cb()

    def _handle_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object
    ) -> None:
        if self._connected.is_set():
            # our own stop (or a clean DISCONNECT) is no cause for alarm; a lost link is
            clean = self._stop.is_set() or not getattr(rc, "is_failure", True)
            log.log(
                logging.INFO if clean else logging.WARNING, "%s: disconnected (%s)", self.name, rc
            )
        self._connected.clear()

    def _handle_subscribe(
        self, client: mqtt.Client, userdata: object, mid: int, codes: list[Any], props: object
    ) -> None:
        if mid != self._sub_mid:
            return
        refused = [
            t
            for t, rc in zip(self.subscriptions, codes, strict=False)
            if getattr(rc, "is_failure", 0)
        ]
        if refused:
            log.error("%s: the broker refused the subscription(s) %s", self.name, refused)
            return
        if self._on_subscribed_cb is not None:
            self._on_subscribed_cb()

    def _handle_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        handler = self._on_retained if msg.retain and self._on_retained else self._on_message
        try:
            handler(msg.topic, bytes(msg.payload))
        except Exception:
            log.exception("%s: handler failed on %s", self.name, msg.topic)

    def _handle_log(self, client: mqtt.Client, userdata: object, level: int, buf: str) -> None:
        if level == mqtt.MQTT_LOG_ERR and " on socket: " in buf:
            self._socket_error = buf.split(" on socket: ", 1)[1]

    # -- connection loop -------------------------------------------------------------
    def _sleep_backoff(self, refused: bool = False) -> None:
        delay = self.backoff.probe_delay() if refused else self.backoff.next_delay()
        log.debug("%s: retrying in %.2f s", self.name, delay)
        self._stop.wait(delay)

    def _run(self) -> None:
        s = self.settings
        first = True
        while not self._stop.is_set():
            self._session_up, self._refused, self._socket_error = False, "", ""
            try:
                if first:
                    self.client.connect(s.host, s.port, keepalive=s.keepalive)
                    first = False
                else:
                    self.client.reconnect()
            except (OSError, ssl.SSLError) as exc:
                if self._tls is not None:
                    self._tls.close_pending()
                self.last_error = explain_failure(str(exc), s, handshake=True)
                self.outage.failed(
                    f"cannot connect to {s.host}:{s.port}: {self.last_error} [{exc}]",
                    key=self.last_error,
                )
                # nothing listens there (a broker restarting): probing costs it nothing
                self._sleep_backoff(refused=isinstance(exc, ConnectionRefusedError))
                continue
            while not self._stop.is_set():
                rc = self.client.loop(timeout=0.05)
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    self._connected.clear()
                    raw = self._socket_error or mqtt.error_string(rc)
                    if self._session_up:
                        self.last_error = raw
                    else:
                        self.last_error = self._refused or explain_failure(raw, s, handshake=False)
                        self.outage.failed(
                            f"{s.host}:{s.port} did not let us in: {self.last_error} [{raw}]",
                            key=self.last_error,
                        )
                    break
            if not self._stop.is_set():
                self._sleep_backoff()
