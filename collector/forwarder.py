"""Forwarder: the store's records → the city platform, each batch under a stable
``Idempotency-Key``; retried with capped exponential backoff for as long as it takes
(hours of platform downtime only grow the backlog, which lives in the store)."""

from __future__ import annotations

import json
import logging
import os
import threading

import httpx

from collector.settings import PlatformSettings
from collector.store import Store
from hostlib.backoff import Backoff

log = logging.getLogger(__name__)

LEASE_S = 60.0


class Forwarder:
    def __init__(self, store: Store, settings: PlatformSettings) -> None:
        self.store = store
        self.settings = settings
        self.backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)
        self.client = httpx.Client(timeout=settings.timeout_s)
        self.last_error = ""
        self.epcis_errors = 0
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

    def _epcis(self, key: str, records: list[dict[str, object]]) -> dict[str, object]:
        from collector.epcis import EpcisError, capture_document, record_to_event

        events = []
        for rec in records:
            try:
                events.append(record_to_event(rec, self.settings.timezone))
            except EpcisError as exc:  # stored, but not expressible: kept, reported
                self.epcis_errors += 1
                log.error(
                    "forwarder: %s/%s has no EPCIS event: %s", rec.get("dev"), rec.get("seq"), exc
                )
        return capture_document(events)

    def _archive(self, key: str, doc: dict[str, object]) -> None:
        folder = self.settings.epcis_archive
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.tmp"
        tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, folder / f"{key}.jsonld")

    def send(self, key: str, records: list[dict[str, object]]) -> bool:
        """POST one batch; True only on a 2xx reply (a duplicate key is a 2xx too)."""
        epcis = self.settings.format == "epcis"
        doc: dict[str, object] = self._epcis(key, records) if epcis else {"records": records}
        try:
            r = self.client.post(
                self.settings.url + ("/capture" if epcis else "/records"),
                json=doc,
                headers={"Idempotency-Key": key},
            )
        except httpx.HTTPError as exc:
            self.last_error = f"platform unreachable: {exc.__class__.__name__}: {exc}"
            return False
        if 200 <= r.status_code < 300:
            self.last_error = ""
            if epcis:
                self._archive(key, doc)
            return True
        self.last_error = f"platform answered {r.status_code}: {r.text[:200]}"
        return False
