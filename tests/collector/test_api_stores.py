"""The regulator's API over either store: the same answers from SQLite and PostgreSQL for
the records, devices and summary routes (tests/stores.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from collector.api import make_app
from collector.verify import Good
from tests.stores import StoreUnderTest


def _good(dev: str, seq: int) -> Good:
    mac = f"{dev}-{seq}".encode().hex().ljust(64, "0")[:64]
    text = (
        f'{{"body":{{"reg":"R1"}},"dev":"{dev}","kind":"elevator.status",'
        f'"mac":"{mac}","seq":{seq}}}'
    )
    return Good(dev, seq, "elevator.status", 1_763_900_000_000 + seq, mac, text)


def test_records_devices_and_stats(any_store: StoreUnderTest) -> None:
    any_store.store.commit("S1", "b1", [_good("E1", s) for s in (1, 2, 4)], [])
    client = TestClient(
        make_app(any_store.ctx()),
        raise_server_exceptions=True,
        headers=any_store.admin_headers(),
    )
    stats = client.get("/stats")
    assert stats.status_code == 200, stats.text
    assert (stats.json()["records"], stats.json()["gaps"]) == (3, 1)
    rec = client.get("/records/E1/2")
    assert rec.status_code == 200, rec.text
    assert rec.json()["seq"] == 2
    assert client.get("/records/E1/3").status_code == 404
    devices = client.get("/devices")
    assert devices.status_code == 200, devices.text
    (d,) = devices.json()
    assert (d["dev"], d["watermark"], d["missing"], d["gaps"]) == ("E1", 2, 1, [[3, 3]])
    assert client.get("/stats", headers={"Authorization": "Bearer te_x_y"}).status_code == 401
