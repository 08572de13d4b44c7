"""Forwarder: the store's records → the city platform, each batch under a stable
``Idempotency-Key``; retried with capped exponential backoff for as long as it takes
(hours of platform downtime only grow the backlog, which lives in the store)."""

from __future__ import annotations

import logging
import threading

import httpx

from collector.store import Store
from traceedge.backoff import Backoff
from traceedge.settings import PlatformSettings

log = logging.getLogger(__name__)

LEASE_S = 60.0


class Forwarder:
    def __init__(self, store: Store, settings: PlatformSettings) -> None:
        self.store = store
        self.settings = settings
        self.backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)
        self.client = httpx.Client(timeout=settings.timeout_s)
        self.last_error = ""
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="forwarder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self.settings.timeout_s + 5)
        self.client.close()

    def poke(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self.store.claim_forward(self.settings.batch_records, LEASE_S)
            except Exception:
                log.exception("forwarder: cannot read the store")
                self._stop.wait(1.0)
                continue
            if batch is None:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            if self.send(batch.key, batch.records):
                self.store.forwarded(batch.key)
                self.backoff.reset()
            else:
                self.store.forward_failed(batch.key)
                delay = self.backoff.next_delay()
                log.warning("forwarder: %s; retrying in %.1f s", self.last_error, delay)
                self._stop.wait(delay)

    def send(self, key: str, records: list[dict[str, object]]) -> bool:
        """POST one batch; True only on a 2xx reply (a duplicate key is a 2xx too)."""
        try:
            r = self.client.post(
                self.settings.url + "/records",
                json={"records": records},
                headers={"Idempotency-Key": key},
            )
        except httpx.HTTPError as exc:
            self.last_error = f"platform unreachable: {exc.__class__.__name__}: {exc}"
            return False
        if 200 <= r.status_code < 300:
            self.last_error = ""
            return True
        self.last_error = f"platform answered {r.status_code}: {r.text[:200]}"
        return False
