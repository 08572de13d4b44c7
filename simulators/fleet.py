"""Fleet simulator: many terminals of all three families publishing realistic records.

Each simulated terminal behaves like the firmware: its sequence never repeats, every record
is kept until the gateway acknowledges it (``t/{dev}/ack`` ranges, sealed with the device
key: an ack that does not verify is counted in ``forged_acks`` and frees nothing), and
unacked records are published again after ``resend_after_s``. One MQTT connection carries
the whole fleet.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hostlib.mqttlink import BrokerSettings, MqttLink
from hostlib.registry import FAMILY_OF_TYPE, Device
from simulators.records import KIND_MIX_BY_FAMILY, make_body, pick_kind
from wire import auth, topics
from wire.canonical import canonical
from wire.envelope import WireError, make_record

log = logging.getLogger(__name__)


def is_terminal(device: Device) -> bool:
    """Whether ``device`` makes records the fleet can simulate (a gateway does not)."""
    return FAMILY_OF_TYPE.get(device.type) in KIND_MIX_BY_FAMILY


@dataclass
class Terminal:
    device: Device
    family: str
    seq: int = 0
    boot: int = 1
    pending: dict[int, tuple[bytes, float]] = field(default_factory=dict)


@dataclass
class FleetStats:
    generated: int = 0
    acked: int = 0
    rejected: int = 0
    resent: int = 0
    forged_acks: int = 0

    def as_dict(self, pending: int) -> dict[str, int]:
        return {
            "generated": self.generated,
            "acked": self.acked,
            "rejected": self.rejected,
            "resent": self.resent,
            "forged_acks": self.forged_acks,
            "pending": pending,
        }


class Fleet:
    def __init__(
        self,
        broker: BrokerSettings,
        devices: list[Device],
        seed: int = 1,
        resend_after_s: float = 5.0,
        max_pending: int = 200_000,
        client_id: str = "fleet",
        start: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        """``start``: ``(seq, boot)`` per device id, where its sequence stands and its boot
        (see :mod:`simulators.fleet_state`); a device not in it starts at seq 0, boot 1."""
        if not devices:
            raise ValueError("a fleet needs at least one device")
        others = [f"{d.dev} ({d.type})" for d in devices if not is_terminal(d)]
        if others:
            raise ValueError(f"not terminals, they make no records: {', '.join(others)}")
        self.rng = random.Random(seed)
        start = start or {}
        self.terminals = [
            Terminal(d, FAMILY_OF_TYPE[d.type], *start.get(d.dev, (0, 1))) for d in devices
        ]
        self.by_dev = {t.device.dev: t for t in self.terminals}
        self.prefix = broker.prefix
        self.resend_after_s = resend_after_s
        self.max_pending = max_pending
        self.stats = FleetStats()
        self._started = False
        self._resend_every = min(1.0, resend_after_s)
        self._lock = threading.Lock()
        self.link = MqttLink(
            broker,
            client_id=client_id,
            on_message=self._on_ack,
            subscriptions=(topics.terminal_ack("+", self.prefix),),
            name="fleet",
        )

    # -- acks ------------------------------------------------------------------------
    def _on_ack(self, topic: str, payload: bytes) -> None:
        parts = topics.split(topic, self.prefix)
        term = self.by_dev.get(parts[1]) if len(parts) == 3 else None
        if term is None:
            return
        try:
            wm, ranges, bad = auth.open_terminal_ack(
                payload, term.device.dev, term.device.recent_keys()
            )
        except WireError as exc:
            with self._lock:
                self.stats.forged_acks += 1
            log.warning("fleet: ignored an ack on %s: %s", topic, exc)
            return
        if wm > 0:
            ranges.append((1, wm))
        with self._lock:
            for lo, hi in ranges:
                if hi - lo > len(term.pending):
                    hits = [s for s in term.pending if lo <= s <= hi]
                else:
                    hits = [s for s in range(lo, hi + 1) if s in term.pending]
                for s in hits:
                    del term.pending[s]
                self.stats.acked += len(hits)
            for s in bad:
                if term.pending.pop(s, None) is not None:
                    self.stats.rejected += 1

    # -- producing -------------------------------------------------------------------
    def update_device(self, device: Device) -> None:
        """New keys for a terminal (a rotation it received), used for its next records."""
        with self._lock:
            self.by_dev[device.dev].device = device

    def pending(self) -> int:
        with self._lock:
            return sum(len(t.pending) for t in self.terminals)

    def positions(self) -> dict[str, tuple[int, int]]:
        """``(seq, boot)`` per device: the last number each has used, and its boot."""
        return {t.device.dev: (t.seq, t.boot) for t in self.terminals}

    def make(self, term: Terminal) -> tuple[int, bytes]:
        term.seq += 1
        kind = pick_kind(term.family, self.rng)
        now_ms = int(time.time() * 1000)
        body = make_body(kind, self.rng, term.device.dev, term.seq, term.device.site, now_ms=now_ms)
        rec = make_record(
            term.device.dev,
            term.seq,
            term.boot,
            kind,
            now_ms,
            "ntp",
            body,
            term.device.key_for(term.seq),  # a rotated key signs from its stated seq on
        )
        return term.seq, canonical(rec)

    def make_given(self, term: Terminal, kind: str, ts: int, body: dict[str, Any]) -> bytes:
        """The next record of ``term`` with a body the caller made (a scripted day)."""
        term.seq += 1
        rec = make_record(
            term.device.dev, term.seq, term.boot, kind, ts, "ntp", body,
            term.device.key_for(term.seq),
        )  # fmt: skip
        return canonical(rec)

    def run_script(
        self,
        script: list[tuple[str, str, int, dict[str, Any]]],
        drain_timeout_s: float = 120.0,
        connect_timeout_s: float = 30.0,
    ) -> dict[str, int]:
        """Publish a scripted day, in order: ``(dev, kind, ts, body)`` per record, each as
        its terminal ``dev`` (one of the fleet's), then wait for the acknowledgements like
        :meth:`run` (a multi-hop market day: :func:`simulators.chain.chain_day`)."""
        if not self._started:
            self._started = True
            self.link.start()
        if not self.link.wait_connected(connect_timeout_s):
            raise ConnectionError(f"fleet: broker unreachable: {self.link.last_error}")
        for dev, kind, ts, body in script:
            term = self.by_dev.get(dev)
            if term is None:
                raise ValueError(f"{dev} is not a terminal of this fleet")
            with self._lock:
                payload = self.make_given(term, kind, ts, body)
                term.pending[term.seq] = (payload, time.monotonic())
                self.stats.generated += 1
            self.link.publish(topics.terminal_rec(dev, self.prefix), payload)
        deadline = time.monotonic() + drain_timeout_s
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.2)
            self.resend_due()
        return self.stats.as_dict(self.pending())

    def publish_one(self, term: Terminal) -> None:
        seq, payload = self.make(term)
        with self._lock:
            term.pending[seq] = (payload, time.monotonic())
            self.stats.generated += 1
        self.link.publish(topics.terminal_rec(term.device.dev, self.prefix), payload)

    def resend_due(self) -> int:
        now = time.monotonic()
        due: list[tuple[Terminal, int, bytes]] = []
        with self._lock:
            for t in self.terminals:
                due.extend(
                    (t, seq, payload)
                    for seq, (payload, at) in t.pending.items()
                    if now - at >= self.resend_after_s
                )
            for t, seq, payload in due:
                t.pending[seq] = (payload, now)
        sent = 0
        for t, _seq, payload in sorted(due, key=lambda x: (x[0].device.dev, x[1])):
            if self.link.publish(topics.terminal_rec(t.device.dev, self.prefix), payload):
                sent += 1
        self.stats.resent += sent
        return sent

    def run(
        self,
        records: int,
        rate: float = 0.0,
        drain_timeout_s: float = 120.0,
        progress: object = None,
        connect_timeout_s: float = 30.0,
    ) -> dict[str, int]:
        """Publish ``records`` more records (at ``rate``/s, 0 = as fast as the link takes
        them), then wait until every one is acknowledged or ``drain_timeout_s`` passes.
        May be called again: sequences continue where they were. ``ConnectionError`` when
        the broker cannot be reached within ``connect_timeout_s``."""
        if not self._started:
            self._started = True
            self.link.start()
        if not self.link.wait_connected(connect_timeout_s):
            raise ConnectionError(f"fleet: broker unreachable: {self.link.last_error}")
        start = time.monotonic()
        last_resend = start
        first = self.stats.generated
        target = first + records
        i = 0
        while self.stats.generated < target:
            if not self.link.connected or self.pending() >= self.max_pending:
                time.sleep(0.05)
            else:
                self.publish_one(self.terminals[i % len(self.terminals)])
                i += 1
                if rate > 0:
                    ahead = start + (self.stats.generated - first) / rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
            now = time.monotonic()
            if now - last_resend >= self._resend_every:
                last_resend = now
                self.resend_due()
                if callable(progress):
                    progress(self.stats.as_dict(self.pending()))
        deadline = time.monotonic() + drain_timeout_s
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.2)
            if time.monotonic() - last_resend >= self._resend_every:
                last_resend = time.monotonic()
                self.resend_due()
                if callable(progress):
                    progress(self.stats.as_dict(self.pending()))
        return self.stats.as_dict(self.pending())

    def stop(self) -> None:
        self.link.stop()
