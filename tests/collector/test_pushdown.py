"""The push-down over either store: the stop list and the cylinder registry a collector
publishes to every site are read from the SQLite file or from PostgreSQL (through
:class:`collector.storedb.StoreDb`), signed with the centre's command key for each site; a
stop or a lift goes out at the next tick with a newer version, an unchanged state does not
go out again, and a store that cannot be read is an outage for the log, never an exception.

What is published is captured where the collector hands it to its MQTT link (the
``publish`` callable); the signatures are checked as an agent checks them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from collector import cylinders, markets
from collector.pushdown import PushDown
from collector.storedb import StoreDb
from hostlib.registry import Registry, add_devices
from tests.collector.test_markets import LOTS, Feed, at, connect, entry_body
from tests.stores import KINDS, StoreUnderTest
from traceedge.brokers import free_port
from traceedge.provision import new_device, site_gateway, site_trust
from wire import topics
from wire.command import load_private_key, new_private_key, verify_command

CYLINDER = {
    "cyl": "C2-0001",
    "owner": "GASCO",
    "manufactured": "2020-01-01",
    "next_inspection": "2027-01-01",
    "medium": "lpg",
    "design_life_years": 8,
    "tare_g": 15_000,
    "max_fill_g": 14_500,
}
SITES = ("MKT01", "MKT02")


class Published:
    """What the collector handed to its MQTT link: (topic, payload), in order."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def __call__(self, topic: str, payload: bytes) -> bool:
        self.messages.append((topic, payload))
        return True

    def take(self, kind: str, key: Any) -> dict[str, dict[str, object]]:
        """The verified commands of type ``kind`` published since the last take, by site."""
        out: dict[str, dict[str, object]] = {}
        now_ms = int(time.time() * 1000)
        for topic, payload in self.messages:
            site = topic.split("/")[1]
            assert topic == topics.site_cmd(site)
            cmd = verify_command(payload, key.public_key(), site, now_ms)
            if cmd["type"] == kind:
                out[site] = cmd
        self.messages.clear()
        return out


def test_stop_list_and_cylinder_registry_reach_every_site(
    any_store: StoreUnderTest, tmp_path: Path
) -> None:
    registry = tmp_path / "registry" / "devices.json"
    add_devices(registry, [new_device("market-scale", s) for s in SITES], int(time.time()))
    trust = site_trust(tmp_path, registry, SITES[0])
    site_gateway(registry, SITES[1], tmp_path / "trust")
    key = load_private_key(trust.command_key)
    feed = Feed(any_store.store)
    feed.commit([feed.make("G", "market.entry", at(5), entry_body(lot)) for lot in LOTS[:2]])
    db = connect(any_store)
    cylinders.import_cylinders(db, [CYLINDER])
    sent = Published()
    store = StoreDb(any_store.path, any_store.url, pool_size=1)
    push = PushDown(store, Registry(registry), key, sent)
    try:
        assert push.tick() > 0
        cyl = sent.take("cylinder_registry", key)
        assert set(cyl) == set(SITES)
        for c in cyl.values():
            assert c["version"] == 1
            entries = c["cylinders"]
            assert isinstance(entries, list)
            assert [(e["cyl"], e["max_fill_g"]) for e in entries] == [("C2-0001", 14_500)]
        # no order yet: no stop list (version 0 is never sent)
        assert push.tick() == 0 and sent.messages == []

        markets.stop_trading(db, LOTS[0].batch_id, "瘦肉精检测阳性", now_ms=at(9))
        assert push.tick() == len(SITES)  # the stop list alone changed
        stop = sent.take("stop_list", key)
        assert set(stop) == set(SITES)
        for site, cmd in stop.items():
            assert cmd["site"] == site and cmd["version"] == 1
            assert cmd["batches"] == [
                {"batch_id": LOTS[0].batch_id, "reason": "瘦肉精检测阳性", "issued_ms": at(9)}
            ]

        markets.lift_stop(db, LOTS[0].batch_id, "复检合格")
        assert push.tick() == len(SITES)
        lifted = sent.take("stop_list", key)
        assert {s: (c["version"], c["batches"]) for s, c in lifted.items()} == {
            s: (2, []) for s in SITES
        }
    finally:
        store.close()
        db.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_store_that_cannot_be_read_is_an_outage_not_an_error(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = tmp_path / "devices.json"
    add_devices(registry, [new_device("market-scale", "MKT01")], int(time.time()))
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing" if kind == "postgres" else None
    store = StoreDb(tmp_path / "no-such-store.sqlite", url, pool_size=1)
    sent = Published()
    push = PushDown(store, Registry(registry), new_private_key(), sent)
    try:
        assert push.tick() == 0 and sent.messages == []
    finally:
        store.close()
    assert "push-down" in caplog.text and "cannot read the store" in caplog.text
