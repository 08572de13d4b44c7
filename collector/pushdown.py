"""State the collector pushes down to every site's agent, retained on ``edge/{site}/cmd``:
the cylinder registry and the list of batches whose trading is stopped.

Each is a versioned full snapshot. It is published when its version changes and again every
``republish_s`` (a broker restarted without persistence forgets retained messages); an
agent applies only a version newer than the one it holds.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from collector import cylinders, markets
from hostlib.sqlite import open_ro
from wire import topics

log = logging.getLogger(__name__)

Snapshot = Callable[[sqlite3.Connection], dict[str, Any] | None]


def stop_list(db: sqlite3.Connection) -> dict[str, Any] | None:
    """Every batch whose trading is stopped; the version grows with each new order."""
    orders = markets.stops(db)
    return {
        "type": "stop_list",
        "version": len(orders),
        "batches": [dataclasses.asdict(o) for o in orders],
    }


SNAPSHOTS: tuple[Snapshot, ...] = (cylinders.snapshot, stop_list)


class PushDown:
    def __init__(
        self,
        db_path: str,
        sites: Callable[[], set[str]],
        publish: Callable[[str, bytes], bool],
        prefix: str = "",
        republish_s: float = 300.0,
    ) -> None:
        self.prefix = prefix
        self.db_path = db_path
        self.sites = sites
        self.publish = publish
        self.republish_s = republish_s
        self._sent: dict[tuple[str, str], tuple[int, float]] = {}

    def tick(self) -> int:
        """Publish what changed (or is due again); returns how many messages went out."""
        try:
            with open_ro(self.db_path) as db:
                snaps = [s for s in (fn(db) for fn in SNAPSHOTS) if s and s.get("version")]
        except sqlite3.Error as exc:
            log.warning("push-down: cannot read the store: %s", exc)
            return 0
        now = time.time()
        sent = 0
        for site in sorted(self.sites()):
            for snap in snaps:
                key = (site, str(snap["type"]))
                version, at = self._sent.get(key, (0, 0.0))
                if version == snap["version"] and now - at < self.republish_s:
                    continue
                if self.publish(topics.site_cmd(site, self.prefix), json.dumps(snap).encode()):
                    self._sent[key] = (int(snap["version"]), now)
                    sent += 1
        return sent
