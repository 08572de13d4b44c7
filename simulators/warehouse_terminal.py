"""A simulated warehouse in/out terminal (host side), for tests and demos: what the
handheld or door reader does, on MQTT.

It reads codes with :func:`drivers.codecs.itemcodes.parse_item`, signs its records with the
device key (``goods.in``, ``goods.out``, ``goods.count``, ``goods.pack`` on ``t/{dev}/rec``)
and asks the agent's dispatch gate before anything leaves (``t/{dev}/dispatch``, a fresh
nonce per request; the answer on ``t/{dev}/cmd`` must verify under its key for that nonce,
:func:`wire.auth.check_gate_answer`, or nothing leaves). A ``goods.out`` is recorded only
after an ``allow``, naming the gate's record (``gate_seq``). docs/warehouse.md.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from drivers.codecs.itemcodes import parse_item
from hostlib.registry import Device
from wire import auth, topics
from wire.canonical import canonical
from wire.envelope import WireError, make_record


def scan(code: str, level: str = "", source: str = "scan") -> dict[str, Any]:
    """The recorded form of one read: ``{"scheme", "id", "level"}``."""
    got = parse_item(code, source=source, level=level)
    return {"scheme": got["scheme"], "id": got["id"], "level": got["level"]}


class WarehouseTerminal:
    def __init__(self, port: int, device: Device, site: str, prefix: str = "") -> None:
        self.dev, self.key, self.site, self.prefix = device.dev, device.key, site, prefix
        self.seq = 0
        self.request_id = 0
        self.records: list[dict[str, Any]] = []
        self.answers: dict[int, dict[str, Any]] = {}
        self.acked = 0  # the agent's watermark from its last verified ack
        self._got = threading.Condition()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"wh-{self.dev}")
        self.c.on_message = self._on
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.c.subscribe(topics.terminal_cmd(self.dev, prefix), qos=1)
        self.c.subscribe(topics.terminal_ack(self.dev, prefix), qos=1)
        time.sleep(0.3)

    def _on(self, c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        if m.topic == topics.terminal_ack(self.dev, self.prefix):
            try:
                wm, _, _ = auth.open_terminal_ack(bytes(m.payload), self.dev, [self.key])
            except WireError:
                return
            with self._got:
                self.acked = max(self.acked, wm)
                self._got.notify_all()
            return
        try:
            msg = json.loads(m.payload)
        except ValueError:
            return
        if isinstance(msg, dict) and msg.get("t") == "gate" and isinstance(msg.get("id"), int):
            with self._got:
                self.answers[msg["id"]] = msg
                self._got.notify_all()

    def record(self, kind: str, body: dict[str, Any]) -> int:
        """Sign and publish one record; its seq."""
        self.seq += 1
        rec = make_record(
            self.dev, self.seq, 1, kind, int(time.time() * 1000), "ntp", body, self.key
        )
        self.records.append(rec)
        self.c.publish(topics.terminal_rec(self.dev, self.prefix), canonical(rec), qos=1)
        return self.seq

    def wait_acked(self, timeout: float = 10.0) -> bool:
        """Whether the agent acked every record published so far within ``timeout`` (it
        keeps the stock from what it stored: a receipt is in stock once acked)."""
        with self._got:
            return self._got.wait_for(lambda: self.acked >= self.seq, timeout)

    def ask(self, request: dict[str, Any], timeout: float = 5.0) -> tuple[dict[str, Any], float]:
        """One dispatch request; the verified answer and how long it took. AssertionError
        when no answer verifies in time (the terminal would let nothing leave)."""
        self.request_id += 1
        rid, nonce = self.request_id, secrets.token_hex(16)
        t0 = time.monotonic()
        payload = auth.dispatch_request(self.dev, {"id": rid, "n": nonce, **request}, self.key)
        self.c.publish(topics.terminal_dispatch(self.dev, self.prefix), payload, qos=1)
        with self._got:
            self._got.wait_for(lambda: rid in self.answers, timeout)
        assert rid in self.answers, f"no answer to dispatch request {request}"
        ans = self.answers[rid]
        assert auth.check_gate_answer(ans, self.dev, nonce, [self.key]), ans
        return ans, time.monotonic() - t0

    def receive(self, items: list[dict[str, Any]], **body: Any) -> int:
        return self.record(
            "goods.in", {"site": self.site, "operator": "OP-01", "items": items, **body}
        )

    def dispatch(
        self, items: list[dict[str, Any]], out: dict[str, Any], **request: Any
    ) -> dict[str, Any]:
        """Ask the gate for ``items``; on ``allow`` record the ``goods.out`` (``out``: its
        other fields). The answer."""
        ids = [str(i["id"]) for i in items]
        keys = ("product_class", "quantity", "unit", "lot", "licence", "party")
        req = {"operator": "OP-01", "items": ids, **{k: out[k] for k in keys if k in out}}
        req.update(request)
        ans, _ = self.ask(req)
        if ans["decision"] == "allow":
            self.record(
                "goods.out",
                {
                    "site": self.site,
                    "operator": "OP-01",
                    "items": items,
                    **out,
                    "gate_seq": ans["seq"],
                },
            )
        return ans

    def count(self, count_id: str, items: list[dict[str, Any]], per_part: int = 12) -> int:
        """A stocktake: ``items`` in parts of ``per_part``, the last part closing it."""
        parts = [items[i : i + per_part] for i in range(0, len(items), per_part)] or [[]]
        for n, chunk in enumerate(parts, start=1):
            self.record(
                "goods.count",
                {
                    "site": self.site,
                    "operator": "OP-02",
                    "count_id": count_id,
                    "part": n,
                    "last": n == len(parts),
                    "items": chunk,
                },
            )
        return len(parts)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()
