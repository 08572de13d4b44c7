"""Forwarder: the store's records → the city platform, each document under an
``Idempotency-Key`` naming exactly the records it carries; retried with capped exponential
backoff for as long as it takes (hours of platform downtime only grow the backlog, which
lives in the store).

A record is marked forwarded only when a document carrying it was accepted (2xx). With
``format = "epcis"`` a record the EPCIS mapper refuses is *held* (:meth:`Store.hold`: the
reason kept, an alarm raised, counted) and the rest of its batch goes on; a batch of which
nothing maps posts nothing. Held records are tried again when a forwarder starts (a new
build or new settings may express them) and when the operator runs ``traceedge collector
forward-retry``; a refusal depends only on the record, the build and the settings, so
nothing retries them on a timer. docs/epcis.md has the operator's side.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from collector.epcis import EpcisError, capture_document, record_to_event
from collector.settings import PlatformSettings
from collector.store import ForwardBatch, Store
from hostlib.backoff import Backoff
from hostlib.outage import Outage

log = logging.getLogger(__name__)

LEASE_S = 60.0

Mapper = Callable[[Mapping[str, Any], str], dict[str, Any]]


class Forwarder:
    def __init__(
        self, store: Store, settings: PlatformSettings, mapper: Mapper = record_to_event
    ) -> None:
        """``mapper``: a record and the time zone → its EPCIS event, raising
        :class:`EpcisError` when it cannot; the mapping of this build unless given."""
        self.store = store
        self.settings = settings
        self.mapper = mapper
        self.backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)
        self.client = httpx.Client(timeout=settings.timeout_s)
        self.last_error = ""
        self.outage = Outage(log, "forwarder")  # a platform down for hours: a few lines
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="forwarder", daemon=True)

    def start(self) -> None:
        """Make every held record due for a retry, then start forwarding."""
        n = self.store.retry_held()
        if n:
            log.warning("forwarder: %d held records; trying them again", n)
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.thread.join(timeout=self.settings.timeout_s + 5)
        self.client.close()

    def poke(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        limit = self.settings.batch_records
        while not self._stop.is_set():
            try:
                # Held records first: a retry asked for is made at once, even under a backlog.
                batch = self.store.claim_held(limit, LEASE_S) or self.store.claim_forward(
                    limit, LEASE_S
                )
            except Exception:
                log.exception("forwarder: cannot read the store")
                self._stop.wait(1.0)
                continue
            if batch is None:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            try:
                delivered = self.deliver(batch)
            except Exception as exc:  # a store error, a bug: its lease runs out, it comes again
                log.exception("forwarder: batch %s failed", batch.lease or "of held records")
                self.last_error = f"batch failed: {exc.__class__.__name__}: {exc}"
                delivered = False
            if delivered:
                self.backoff.reset()
                self.outage.ended()
            else:
                delay = self.backoff.next_delay()
                self.outage.failed(self.last_error)
                log.debug("forwarder: retrying in %.1f s", delay)
                self._stop.wait(delay)

    def deliver(self, batch: ForwardBatch) -> bool:
        """Hold what cannot be sent, post the rest, settle the batch; ``False`` (the batch
        released for another attempt) when the platform did not accept it."""
        doc, sent, held = self.document(batch)
        if held:
            self.store.hold(batch, held)
        if not sent:
            self.store.forwarded(batch, ())
            return True
        key = batch.delivery_key(sent)
        if not self.post(key, doc):
            self.store.forward_failed(batch)
            return False
        self.store.forwarded(batch, sent)
        if not batch.lease:
            log.info("forwarder: %d held records delivered", len(sent))
        return True

    def document(self, batch: ForwardBatch) -> tuple[dict[str, Any], list[int], dict[int, str]]:
        """The document for ``batch``, the row ids it carries, and the row ids it cannot
        carry with why."""
        if self.settings.format != "epcis":
            return {"records": batch.records}, list(batch.ids), {}
        events, sent, held = [], [], {}
        for rid, rec in zip(batch.ids, batch.records, strict=True):
            try:
                events.append(self.mapper(rec, self.settings.timezone))
            except EpcisError as exc:
                held[rid] = str(exc)
                log.error("forwarder: %s/%s held, no EPCIS event: %s", rec["dev"], rec["seq"], exc)
                continue
            sent.append(rid)
        return (capture_document(events) if events else {}), sent, held

    def _archive(self, key: str, doc: Mapping[str, Any]) -> None:
        folder = self.settings.epcis_archive
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.tmp"
        tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, folder / f"{key}.jsonld")

    def post(self, key: str, doc: Mapping[str, Any]) -> bool:
        """POST one document; True only on a 2xx reply (a duplicate key is a 2xx too)."""
        epcis = self.settings.format == "epcis"
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
