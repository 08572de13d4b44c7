"""A small fleet in a real store, for the fleet, alarm and console tests.

Records are made and signed like devices make them (bodies from the simulators, validated
against the schemas) and committed through the store's ``commit`` as the collector does, on
SQLite or PostgreSQL (``kind``, tests/stores.py); the device registry is written by
``hostlib.registry`` as provisioning writes it; agent reports go through the store's
``site_status``. Commit times are "now", so tests that need a device heard from long ago age
its ``device_state.last_seen`` (what the collector wrote at that commit) or pass a later
``now``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from collector.verify import Good
from hostlib.registry import Device, add_devices, revoke, rotate_key
from simulators.records import make_body
from tests.stores import StoreUnderTest, open_store
from wire.canonical import canonical
from wire.envelope import make_record
from wire.schemas import default_validator

KEY = bytes(range(32))
KEY2 = bytes(range(1, 33))
T0 = 1_763_856_000_000  # ms, capture times of the records

# dev -> (site, type, kind, seqs stored); None: provisioned, never sent a record
SEEN: dict[str, tuple[str, str, str, list[int]]] = {
    "ELV-S1-01": ("S1", "elevator-box", "elevator.status", [1, 2, 3, 6, 7, 10]),
    "CYL-S1-01": ("S1", "cylinder-reader", "cylinder.fill", [1, 2, 3, 4]),
    "MKT-S2-01": ("S2", "market-scale", "market.entry", [1, 2]),
}
NEVER: dict[str, tuple[str, str]] = {
    "ELV-S1-02": ("S1", "elevator-box"),  # a site seen, one of its devices not
    "MKT-S3-01": ("S3", "market-scale"),  # a whole site never seen
    "GW-S3": ("S3", "gateway"),
}
UNREGISTERED = "ODD-S2-09"  # sends records, not (any longer) in the registry


@dataclass
class FleetStore:
    sut: StoreUnderTest  # open until :meth:`close` (a PostgreSQL database is dropped then)
    registry: Path
    committed_at: float

    @property
    def path(self) -> Path:
        """The SQLite file (on PostgreSQL where nothing is; ApiContext wants a path)."""
        return self.sut.path

    def close(self) -> None:
        self.sut.close()


def make(dev: str, kind: str, seq: int, site: str, key: bytes = KEY) -> Good:
    ts = T0 + seq * 60_000
    body = make_body(kind, random.Random(f"{dev}/{seq}"), dev, seq, site, now_ms=ts)
    default_validator().validate(kind, body)
    rec = make_record(dev, seq, 1, kind, ts, "ntp", body, key)
    return Good(dev, seq, kind, ts, str(rec["mac"]), canonical(rec).decode())


def build(tmp: Path, kind: str = "sqlite", into: StoreUnderTest | None = None) -> FleetStore:
    """Registry of six devices (one rotated, one revoked), four of them seen, and one
    unregistered device; S1's agent reports a backlog. In a new store of ``kind``, or
    ``into`` one holding more; the caller closes it."""
    registry = tmp / "devices.json"
    devices = [Device(dev, KEY, t, site) for dev, (site, t, _, _) in SEEN.items()]
    devices += [Device(dev, KEY, t, site) for dev, (site, t) in NEVER.items()]
    add_devices(registry, devices, provisioned=int(time.time()))
    rotate_key(registry, "CYL-S1-01", KEY2, from_seq=3, at=int(time.time()))
    revoke(registry, "MKT-S2-01", from_seq=3, at=int(time.time()), reason="stolen")
    sut = into or open_store(kind, tmp)
    try:
        store = sut.store
        for dev, (site, _, rec_kind, seqs) in SEEN.items():
            goods = [
                make(dev, rec_kind, s, site, KEY2 if dev == "CYL-S1-01" and s >= 3 else KEY)
                for s in seqs
            ]
            store.commit(site, f"b-{dev}", goods, [])
        store.commit("S2", "b-odd", [make(UNREGISTERED, "elevator.status", 1, "S2")], [])
        at = time.time()
        store.site_status("S1", {"depth": 42, "oldest_age_s": 30.0, "updated_at": at})
    except BaseException:
        sut.close()
        raise
    return FleetStore(sut, registry, at)


def age(fs: FleetStore, dev: str, seconds: float) -> None:
    """Make ``dev`` last heard ``seconds`` before its last commit."""
    with fs.sut.write() as db:
        db.execute(
            "UPDATE device_state SET last_seen = last_seen - ? WHERE dev = ?", (seconds, dev)
        )
