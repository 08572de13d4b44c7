"""The agent's copy of the cylinder registry, pushed down by the collector and kept in the
outbox database so the fill gate answers after a restart with the network down."""

from __future__ import annotations

import json
import threading
from typing import Any

from edge_agent.outbox import Outbox
from hostlib.sqlite import set_meta

SCHEMA = "CREATE TABLE IF NOT EXISTS cylinder_registry (cyl TEXT PRIMARY KEY, entry TEXT NOT NULL)"


class RegistryCache:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._lock = threading.Lock()
        with outbox.atomic() as db:
            db.execute(SCHEMA)
            rows = db.execute("SELECT cyl, entry FROM cylinder_registry").fetchall()
        self.entries: dict[str, dict[str, Any]] = {c: json.loads(e) for c, e in rows}
        self.version = int(outbox.get_meta("cylinder_registry_version") or 0)

    def get(self, cyl: str) -> dict[str, Any] | None:
        return self.entries.get(cyl)

    def apply(self, version: int, cylinders: list[dict[str, Any]]) -> bool:
        """Replace the registry with a newer snapshot; an older or equal one is ignored."""
        with self._lock:
            if version <= self.version:
                return False
            with self.outbox.atomic() as db:
                db.execute("DELETE FROM cylinder_registry")
                db.executemany(
                    "INSERT INTO cylinder_registry(cyl, entry) VALUES (?, ?)",
                    [(c["cyl"], json.dumps(c)) for c in cylinders],
                )
                set_meta(db, {"cylinder_registry_version": str(version)})
            self.entries = {c["cyl"]: c for c in cylinders}
            self.version = version
            return True
