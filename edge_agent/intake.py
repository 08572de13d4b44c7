"""Intake: terminals' messages → validated records → group commit → terminal acks.

The MQTT thread puts raw messages into a bounded queue (a full queue blocks it: the broker
then holds the rest). One writer thread takes up to ``GROUP`` messages at a time, checks
each (:func:`check_message`, pure), commits the good ones in one transaction, keeps the bad
ones in quarantine, and only then acknowledges to each terminal the sequence ranges that
are committed. A refused record (outbox full) is not acked: the terminal keeps it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.outbox import Incoming, Outbox
from hostlib.queues import put_blocking
from hostlib.registry import Registry
from wire import topics
from wire.batch import encode_terminal_ack, to_ranges
from wire.envelope import WireError, decode_record, verify_mac
from wire.schemas import BodyValidator

log = logging.getLogger(__name__)

GROUP = 2000
LINGER_S = 0.005


@dataclass(frozen=True)
class Rejected:
    reason: str
    detail: str
    dev: str | None
    seq: int | None


def check_message(
    topic: str,
    payload: bytes,
    prefix: str,
    validator: BodyValidator,
    registry: Registry | None,
) -> Incoming | Rejected:
    """Validate one terminal message. Pure apart from the registry lookup."""
    parts = topics.split(topic, prefix)
    if len(parts) != 3 or parts[0] != "t" or parts[2] != "rec":
        return Rejected("topic", f"unexpected topic {topic!r}", None, None)
    try:
        rec = decode_record(payload)
    except WireError as exc:
        return Rejected(exc.reason, exc.detail, parts[1], None)
    dev, seq, kind = rec["dev"], rec["seq"], rec["kind"]
    assert isinstance(dev, str) and isinstance(seq, int) and isinstance(kind, str)
    if dev != parts[1]:
        return Rejected("topic", f"record of {dev} published under {parts[1]}", parts[1], None)
    try:
        validator.validate(kind, rec["body"], floats_possible=False)  # decode_record refused them
    except WireError as exc:
        return Rejected(exc.reason, exc.detail, dev, seq)
    if registry is not None:
        device = registry.get(dev)
        if device is None:
            return Rejected("unknown_device", dev, dev, seq)
        if not device.accepts(seq):
            return Rejected("revoked", f"{dev} is revoked from seq {device.revoked_from}", dev, seq)
        if not verify_mac(rec, device.key_for(seq)):
            return Rejected("mac", "MAC does not match the device key", dev, seq)
    return Incoming(dev, seq, kind, bytes(payload))


class Intake:
    """Bounded queue in front of the outbox plus the group-commit writer thread."""

    def __init__(
        self,
        outbox: Outbox,
        validator: BodyValidator,
        registry: Registry | None,
        ack: Callable[[str, bytes], bool],
        prefix: str = "",
        maxsize: int = 20000,
        on_stored: Callable[[str, str], None] | None = None,
    ) -> None:
        self.on_stored = on_stored
        self.outbox = outbox
        self.validator = validator
        self.registry = registry
        self.ack = ack
        self.prefix = prefix
        self.queue: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="intake", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def offer(self, topic: str, payload: bytes) -> None:
        """Called on the MQTT thread; blocks while the queue is full (back-pressure)."""
        put_blocking(self.queue, (topic, payload), self._stop)

    def _take_group(self) -> list[tuple[str, bytes]]:
        try:
            first = self.queue.get(timeout=0.2)
        except queue.Empty:
            return []
        group = [first]
        deadline_hit = False
        while len(group) < GROUP:
            try:
                group.append(self.queue.get_nowait())
            except queue.Empty:
                if deadline_hit:
                    break
                deadline_hit = True
                self._stop.wait(LINGER_S)
        return group

    def _run(self) -> None:
        while not self._stop.is_set():
            group = self._take_group()
            if group:
                try:
                    self.process(group)
                except Exception:
                    # Nothing was acked, so the terminals resend; keep going.
                    log.exception("intake: group of %d not committed", len(group))
                    self._stop.wait(0.5)

    def process(self, group: list[tuple[str, bytes]]) -> None:
        good: list[Incoming] = []
        bad: list[tuple[str, str, str, bytes]] = []
        bad_seqs: dict[str, list[int]] = defaultdict(list)
        for topic, payload in group:
            res = check_message(topic, payload, self.prefix, self.validator, self.registry)
            if isinstance(res, Incoming):
                good.append(res)
            else:
                bad.append((topic, res.reason, res.detail, payload))
                if res.dev is not None and res.seq is not None:
                    bad_seqs[res.dev].append(res.seq)
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
            if result.refused:
                log.error(
                    "intake: OUTBOX FULL, %d protected records refused (terminals keep them)",
                    len(result.refused),
                )
            if result.evicted:
                log.warning("intake: outbox full, thinned %d status samples", result.evicted)
        for dev in set(committed) | set(bad_seqs):
            payload = encode_terminal_ack(
                self.outbox.watermark(dev),
                to_ranges(committed.get(dev, [])),
                bad_seqs.get(dev, []),
            )
            self.ack(topics.terminal_ack(dev, self.prefix), payload)
