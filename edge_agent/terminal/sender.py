"""Moves records from the terminal's log to the site broker; frees them on sealed acks.

The firmware's policy (``firmware/micropython/lib/te/sender.py``), on the host:

* At most ``window`` records wait for an ack at a time.
* A new connection (the subscriptions granted again) resends everything unacknowledged,
  oldest first: a publish that "returned" proved nothing.
* When the oldest record in flight has waited ``ack_timeout_s`` without an ack, everything
  unacknowledged is sent again (the agent may have been killed mid-exchange; duplicates
  are acknowledged again and dropped by identity downstream).
* An ack (``t/{dev}/ack``, ``wire.auth.terminal_ack``) must verify under the device's
  newest two keys, else it is ignored and counted (``forged_acks``). Its ranges ``r`` and
  ``bad`` free records only up to the highest seq published by this process (``high``):
  an ack, even a genuine one replayed, never frees a record the agent cannot have had.
  ``wm`` frees nothing.
* Stop lists (``t/{dev}/cmd``, ``wire.auth.open_stop_list``) go to ``on_stop_list``; a
  command that does not verify is counted (``commands_refused``) and ignored.
* With ``on_gate`` (the warehouse terminal), a ``t: gate`` message on ``t/{dev}/cmd`` goes
  to it *unverified*: only the dispatch client knows the nonce it must be bound to
  (:mod:`edge_agent.terminal.dispatch`). :meth:`Sender.send_dispatch` publishes a sealed
  dispatch request on ``t/{dev}/dispatch``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from edge_agent.terminal.log import TerminalLog
from hostlib.backoff import Backoff
from hostlib.mqttlink import BrokerSettings, MqttLink
from hostlib.registry import Device
from wire import auth, topics
from wire.envelope import WireError

log = logging.getLogger(__name__)


class Sender:
    def __init__(
        self,
        tlog: TerminalLog,
        device: Device,
        broker: BrokerSettings,
        on_stop_list: Callable[[dict[str, object]], None],
        window: int = 8,
        ack_timeout_s: float = 10.0,
        on_gate: Callable[[dict[str, object]], None] | None = None,
    ) -> None:
        self.log = tlog
        self.on_gate = on_gate
        self.device = device
        self.window = window
        self.ack_timeout_s = ack_timeout_s
        self.on_stop_list = on_stop_list
        self.prefix = broker.prefix
        self._lock = threading.Lock()
        self.epoch = 0  # bumped on every (re)subscription
        self._seen_epoch = -1
        self.cursor = 0  # next seq to send is above this
        self.inflight: list[tuple[int, float]] = []  # (seq, sent at)
        self.high = 0
        self.counters = {
            "sent": 0,
            "resends": 0,
            "acks": 0,
            "forged_acks": 0,
            "unsent_acks": 0,
            "commands_refused": 0,
        }
        self.link = MqttLink(
            broker,
            client_id=device.dev,
            on_message=self._on_message,
            on_retained=self._on_message,
            subscriptions=(
                topics.terminal_ack(device.dev, self.prefix),
                topics.terminal_cmd(device.dev, self.prefix),
            ),
            backoff=Backoff(initial=0.2, cap=5.0),
            on_subscribed=self._subscribed,
            name="terminal-link",
        )

    def start(self) -> Sender:
        self.link.start()
        return self

    def stop(self) -> None:
        self.link.stop()

    @property
    def connected(self) -> bool:
        return self.link.connected

    def send_dispatch(self, payload: bytes) -> bool:
        """Publish a sealed dispatch request; False when the link cannot take it now."""
        if not self.link.connected:
            return False
        return self.link.publish(topics.terminal_dispatch(self.device.dev, self.prefix), payload)

    def _subscribed(self) -> None:
        with self._lock:
            self.epoch += 1

    # -- sending -----------------------------------------------------------------------
    def poll(self) -> None:
        """Send what the policy allows now (call often, from one thread)."""
        if not self.link.connected:
            return
        now = time.monotonic()
        with self._lock:
            if self.epoch != self._seen_epoch:
                if self.inflight:
                    self.counters["resends"] += 1
                self._seen_epoch = self.epoch
                self.cursor, self.inflight = 0, []
            elif self.inflight and now - self.inflight[0][1] >= self.ack_timeout_s:
                self.counters["resends"] += 1
                self.cursor, self.inflight = 0, []
            room = self.window - len(self.inflight)
            cursor = self.cursor
        if room <= 0:
            return
        topic = topics.terminal_rec(self.device.dev, self.prefix)
        for seq, payload in self.log.read(cursor, room):
            if not self.link.publish(topic, payload):
                break
            with self._lock:
                self.inflight.append((seq, now))
                self.cursor = seq
                self.counters["sent"] += 1
                self.high = max(self.high, seq)

    # -- receiving ---------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes) -> None:
        parts = topics.split(topic, self.prefix)
        if parts[-1:] == ["ack"]:
            self._on_ack(payload)
        elif parts[-1:] == ["cmd"]:
            self._on_cmd(payload)

    def _on_ack(self, payload: bytes) -> None:
        try:
            _wm, ranges, bad = auth.open_terminal_ack(
                payload, self.device.dev, self.device.recent_keys()
            )
        except WireError as exc:
            with self._lock:
                self.counters["forged_acks"] += 1
            log.warning("terminal: ignored an ack: %s", exc)
            return
        with self._lock:
            self.counters["acks"] += 1
            high = self.high
            sent = [(lo, min(hi, high)) for lo, hi in ranges if lo <= high]
            sent_bad = [s for s in bad if s <= high]
            if any(hi > high for _, hi in ranges) or len(sent_bad) < len(bad):
                self.counters["unsent_acks"] += 1
        if sent or sent_bad:
            self.log.ack(sent, sent_bad)
        with self._lock:
            self.inflight = [x for x in self.inflight if self.log.has(x[0])]

    def _on_cmd(self, payload: bytes) -> None:
        if self.on_gate is not None:
            try:
                gate = auth.parse(payload, auth.T_GATE)
            except WireError:
                pass
            else:
                self.on_gate(gate)
                return
        try:
            msg = auth.open_stop_list(payload, self.device.dev, self.device.recent_keys())
        except WireError as exc:
            with self._lock:
                self.counters["commands_refused"] += 1
            log.warning("terminal: ignored a command: %s", exc)
            return
        self.on_stop_list(msg)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters, inflight=len(self.inflight), high=self.high)
