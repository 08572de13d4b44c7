"""Uplink: outbox → batches → central broker, deleted only on the collector's ack.

Policy (tested against real processes in ``tests/e2e``: ``test_links.py`` for the silent
link and racing duplicates, ``test_chain.py`` for kill -9, a broker restart and a backlog
draining after an outage; the ack handling alone in ``tests/edge_agent/test_uplink.py``):

* A batch is up to ``batch_records`` records / ``batch_bytes`` bytes, sent when full or
  when ``linger_s`` has passed with nothing more to add; zlib-compressed; QoS 1.
* At most ``max_in_flight`` batches await their ack. A publish that "returns" proves
  nothing (a silent link swallows it): a batch is resent when ``ack_timeout_s`` passes
  without its ack, and every unacked batch is resent after each reconnect.
* The ack (``edge/{site}/ack``) names the batch and is sealed with this gateway's key over
  the batch's digest (:func:`wire.auth.batch_ack`); only then is its id range deleted. An
  ack that does not verify, or whose digest is not the batch's, deletes nothing and is
  counted (``forged_acks``): an open broker costs availability at worst, never records. A
  genuine ack for an unknown batch (from before a restart) is ignored: those records are
  resent and the collector removes the duplicates.
* A backlog drains at full speed: while records wait and the window has room, batches go
  out back to back with no linger.
* A collector announces itself (``collectors/{id}`` "up", retained, once its shared
  subscription stands). When one appears *live*, every batch in flight that was published
  before the announcement arrived is resent at once: the broker drops what is published
  to a shared subscription nobody holds, which is what happens when the agent reconnects
  before any collector after a broker restart. A batch published after the announcement
  arrived reached the broker after that collector's subscription (the broker's order), so
  it is not resent. A retained announcement (there before we subscribed) needs nothing:
  everything on this connection went out after our subscription, after its. A batch is
  resent this way at most once per ordinary send, so a stranger publishing "up" costs at
  most one extra (idempotent) copy of the window, never a record (docs/trust.md).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.outbox import Outbox
from edge_agent.settings import UplinkSettings
from hostlib.registry import Device
from wire import auth, topics
from wire.batch import encode_batch
from wire.envelope import WireError

log = logging.getLogger(__name__)


@dataclass
class InFlight:
    batch_id: str
    lo: int
    hi: int
    count: int
    payload: bytes
    digest: str
    sent_at: float = 0.0  # monotonic, taken before the publish
    attempts: int = 0
    resent_for_collector: bool = False  # its latest send answered a collector's "up"


@dataclass
class UplinkStats:
    resends: int = 0
    unknown_acks: int = 0  # genuine, for a batch not in flight (from before a restart): harmless
    bad_acks: int = 0  # unreadable: someone else publishes on our ack topic
    forged_acks: int = 0  # does not verify under our key, or names other content: deletes nothing
    collector_resends: int = 0  # batches resent at once because a collector appeared
    last_ack_at: float | None = None


class Uplink:
    """Reads the outbox forward from a cursor and keeps a window of batches in flight."""

    def __init__(
        self, outbox: Outbox, site: str, settings: UplinkSettings, identity: Device
    ) -> None:
        self.outbox = outbox
        self.site = site
        self.identity = identity
        self.settings = settings
        self.prefix = settings.broker.prefix
        self.topic = topics.site_up(site, self.prefix)
        self.ack_topic = topics.site_ack(site, self.prefix)
        self.cursor = 0
        self.in_flight: dict[str, InFlight] = {}
        self.stats = UplinkStats()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._resend_all = threading.Event()
        self._collector_up_at = 0.0  # monotonic: a collector's live "up" arrived
        self._thread = threading.Thread(target=self._run, name="uplink", daemon=True)
        self.publish: Callable[[str, bytes], bool] = lambda topic, payload: False
        self.connected: Callable[[], bool] = lambda: False

    def attach(self, publish: Callable[[str, bytes], bool], connected: Callable[[], bool]) -> None:
        """Wire the link: its publish, and whether it is up (no batches are cut while down,
        so a full outbox can still thin what has not left)."""
        self.publish = publish
        self.connected = connected

    def start(self) -> None:
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        """The thread :meth:`start` runs (a supervisor checks it is alive)."""
        return self._thread

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def on_connect(self) -> None:
        """The link (re)connected: everything unacked goes again, now."""
        self._resend_all.set()
        self._wake.set()

    def on_collector(self, payload: bytes) -> None:
        """A collector announced itself live (MQTT thread): what went out before may have
        found nobody on the shared subscription; it goes again, now."""
        if payload != topics.PRESENCE_UP:
            return
        with self._lock:
            self._collector_up_at = time.monotonic()
        self._wake.set()

    def poke(self) -> None:
        """New records were committed."""
        self._wake.set()

    # -- acks (MQTT thread) ------------------------------------------------------------
    def on_ack(self, topic: str, payload: bytes) -> None:
        ident = self.identity
        try:
            ack = auth.open_batch_ack(payload, self.site, ident.dev, ident.recent_keys())
        except WireError as exc:
            if exc.reason == "mac":
                self.stats.forged_acks += 1
                log.warning("uplink: an ack on %s does not verify; nothing deleted", topic)
            else:
                self.stats.bad_acks += 1
                log.warning("uplink: unusable ack on %s: %s", topic, exc)
            return
        with self._lock:
            batch = self.in_flight.get(str(ack["b"]))
            if batch is not None and batch.digest != ack["digest"]:
                self.stats.forged_acks += 1
                log.warning("uplink: ack for batch %s names other content", batch.batch_id)
                return
            if batch is not None:
                del self.in_flight[batch.batch_id]
        if batch is None:
            self.stats.unknown_acks += 1
            return
        self.outbox.delete_range(batch.lo, batch.hi)
        self.stats.last_ack_at = time.time()
        self._wake.set()

    # -- sending (uplink thread) -------------------------------------------------------
    def _next_batch(self) -> InFlight | None:
        s = self.settings
        rows = self.outbox.read_after(self.cursor, s.batch_records, s.batch_bytes)
        if not rows:
            return None
        if len(rows) < s.batch_records and not self._linger_done(rows[0].id):
            return None
        batch_id = uuid.uuid4().hex[:16]
        payload = encode_batch(self.site, self.identity.dev, batch_id, [r.rec for r in rows])
        self.cursor = rows[-1].id
        self._linger_since = None
        digest = auth.batch_digest(payload)
        return InFlight(batch_id, rows[0].id, rows[-1].id, len(rows), payload, digest)

    _linger_since: float | None = None
    _linger_first: int = 0

    def _linger_done(self, first_id: int) -> bool:
        now = time.monotonic()
        if self._linger_since is None or self._linger_first != first_id:
            self._linger_since, self._linger_first = now, first_id
        return now - self._linger_since >= self.settings.linger_s

    def _send(self, batch: InFlight, for_collector: bool = False) -> None:
        at = time.monotonic()  # before: the broker gets it after this instant
        if self.publish(self.topic, batch.payload):
            batch.sent_at = at
            batch.attempts += 1
            batch.resent_for_collector = for_collector
            if batch.attempts == 1:
                self.outbox.count_uplinked(batch.count)
            else:
                self.stats.resends += 1
            if for_collector:
                self.stats.collector_resends += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:
                log.exception("uplink: step failed; retrying")
                self._stop.wait(1.0)

    def _step(self) -> None:
        s = self.settings
        self._wake.clear()  # before reading what woke us: a later wake is not lost
        now = time.monotonic()
        with self._lock:
            pending = list(self.in_flight.values())
            up_at, self._collector_up_at = self._collector_up_at, 0.0
        resend_all = self._resend_all.is_set()
        self._resend_all.clear()
        # nothing can go out without the broker (and `on_connect` resends all when it is
        # back): no "resending" line for each batch every half second of an outage
        for b in pending if self.connected() else ():
            if b.sent_at == 0.0 or resend_all or now - b.sent_at >= s.ack_timeout_s:
                if b.sent_at and not resend_all:
                    log.warning(
                        "uplink: no ack for batch %s after %.0f s, resending",
                        b.batch_id,
                        now - b.sent_at,
                    )
                self._send(b)
            elif b.sent_at < up_at and not b.resent_for_collector:
                self._send(b, for_collector=True)
        sent_new = False
        while (
            len(self.in_flight) < s.max_in_flight and self.connected() and not self._stop.is_set()
        ):
            batch = self._next_batch()
            if batch is None:
                break
            with self._lock:
                self.in_flight[batch.batch_id] = batch
            self._send(batch)
            sent_new = True
        if not sent_new:
            self._wake.wait(min(s.linger_s, 0.5) if self.outbox.bytes else 0.5)
