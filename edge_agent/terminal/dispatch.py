"""The warehouse terminal's side of the agent's dispatch gate (``edge_agent/dispatchgate.py``).

:meth:`DispatchClient.ask` seals a request (``wire.auth.dispatch_request``: this device,
its newest key, a request id unique across boots and a fresh 16-byte random nonce ``n``),
publishes it on ``t/{dev}/dispatch`` (again and again while the link cannot take it) and
waits at most ``timeout_s`` for the answer. Only a ``t: gate`` answer that names the
pending request's id and that ``wire.auth.check_gate_answer`` verifies (this device, this
nonce, the device's newest two keys) counts; anything else is counted and ignored: an
answer for no pending request or another id (``late``), one that does not verify or
carries no reasons list (``forged``). No valid answer within the timeout returns None:
nothing leaves (the firmware's ``te.gate``, on the host).

One request at a time (the operator waits for it); :meth:`on_answer` runs on the MQTT
thread and hands the answer to the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hostlib.registry import Device
from wire import auth

NONCE_BYTES = 16
RESEND_S = 0.1


@dataclass
class _Pending:
    rid: int
    nonce: str
    loop: asyncio.AbstractEventLoop
    answer: asyncio.Future[dict[str, Any]] = field(repr=False)


class DispatchClient:
    def __init__(self, device: Device, send: Callable[[bytes], bool], boot: int) -> None:
        self.device = device
        self.send = send
        self.next_id = (boot & 0xFFFFF) << 16  # unique across reboots: boot in the high bits
        self._lock = threading.Lock()
        self._pending: _Pending | None = None
        self.counters = {"asked": 0, "answered": 0, "timeouts": 0, "late": 0, "forged": 0}

    async def ask(self, fields: dict[str, Any], timeout_s: float) -> dict[str, Any] | None:
        """The verified answer (``decision`` allow/deny, ``reasons``, ``seq``) or None when
        none came in time."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self.next_id += 1
            p = _Pending(self.next_id, secrets.token_hex(NONCE_BYTES), loop, loop.create_future())
            self._pending = p
            self.counters["asked"] += 1
        msg = dict(fields, id=p.rid, n=p.nonce)
        payload = auth.dispatch_request(self.device.dev, msg, self.device.recent_keys()[0])
        deadline = time.monotonic() + timeout_s
        try:
            while not self.send(payload):
                if time.monotonic() + RESEND_S >= deadline:
                    raise TimeoutError
                await asyncio.sleep(RESEND_S)
            left = max(0.0, deadline - time.monotonic())
            answer = await asyncio.wait_for(asyncio.shield(p.answer), left)
        except TimeoutError:
            with self._lock:
                self.counters["timeouts"] += 1
            return None
        finally:
            with self._lock:
                self._pending = None
        with self._lock:
            self.counters["answered"] += 1
        return answer

    def on_answer(self, msg: dict[str, object]) -> bool:
        """Take a parsed ``t: gate`` message (any thread); True if it answered the request."""
        with self._lock:
            p = self._pending
            if p is None or msg.get("id") != p.rid:
                self.counters["late"] += 1
                return False
            good = auth.check_gate_answer(
                msg, self.device.dev, p.nonce, self.device.recent_keys()
            ) and isinstance(msg.get("reasons"), list)
            if not good:
                self.counters["forged"] += 1
                return False
            self._pending = None
        with contextlib.suppress(RuntimeError):  # the loop closed: the terminal is stopping
            p.loop.call_soon_threadsafe(_settle, p.answer, dict(msg))
        return True

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f"dispatch_{k}": v for k, v in self.counters.items()}


def _settle(fut: asyncio.Future[dict[str, Any]], msg: dict[str, Any]) -> None:
    if not fut.done():
        fut.set_result(msg)
