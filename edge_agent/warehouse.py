"""The warehouse at the agent: licences and recalled lots pushed down by the centre, the
site's stock kept from its own records, and the dispatch gate answering from them, offline.

Stock (``wh_items`` in the outbox database): an item enters with a verified ``goods.in``
record (an outer package with its inner ids), leaves with an allowed dispatch (written in
the same transaction as the ``goods.dispatch`` record, so an item can never leave twice on a
restart) or a ``goods.out`` record, and a ``goods.pack`` record packs or unpacks. An item
received again after it left (a return) is back in stock.

The gate (:class:`DispatchGate`) works as the fill gate (:mod:`edge_agent.gate`): requests
on ``t/{dev}/dispatch``, each decision a ``goods.dispatch`` record of the gateway's identity
committed before the answer, the answer sealed with the terminal's key
(:func:`wire.auth.gate_answer`); a request from an unknown device gets no answer, from a
revoked device, another type of device, not sealed with the terminal's key
(:func:`wire.auth.dispatch_request`: an allowed dispatch changes the stock), with a nonce
already decided (a replay), or without a valid nonce a sealed ``deny`` with the error,
counted and quarantined.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

from edge_agent.dispatchgate import (
    LICENSED_CLASSES,
    MAX_REQUEST_BYTES,
    DispatchRequest,
    Stock,
    decide,
    dispatch_body,
    parse_request,
)
from edge_agent.fillgate import GateRequestError, NonceError
from edge_agent.gate import open_call
from edge_agent.outbox import Incoming, Outbox
from hostlib.registry import Device, Registry
from hostlib.sqlite import set_meta
from wire import auth
from wire.canonical import canonical
from wire.envelope import make_record
from wire.tracecode import CST_OFFSET_MIN, local_day

log = logging.getLogger(__name__)

OWN_SEQ = "own_seq"  # shared with the fill gate: one identity, one sequence
TERMINAL_TYPE = "warehouse-terminal"
LICENCE_VERSION = "licence_registry_version"
RECALL_VERSION = "recall_list_version"
USE_VERSION = "licence_use_version"
NONCE_DAYS = 30

SCHEMA = """
CREATE TABLE IF NOT EXISTS wh_licences (licence TEXT PRIMARY KEY, entry TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS wh_recalls (lot TEXT PRIMARY KEY, entry TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS wh_items (
    id TEXT PRIMARY KEY,
    parent TEXT,
    lot TEXT,
    in_ms INTEGER,
    out_ms INTEGER
);
CREATE INDEX IF NOT EXISTS wh_items_parent ON wh_items(parent) WHERE parent IS NOT NULL;
CREATE TABLE IF NOT EXISTS wh_nonces (
    dev TEXT NOT NULL,
    n TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (dev, n)
);
CREATE TABLE IF NOT EXISTS wh_licence_use (
    licence TEXT PRIMARY KEY,
    unit TEXT NOT NULL,
    used INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS wh_licence_elsewhere (
    licence TEXT PRIMARY KEY,
    unit TEXT NOT NULL,
    used INTEGER NOT NULL
);
"""


class Warehouse:
    """Licences, recalls and stock of this site, in the outbox database."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._lock = threading.Lock()
        with outbox.atomic() as db:
            for statement in _statements():
                db.execute(statement)
        self.licence_version = int(outbox.get_meta(LICENCE_VERSION) or 0)
        self.recall_version = int(outbox.get_meta(RECALL_VERSION) or 0)
        self.use_version = int(outbox.get_meta(USE_VERSION) or 0)
        self.recalled = self._recalled()

    # -- pushed down -------------------------------------------------------------------------

    def apply_licences(self, version: int, entries: list[dict[str, Any]]) -> bool:
        """Replace the licences with a newer snapshot; an older or equal one is ignored."""
        with self._lock:
            if version <= self.licence_version:
                return False
            with self.outbox.atomic() as db:
                db.execute("DELETE FROM wh_licences")
                db.executemany(
                    "INSERT INTO wh_licences(licence, entry) VALUES (?, ?)",
                    [(str(e["licence"]), json.dumps(e, ensure_ascii=False)) for e in entries],
                )
                set_meta(db, {LICENCE_VERSION: str(version)})
            self.licence_version = version
            return True

    def apply_recalls(self, version: int, lots: list[dict[str, Any]]) -> bool:
        with self._lock:
            if version <= self.recall_version:
                return False
            with self.outbox.atomic() as db:
                db.execute("DELETE FROM wh_recalls")
                db.executemany(
                    "INSERT INTO wh_recalls(lot, entry) VALUES (?, ?)",
                    [(str(e["lot"]), json.dumps(e, ensure_ascii=False)) for e in lots],
                )
                set_meta(db, {RECALL_VERSION: str(version)})
            self.recall_version = version
            self.recalled = frozenset(str(e["lot"]) for e in lots)
            return True

    def apply_use(self, version: int, entries: list[dict[str, Any]]) -> bool:
        """Replace what the licences of this site let leave at their other sites (the
        centre's ``licence_use`` push) with a newer snapshot; an older or equal one is
        ignored. Entries ``{"licence", "unit", "elsewhere"}``."""
        rows = []
        for e in entries:
            used = e["elsewhere"]
            if not isinstance(used, int) or isinstance(used, bool) or used < 0:
                raise ValueError(f"licence {e['licence']}: elsewhere must be an integer >= 0")
            rows.append((str(e["licence"]), str(e["unit"]), used))
        with self._lock:
            if version <= self.use_version:
                return False
            with self.outbox.atomic() as db:
                db.execute("DELETE FROM wh_licence_elsewhere")
                db.executemany(
                    "INSERT INTO wh_licence_elsewhere(licence, unit, used) VALUES (?, ?, ?)", rows
                )
                set_meta(db, {USE_VERSION: str(version)})
            self.use_version = version
            return True

    def used_elsewhere(self, number: str, unit: str) -> int:
        """What ``number`` let leave at its other sites, in ``unit``, as last pushed."""
        with self.outbox.atomic() as db:
            row = db.execute(
                "SELECT used FROM wh_licence_elsewhere WHERE licence = ? AND unit = ?",
                (number, unit),
            ).fetchone()
        return int(row[0]) if row else 0

    def _recalled(self) -> frozenset[str]:
        with self.outbox.atomic() as db:
            return frozenset(r[0] for r in db.execute("SELECT lot FROM wh_recalls"))

    def licence(self, number: str) -> dict[str, Any] | None:
        with self.outbox.atomic() as db:
            row = db.execute(
                "SELECT entry FROM wh_licences WHERE licence = ?", (number,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def licences_known(self) -> int:
        with self.outbox.atomic() as db:
            return int(db.execute("SELECT COUNT(*) FROM wh_licences").fetchone()[0])

    def used(self, number: str, unit: str) -> int:
        with self.outbox.atomic() as db:
            row = db.execute(
                "SELECT used FROM wh_licence_use WHERE licence = ? AND unit = ?", (number, unit)
            ).fetchone()
        return int(row[0]) if row else 0

    # -- stock -------------------------------------------------------------------------------

    def stock(self, ids: Collection[str]) -> Stock:
        """What is known of ``ids`` and the inner packages they hold."""
        in_stock: set[str] = set()
        dispatched: set[str] = set()
        inner: dict[str, list[str]] = {}
        lots: dict[str, str] = {}
        with self.outbox.atomic() as db:
            for item in ids:
                kids = [
                    r[0] for r in db.execute("SELECT id FROM wh_items WHERE parent = ?", (item,))
                ]
                if kids:
                    inner[item] = kids
                for i in [item, *kids]:
                    row = db.execute(
                        "SELECT lot, out_ms FROM wh_items WHERE id = ?", (i,)
                    ).fetchone()
                    if row is None:
                        continue
                    (dispatched if row[1] is not None else in_stock).add(i)
                    if row[0]:
                        lots[i] = str(row[0])
        return Stock(in_stock, dispatched, inner, lots)

    def in_stock(self) -> list[str]:
        """Every item id in stock now (tests, status)."""
        with self.outbox.atomic() as db:
            return [r[0] for r in db.execute("SELECT id FROM wh_items WHERE out_ms IS NULL")]

    def observe(self, kind: str, body: dict[str, Any], ts: int) -> None:
        """Keep the stock from a verified record of a warehouse terminal of this site."""
        with self.outbox.atomic() as db:
            if kind == "goods.in":
                lot = body.get("lot")
                for it in body.get("items", []):
                    _receive(db, str(it["id"]), None, lot, ts)
                    for i in it.get("inner", []):
                        _receive(db, str(i), str(it["id"]), lot, ts)
            elif kind == "goods.out":
                ids = [str(it["id"]) for it in body.get("items", [])]
                ids += [str(i) for it in body.get("items", []) for i in it.get("inner", [])]
                _leave(db, ids, ts)
            elif kind == "goods.pack":
                parent, kids = str(body["parent"]["id"]), [str(c) for c in body["children"]]
                if body["action"] == "pack":
                    _receive(db, parent, None, None, ts, keep=True)
                    db.executemany(
                        "UPDATE wh_items SET parent = ? WHERE id = ?", [(parent, k) for k in kids]
                    )
                else:
                    db.executemany(
                        "UPDATE wh_items SET parent = NULL WHERE id = ? AND parent = ?",
                        [(k, parent) for k in kids],
                    )
                    db.execute("DELETE FROM wh_items WHERE id = ? AND out_ms IS NULL", (parent,))

    def on_records(self, items: list[Incoming]) -> None:
        """Intake hook: every stored record; goods.in/out/pack change the stock."""
        for item in items:
            if item.kind not in ("goods.in", "goods.out", "goods.pack"):
                continue
            try:
                rec = json.loads(item.rec)
                self.observe(item.kind, rec["body"], int(rec["ts"]))
            except (ValueError, KeyError, TypeError, sqlite3.Error) as exc:  # never kills intake
                log.error("warehouse: cannot keep stock from %s/%d: %s", item.dev, item.seq, exc)

    def nonce_seen(self, dev: str, nonce: str) -> bool:
        with self.outbox.atomic() as db:
            row = db.execute(
                "SELECT 1 FROM wh_nonces WHERE dev = ? AND n = ?", (dev, nonce)
            ).fetchone()
        return row is not None

    def commit_nonce(self, db: sqlite3.Connection, dev: str, nonce: str) -> None:
        """In the decision record's transaction: this request was decided, never again.
        Nonces older than ``NONCE_DAYS`` are forgotten (a request is answered in seconds)."""
        now = time.time()
        db.execute(
            "INSERT OR IGNORE INTO wh_nonces(dev, n, at) VALUES (?, ?, ?)", (dev, nonce, now)
        )
        if int(now) % 97 == 0:
            db.execute("DELETE FROM wh_nonces WHERE at < ?", (now - NONCE_DAYS * 86400,))

    def commit_dispatch(
        self, db: sqlite3.Connection, req: DispatchRequest, stock: Stock, ts: int
    ) -> None:
        """In the decision record's transaction: the items (and their inner ones) left."""
        ids = list(req.items) + [i for it in req.items for i in stock.inner.get(it, ())]
        _leave(db, ids, ts)
        if req.licence is not None:
            db.execute(
                "INSERT INTO wh_licence_use(licence, unit, used) VALUES (?, ?, ?) "
                "ON CONFLICT(licence) DO UPDATE SET used = used + excluded.used "
                "WHERE unit = excluded.unit",
                (req.licence, req.unit, req.quantity),
            )


def _statements() -> list[str]:
    return [s.strip() for s in SCHEMA.split(";") if s.strip()]


def _receive(
    db: sqlite3.Connection, item: str, parent: str | None, lot: object, ts: int, keep: bool = False
) -> None:
    lot_s = str(lot) if isinstance(lot, str) else None
    if keep:
        db.execute(
            "INSERT INTO wh_items(id, parent, lot, in_ms) VALUES (?, NULL, ?, ?) "
            "ON CONFLICT(id) DO NOTHING",
            (item, lot_s, ts),
        )
        return
    db.execute(
        "INSERT INTO wh_items(id, parent, lot, in_ms, out_ms) VALUES (?, ?, ?, ?, NULL) "
        "ON CONFLICT(id) DO UPDATE SET parent = excluded.parent, lot = excluded.lot, "
        "in_ms = excluded.in_ms, out_ms = NULL",
        (item, parent, lot_s, ts),
    )


def _leave(db: sqlite3.Connection, ids: list[str], ts: int) -> None:
    db.executemany(
        "INSERT INTO wh_items(id, in_ms, out_ms) VALUES (?, NULL, ?) "
        "ON CONFLICT(id) DO UPDATE SET out_ms = excluded.out_ms WHERE out_ms IS NULL",
        [(i, ts) for i in ids],
    )


class DispatchGate:
    def __init__(
        self,
        outbox: Outbox,
        warehouse: Warehouse,
        registry: Registry,
        identity: Device | None,
        site: str,
        answer: Callable[[str, bytes], bool],
        boot: Callable[[], int],
        prefix: str = "",
        utc_offset_minutes: int = CST_OFFSET_MIN,
        licensed_classes: Collection[str] = LICENSED_CLASSES,
    ) -> None:
        self.outbox = outbox
        self.warehouse = warehouse
        self.registry = registry
        self.identity = identity
        self.site = site
        self.answer = answer
        self.boot = boot
        self.prefix = prefix
        self.offset_min = utc_offset_minutes
        self.licensed_classes = tuple(licensed_classes)
        self.decisions = {"allow": 0, "deny": 0, "error": 0, "refused": 0}
        self._lock = threading.Lock()  # one decision at a time: stock is read, then written

    def today(self) -> str:
        return local_day(int(time.time() * 1000), self.offset_min)

    def handle(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self._handle(topic, payload)

    def _handle(self, topic: str, payload: bytes) -> None:
        ver = self.warehouse.licence_version
        call = open_call(
            topic, payload, self.prefix, self.registry, self.outbox, ver, MAX_REQUEST_BYTES,
            self.answer, self._refuse,
        )  # fmt: skip
        if call is None:
            return
        dev, device, obj, rid, nonce = call.dev, call.device, call.obj, call.rid, call.nonce
        reply = call.reply
        if device.type != TERMINAL_TYPE:
            self._refuse(topic, payload, "gate_wrong_device", f"{dev} is a {device.type}")
            reply("deny", [], None, f"a {device.type} cannot dispatch goods")
            return
        keys = [k for _, k in device.keys[-2:]] or [device.key]
        if not auth.check_dispatch_request(obj, dev, keys):
            # an allowed dispatch changes the stock: only a request the terminal sealed
            self._refuse(topic, payload, "gate_mac", f"{dev}: request not sealed by it")
            reply("deny", [], None, "refused: request not sealed with the device key")
            return
        if rid is not None and nonce and self.warehouse.nonce_seen(dev, nonce):
            self._refuse(topic, payload, "gate_replay", f"{dev}: nonce {nonce} decided before")
            reply("deny", [], None, "refused: this request was decided before")
            return
        try:
            req = parse_request(obj)
        except NonceError as exc:
            self._refuse(topic, payload, "gate_nonce", str(exc))
            reply("deny", [], None, f"refused: {exc}")
            return
        except GateRequestError as exc:
            self.decisions["error"] += 1
            reply("deny", [], None, f"bad request: {exc}")
            return
        wh = self.warehouse
        licence = wh.licence(req.licence) if req.licence else None
        used = wh.used(req.licence, req.unit) if req.licence else 0
        elsewhere = wh.used_elsewhere(req.licence, req.unit) if req.licence else 0
        stock = wh.stock(req.items)
        decision = decide(
            req, licence, used, stock, wh.recalled, self.today(), self.licensed_classes, elsewhere
        )
        if self.identity is None:
            log.error("dispatch gate: no gateway identity configured; cannot record, denying")
            self.decisions["error"] += 1
            reply("deny", decision.reasons, None, "gate has no identity")
            return
        use = (used, elsewhere, wh.use_version) if licence is not None else None
        body = dispatch_body(req, self.site, dev, decision, ver, wh.recall_version, use)
        ident = self.identity
        now = int(time.time() * 1000)

        def build(seq: int) -> Incoming:
            rec = make_record(
                ident.dev, seq, self.boot(), "goods.dispatch", now, "ntp", body, ident.key
            )
            return Incoming(ident.dev, seq, "goods.dispatch", canonical(rec))

        def after(db: sqlite3.Connection, seq: int) -> None:
            wh.commit_nonce(db, dev, req.nonce)
            if decision.allowed:
                wh.commit_dispatch(db, req, stock, now)

        res = self.outbox.add_own(OWN_SEQ, build, after)
        if not res.stored:
            self.decisions["error"] += 1
            reply("deny", decision.reasons, None, "outbox full: not recorded")
            return
        verdict = "allow" if decision.allowed else "deny"
        self.decisions[verdict] += 1
        reply(verdict, decision.reasons, res.stored[0].seq, None)
        log.log(
            logging.DEBUG if decision.allowed else logging.INFO,
            "dispatch gate: %s %d item(s) for %s (%s)",
            verdict,
            len(req.items),
            dev,
            ",".join(decision.reasons) or "ok",
        )

    def _refuse(self, topic: str, payload: bytes, reason: str, detail: str) -> None:
        self.decisions["refused"] += 1
        self.outbox.quarantine([(topic, reason, detail, payload)])
        log.warning("dispatch gate: refused a request on %s: %s", topic, detail)
