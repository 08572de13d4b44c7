"""The fleet routes over one real store (a market day, a small fleet with a never-seen site,
alarms and quarantine the store raised itself), with real tokens of each role and scope:
what each sees, what it may do, and what acknowledging leaves in the audit log. The same
scenario on the SQLite file and on PostgreSQL (tests/stores.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from collector import audit, sites
from collector.api import make_app
from collector.tokens import TokenStore
from collector.verify import Bad
from tests.collector import fleetdata
from tests.collector.test_markets import MARKET, SITE, STOPPED_LOT, run_market_day
from tests.stores import KINDS, StoreUnderTest, store_of

CLI = audit.Actor("cli:test", "admin", "local")
# district 330106 holds S1, S3 and the market's site; 330108 holds S2
SITES = [
    {"site": "S1", "name": "文三路站", "district": "330106", "kind": "elevator"},
    {"site": "S2", "name": "拱墅站", "district": "330108", "kind": "market"},
    {"site": "S3", "name": "新站", "district": "330106", "kind": "market"},
    {
        "site": SITE,
        "name": "文新农贸市场",
        "district": "330106",
        "kind": "market",
        "market": MARKET,
    },
]
SCOPES = {
    "admin": ("admin", "all"),
    "west": ("inspector", "district:330106"),
    "north": ("inspector", "district:330108"),
    "market": ("operator", f"market:{MARKET}"),
    "other_market": ("operator", "market:M999"),
    "monitor": ("monitor", "all"),
}


@dataclass
class Api:
    client: TestClient
    sut: StoreUnderTest
    tokens: dict[str, str]

    def get(self, who: str | None, url: str, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.get(url, headers=headers, **kw)

    def post(self, who: str | None, url: str, body: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.post(url, headers=headers, json=body)


@pytest.fixture(scope="module", params=KINDS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("apifleet")
    sut = store_of(request.param, tmp)
    try:
        run_market_day(sut)
        fs = fleetdata.build(tmp, into=sut)  # the same store
        store = sut.store
        other = fleetdata.make("ELV-S1-01", "elevator.status", 1, "S1", key=fleetdata.KEY2)
        store.commit("S1", "c1", [other], [])  # conflict alarm at S1
        other = fleetdata.make("MKT-S2-01", "market.entry", 2, "S2", key=fleetdata.KEY2)
        store.commit("S2", "c2", [other], [])  # conflict alarm at S2
        store.commit("S2", "bad", [], [Bad("mac", "bad mac", "X", 1, b"{}")])
        with sut.write() as db:
            sites.import_sites(db, SITES)
            tokens = {
                name: TokenStore(db).create(role, scope, name, CLI)[1]
                for name, (role, scope) in SCOPES.items()
            }
        yield Api(TestClient(make_app(sut.ctx(registry_path=fs.registry))), sut, tokens)
    finally:
        sut.close()


def test_anonymous_and_roles_without_the_action_are_refused(api: Api) -> None:
    for url in ("/fleet", "/alarms", "/quarantine", "/cylinders/refused", "/elevators/faults"):
        r = api.get(None, url)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", url
        assert api.get("monitor", url).status_code == 403, url
    assert api.get("market", "/fleet").status_code == 403
    assert api.post("market", "/alarms/1/ack", {"comment": "x"}).status_code == 403
    assert api.post(None, "/alarms/1/ack", {"comment": "x"}).status_code == 401
    url = f"/markets/batches/{STOPPED_LOT.batch_id}/recall"
    assert api.get(None, url).status_code == 401
    assert api.get("monitor", url).status_code == 403


def test_fleet_lists_never_seen_and_follows_scope(api: Api) -> None:
    body = api.get("admin", "/fleet").json()
    by_site = {s["site"]: s for s in body["sites"]}
    assert {"S1", "S2", "S3", SITE} <= set(by_site)
    assert by_site["S3"]["never_seen"] and by_site["S3"]["state"] == "red"
    assert by_site["S3"]["name"] == "新站" and by_site["S3"]["district"] == "330106"
    devs = {d["dev"]: d for d in body["devices"]}
    assert devs["MKT-S3-01"]["never_seen"] and devs["MKT-S3-01"]["state"] == "red"
    assert devs["CYL-S1-01"]["key"]["rotated"] and devs["MKT-S2-01"]["key"]["revoked_from"] == 3
    north = api.get("north", "/fleet").json()
    assert [s["site"] for s in north["sites"]] == ["S2"]
    assert {d["site"] for d in north["devices"]} == {"S2"}
    west = api.get("west", "/fleet").json()
    assert {s["site"] for s in west["sites"]} == {"S1", "S3", SITE}
    sites_only = api.get("west", "/fleet", params={"devices": False}).json()
    assert sites_only["devices"] == []
    assert [(s["site"], s["state"]) for s in sites_only["sites"]] == [
        (s["site"], s["state"]) for s in west["sites"]
    ]
    assert sites_only["devices_by_state"] == west["devices_by_state"]
    loose = api.get("admin", "/fleet", params={"green_min": 600, "amber_min": 1200}).json()
    assert loose["green_s"] == 36000
    flat = api.get("admin", "/fleet", params={"green_min": 60, "amber_min": 10}).json()
    assert flat["green_s"] == flat["amber_s"] == 3600  # no amber band


def test_device_page_is_404_outside_the_scope(api: Api) -> None:
    d = api.get("admin", "/fleet/devices/ELV-S1-01", params={"limit": 2}).json()
    assert d["gaps"] == [[4, 5], [8, 9]] and [r["seq"] for r in d["recent"]] == [10, 7]
    assert d["device"]["type"] == "elevator-box" and d["alarms"][0]["kind"] == "conflict"
    assert api.get("west", "/fleet/devices/ELV-S1-01").status_code == 200
    assert api.get("north", "/fleet/devices/ELV-S1-01").status_code == 404
    assert api.get("admin", "/fleet/devices/NOPE").status_code == 404
    never = api.get("west", "/fleet/devices/MKT-S3-01").json()
    assert never["device"]["never_seen"] and never["recent"] == []


def test_devices_and_sites_list_never_seen_ones(api: Api) -> None:
    devs = {d["dev"]: d for d in api.get("admin", "/devices").json()}
    assert devs["GW-S3"]["never_seen"] and devs["ELV-S1-01"]["never_seen"] is False
    site_rows = {s["site"]: s for s in api.get("admin", "/sites").json()}
    assert site_rows["S3"]["never_seen"] and site_rows["S1"]["depth"] == 42
    assert {s["site"] for s in api.get("north", "/sites").json()} == {"S2"}


def test_alarm_list_filters_and_scope(api: Api) -> None:
    everything = api.get("admin", "/alarms").json()
    assert everything["total"] == len({a["id"] for a in everything["items"]}) >= 3
    kinds = {a["kind"] for a in everything["items"]}
    assert {"conflict", "sold_after_stop"} <= kinds
    north = api.get("north", "/alarms").json()
    assert north["total"] == 1 and north["items"][0]["site"] == "S2"
    page = api.get("admin", "/alarms", params={"kind": "conflict", "limit": 1}).json()
    assert page["total"] == 2 and len(page["items"]) == 1
    assert api.get("admin", "/alarms", params={"limit": 0}).status_code == 422
    assert api.get("north", "/alarms", params={"site": "S1"}).json()["total"] == 0


def test_acknowledging_an_alarm_is_audited(api: Api) -> None:
    s1 = api.get("west", "/alarms", params={"kind": "conflict", "site": "S1"}).json()
    aid = s1["items"][0]["id"]
    assert api.post("north", f"/alarms/{aid}/ack", {"comment": "不是我的"}).status_code == 404
    assert api.post("west", f"/alarms/{aid}/ack", {"comment": ""}).status_code == 422
    assert api.post("west", f"/alarms/{aid}/ack", {"comment": "   "}).status_code == 422
    r = api.post("west", f"/alarms/{aid}/ack", {"comment": "已电话核实，终端重装"})
    assert r.status_code == 200, r.text
    ack = r.json()
    assert ack["role"] == "inspector" and ack["by"].startswith("west [")
    again = api.post("admin", f"/alarms/{aid}/ack", {"comment": "again"})
    assert again.status_code == 409 and "west" in again.json()["detail"]
    assert api.post("admin", "/alarms/999999/ack", {"comment": "x"}).status_code == 404
    acked = api.get("west", "/alarms", params={"acknowledged": True}).json()
    assert [a["id"] for a in acked["items"]] == [aid]
    assert acked["items"][0]["ack"]["comment"] == "已电话核实，终端重装"
    with api.sut.read() as db:
        log = [e for e in audit.entries(db, 100) if e.action == "alarm.ack"]
        assert audit.verify(db).ok
    ok = [e for e in log if e.result == "ok"]
    assert len(ok) == 1 and ok[0].target == f"alarm:{aid}" and ok[0].id == ack["audit_id"]
    assert ok[0].address == "testclient" and ok[0].detail["comment"] == "已电话核实，终端重装"
    refused = sorted(e.result for e in log if e.result != "ok")
    assert refused == [
        "refused: already acknowledged",
        "refused: unknown alarm",
        "refused: unknown alarm",
    ]


def test_quarantine_list_and_ack(api: Api) -> None:
    north = api.get("north", "/quarantine").json()
    assert {q["site"] for q in north["items"]} == {"S2"}
    mac = api.get("north", "/quarantine", params={"reason": "mac"}).json()
    assert mac["total"] == 1 and mac["items"][0]["records"] == 1
    qid = mac["items"][0]["id"]
    assert api.post("west", f"/quarantine/{qid}/ack", {"comment": "x"}).status_code == 404
    r = api.post("north", f"/quarantine/{qid}/ack", {"comment": "密钥轮换期间的旧记录"})
    assert r.status_code == 200, r.text
    assert api.get("north", "/quarantine", params={"acknowledged": False}).json()["total"] == (
        north["total"] - 1
    )


def test_recall_json_and_csv_within_the_market_scope(api: Api) -> None:
    url = f"/markets/batches/{STOPPED_LOT.batch_id}/recall"
    body = api.get("market", url).json()
    assert body["totals"]["lines"] == len(body["lines"]) > 0
    assert body["totals"]["after_stop_lines"] > 0 and body["stop"] is not None
    assert api.get("west", url).status_code == 200
    assert api.get("north", url).status_code == 404
    assert api.get("other_market", url).status_code == 404
    few = api.get("admin", url, params={"limit": 2}).json()
    assert len(few["lines"]) == 2 and few["truncated"]
    r = api.get("market", url + ".csv", params={"lang": "en"})
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
    assert rows[0][0] == "Sale time" and len(rows) == 1 + body["totals"]["lines"]
    assert api.get("other_market", url + ".csv").status_code == 404
    assert api.get("market", url + ".csv", params={"lang": "fr"}).status_code == 422
    assert api.get("market", "/markets/batches/00000000000000000000/recall").status_code == 404


def test_cylinder_and_elevator_lists_are_not_taken_for_an_id(api: Api) -> None:
    r = api.get("admin", "/cylinders/refused")
    assert r.status_code == 200 and set(r.json()) == {"held", "refused"}
    r = api.get("admin", "/elevators/faults", params={"since_ms": 0})
    assert r.status_code == 200 and isinstance(r.json(), list)
    assert api.get("market", "/elevators/faults").status_code == 403
    assert api.get("admin", "/cylinders/refused", params={"stage": "mid"}).status_code == 422
