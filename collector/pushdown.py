"""State the collector pushes down to every site's agent, retained on ``edge/{site}/cmd``:
the cylinder registry, the list of batches whose trading is stopped, the licences that may be
presented at the site, what each of them let leave at its other sites and the recalled lots
(the warehouse dispatch gate), and the site's
device registry (rotated keys, revocations).

Each is a versioned full snapshot, signed for its site with the centre's command key
(:mod:`wire.command`) and an expiry ``ttl_s`` ahead. It is published when its version
changes and again every ``republish_s`` (a broker restarted without persistence forgets
retained messages; re-signing also renews the expiry); an agent applies only a verified
version newer than the one it holds.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector import cylinders, licence_use, licences, markets
from hostlib.db import Db, is_db_error
from hostlib.outage import Outage
from hostlib.registry import Registry
from wire import auth, topics
from wire.command import sign_command

log = logging.getLogger(__name__)

Snapshot = Callable[[Db], dict[str, Any] | None]


class StoreReader(Protocol):
    """Where the snapshots are read: :class:`collector.storedb.StoreDb` is one."""

    def read(self) -> AbstractContextManager[Db]: ...


def stop_list(db: Db) -> dict[str, Any] | None:
    """Every batch whose trading is stopped; the version grows with each order and lift."""
    orders = markets.stops(db)
    return {
        "type": "stop_list",
        "version": markets.stop_list_version(db),
        "batches": [dataclasses.asdict(o) for o in orders],
    }


SNAPSHOTS: tuple[Snapshot, ...] = (
    cylinders.snapshot,
    stop_list,
    licences.licences_snapshot,
    licences.recalls_snapshot,
    licence_use.use_snapshot,
)
# sliced per site before signing: each site gets only what may be presented there
PER_SITE: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "licences": licences.for_site,
    "licence_use": licence_use.for_site,
}


def devices_snapshot(registry: Registry, site: str, gw: str) -> dict[str, Any] | None:
    """The devices of ``site`` for its gateway ``gw``: keys (wrapped under the gateway's
    key) and revocations. None when ``gw`` is not a registered gateway."""
    all_devices = registry.devices()
    gateway = all_devices.get(gw)
    if gateway is None or gateway.type != "gateway":
        return None
    entries: dict[str, Any] = {}
    for d in all_devices.values():
        if d.site != site:
            continue
        keys = d.keys or ((1, d.key),)
        e: dict[str, Any] = {
            "type": d.type,
            "keys": [
                {"from_seq": f, "wrapped": auth.wrap_key(k, gateway.key, d.dev, f)} for f, k in keys
            ],
        }
        if d.revoked_from is not None:
            e["revoked"] = {"from_seq": d.revoked_from}
        entries[d.dev] = e
    return {"type": "devices", "gw": gw, "version": registry.version, "devices": entries}


class PushDown:
    def __init__(
        self,
        store: StoreReader,
        registry: Registry,
        key: Ed25519PrivateKey,
        publish: Callable[[str, bytes], bool],
        prefix: str = "",
        republish_s: float = 300.0,
        ttl_s: float = 7 * 86400.0,
    ) -> None:
        self.prefix = prefix
        self.store = store
        self.registry = registry
        self.key = key
        self.publish = publish
        self.republish_s = republish_s
        self.ttl_s = ttl_s
        self._sent: dict[tuple[str, str], tuple[int, float]] = {}
        self._lock = threading.Lock()  # the service's loop and the API (after a stop) tick
        self.outage = Outage(log, "push-down")  # used under the lock

    def tick(self) -> int:
        """Publish what changed (or is due again); returns how many messages went out."""
        with self._lock:
            return self._tick()

    def _tick(self) -> int:
        try:
            with self.store.read() as db:
                snaps = [s for s in (fn(db) for fn in SNAPSHOTS) if s and s.get("version")]
        except Exception as exc:  # tried every second: said once, then every 5 min
            if not is_db_error(exc):
                raise
            first = (str(exc).strip().splitlines() or [repr(exc)])[0]
            self.outage.failed(f"cannot read the store: {first}")
            return 0
        self.outage.ended()
        self.registry.reload()
        gateways: dict[str, list[str]] = {}
        for d in self.registry.devices().values():
            gateways.setdefault(d.site, [])
            if d.type == "gateway":
                gateways[d.site].append(d.dev)
        now = time.time()
        sent = 0
        for site in sorted(gateways):
            per_site = [PER_SITE[s["type"]](s, site) if s["type"] in PER_SITE else s for s in snaps]
            for gw in sorted(gateways[site]):
                snap = devices_snapshot(self.registry, site, gw)
                if snap and snap["version"]:
                    per_site.append(snap)
            for snap in per_site:
                key = (site, f"{snap['type']}:{snap.get('gw', '')}")
                version, at = self._sent.get(key, (0, 0.0))
                if version == snap["version"] and now - at < self.republish_s:
                    continue
                signed = {**snap, "site": site, "expires": int((now + self.ttl_s) * 1000)}
                if self.publish(topics.site_cmd(site, self.prefix), sign_command(signed, self.key)):
                    self._sent[key] = (int(snap["version"]), now)
                    sent += 1
        return sent
