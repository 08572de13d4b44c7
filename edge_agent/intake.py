"""Intake: terminals' messages → validated records → group commit → terminal acks.

The MQTT thread puts raw messages into a queue bounded in count and in bytes (a full queue
blocks it: the broker then holds the rest). One writer thread takes up to ``GROUP`` messages
at a time, checks each (:func:`check_message`, pure), commits the good ones in one
transaction, keeps the bad ones in quarantine, and only then acknowledges to each terminal
the sequence ranges that are committed. A refused record (outbox full) is not acked: the
terminal keeps it.

A message that makes the intake fail (a bug in a check, anything unexpected) is quarantined
as ``internal_error`` on its own, and the rest of its group is committed and acked: when a
group fails, its messages are taken again one by one. A database that stays locked is waited
for (the group is kept, not dropped), however long that takes.

Acks free terminal flash, so they are sealed (:func:`wire.auth.terminal_ack`, the device
key) and say only what is proven: a seq is answered "bad" only for a record whose MAC
verified. Anything that cannot be attributed to its device (undecodable, wrong topic,
unknown or revoked device, bad MAC) is quarantined here and changes nothing at the
terminal: otherwise anyone who can publish could make a terminal drop records it has not
even sent.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.outbox import Incoming, Outbox
from hostlib.queues import MessageQueue
from hostlib.registry import Registry
from wire import auth, topics
from wire.batch import to_ranges
from wire.envelope import WireError, decode_record, verify_mac
from wire.schemas import BodyValidator

log = logging.getLogger(__name__)

GROUP = 2000
GROUP_BYTES = 8 * 1024 * 1024
"""A group is cut at this many payload bytes too: what the writer holds beside the queue."""
LINGER_S = 0.005


@dataclass(frozen=True)
class Rejected:
    """A message not taken. ``bad`` is the ``(dev, seq)`` to answer "bad" to its terminal:
    set only for a record whose MAC verified (its device provably sent it); ``None`` for
    anything unattributable, which the terminal never hears about."""

    reason: str
    detail: str
    bad: tuple[str, int] | None = None


def check_message(
    topic: str,
    payload: bytes,
    prefix: str,
    validator: BodyValidator,
    registry: Registry,
) -> Incoming | Rejected:
    """Validate one terminal message. Pure apart from the registry lookup.

    Order: topic, decoding, the device (registered, not revoked for this seq), its MAC,
    and only then the body's schema: a schema failure is the one refusal its terminal is
    told about, so it must come from a record the device provably made.
    """
    parts = topics.split(topic, prefix)
    if len(parts) != 3 or parts[0] != "t" or parts[2] != "rec":
        return Rejected("topic", f"unexpected topic {topic!r}")
    try:
        rec = decode_record(payload)
    except WireError as exc:
        return Rejected(exc.reason, exc.detail)
    dev, seq, kind = rec["dev"], rec["seq"], rec["kind"]
    assert isinstance(dev, str) and isinstance(seq, int) and isinstance(kind, str)
    if dev != parts[1]:
        return Rejected("topic", f"record of {dev} published under {parts[1]}")
    device = registry.get(dev)
    if device is None:
        return Rejected("unknown_device", dev)
    if not device.accepts(seq):
        return Rejected("revoked", f"{dev} is revoked from seq {device.revoked_from}")
    if not verify_mac(rec, device.key_for(seq)):
        return Rejected("mac", f"seq {seq}: MAC does not match the device key")
    try:
        validator.validate(kind, rec["body"], floats_possible=False)  # decode_record refused them
    except WireError as exc:
        return Rejected(exc.reason, exc.detail, (dev, seq))
    return Incoming(dev, seq, kind, bytes(payload))


def seal_ack(
    registry: Registry, dev: str, wm: int, committed: list[int], bad: list[int]
) -> bytes | None:
    """The sealed ack for ``dev`` (``None`` if it left the registry meanwhile), under the
    key of the highest seq it covers: the key the terminal signed that record with."""
    device = registry.get(dev)
    if device is None:
        return None
    ranges = to_ranges(committed)
    high = max([wm, *bad, *(hi for _, hi in ranges)])
    return auth.terminal_ack(dev, wm, ranges, sorted(bad), device.key_for(high))


class Intake:
    """Bounded queue in front of the outbox plus the group-commit writer thread."""

    def __init__(
        self,
        outbox: Outbox,
        validator: BodyValidator,
        registry: Registry,
        ack: Callable[[str, bytes], bool],
        prefix: str = "",
        maxsize: int = 20000,
        on_stored: Callable[[str, str], None] | None = None,
        max_bytes: int = 64 * 1024 * 1024,
        on_records: Callable[[list[Incoming]], None] | None = None,
    ) -> None:
        self.on_stored = on_stored
        self.on_records = on_records
        self.outbox = outbox
        self.validator = validator
        self.registry = registry
        self.ack = ack
        self.prefix = prefix
        self.queue: MessageQueue[str] = MessageQueue(maxsize, max_bytes)
        self.waiting_for_db = ""  # why the outbox cannot be written now ("" when it can)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="intake", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        """The thread :meth:`start` runs (a supervisor checks it is alive)."""
        return self._thread

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def offer(self, topic: str, payload: bytes) -> None:
        """Called on the MQTT thread; blocks while the queue is full (back-pressure)."""
        self.queue.put_blocking(topic, payload, self._stop)

    def _take_group(self) -> list[tuple[str, bytes]]:
        try:
            first = self.queue.get(timeout=0.2)
        except queue.Empty:
            return []
        group = [first]
        size = len(first[1])
        deadline_hit = False
        while len(group) < GROUP and size < GROUP_BYTES:
            try:
                group.append(self.queue.get_nowait())
                size += len(group[-1][1])
            except queue.Empty:
                if deadline_hit:
                    break
                deadline_hit = True
                self._stop.wait(LINGER_S)
        return group

    def _run(self) -> None:
        while not self._stop.is_set():
            group = self._take_group()
            if not group:
                continue
            try:
                self._commit_waiting(group)
            except Exception:
                log.exception("intake: group of %d failed; taking it one by one", len(group))
                for message in group:
                    try:
                        self._commit_waiting([message])
                    except Exception as exc:
                        self._poison(message, exc)

    def _commit_waiting(self, group: list[tuple[str, bytes]]) -> None:
        """:meth:`process`, waiting as long as the outbox cannot be written (locked by
        another process, a disk that is full): nothing is acked meanwhile, nothing dropped."""
        while True:
            try:
                self.process(group)
                if self.waiting_for_db:
                    log.info("intake: the outbox can be written again")
                self.waiting_for_db = ""
                return
            except sqlite3.OperationalError as exc:
                if not self.waiting_for_db:
                    log.error("intake: cannot write the outbox (%s); waiting for it", exc)
                self.waiting_for_db = str(exc)
                if self._stop.wait(1.0):
                    return

    def _poison(self, message: tuple[str, bytes], exc: Exception) -> None:
        """Quarantine one message that made the intake fail; never acked."""
        topic, payload = message
        log.error("intake: message on %s failed (%r); quarantined", topic, exc)
        try:
            self.outbox.quarantine([(topic, "internal_error", repr(exc), payload)])
        except Exception:
            log.exception("intake: cannot even quarantine the message on %s", topic)

    def process(self, group: list[tuple[str, bytes]]) -> None:
        good: list[Incoming] = []
        bad: list[tuple[str, str, str, bytes]] = []
        bad_seqs: dict[str, list[int]] = defaultdict(list)
        for topic, payload in group:
            try:
                res = check_message(topic, payload, self.prefix, self.validator, self.registry)
            except Exception as exc:  # a bug in a check: this message alone is refused
                log.error("intake: checking a message on %s failed: %r", topic, exc)
                res = Rejected("internal_error", repr(exc))
            if isinstance(res, Incoming):
                good.append(res)
            else:
                bad.append((topic, res.reason, res.detail, payload))
                if res.bad is not None:
                    bad_seqs[res.bad[0]].append(res.bad[1])
        self.outbox.quarantine(bad)
        for topic, reason, detail, _ in bad:
            log.warning("intake: quarantined message on %s: %s %s", topic, reason, detail)
        result = self.outbox.add_many(good, received=len(good)) if good else None
        committed: dict[str, list[int]] = defaultdict(list)
        if result is not None:
            for item in result.stored + result.duplicates:
                committed[item.dev].append(item.seq)
            if self.on_stored is not None:
                for dev, kind in {(i.dev, i.kind) for i in result.stored}:
                    self.on_stored(dev, kind)
            if self.on_records is not None and result.stored:
                self.on_records(result.stored)
            if result.refused:
                log.error(
                    "intake: OUTBOX FULL, %d protected records refused (terminals keep them)",
                    len(result.refused),
                )
            if result.evicted:
                log.warning("intake: outbox full, thinned %d status samples", result.evicted)
        for dev in sorted(set(committed) | set(bad_seqs)):
            sealed = seal_ack(
                self.registry,
                dev,
                self.outbox.watermark(dev),
                committed.get(dev, []),
                bad_seqs.get(dev, []),
            )
            if sealed is not None:
                self.ack(topics.terminal_ack(dev, self.prefix), sealed)
