"""A warehouse day for each of the three stores (dangerous chemicals, agricultural inputs,
pharmacy), with a real agent, Mosquitto and collector: licences and recalled lots imported
at the collector reach the agent signed; then, cut off from the central side, the dispatch
gate answers every request from what the agent holds: each refusal reason alone and
combined, a tag read twice leaving, outer packages leaving with their inner ones. Every
record reaches the collector once when the link returns; a stocktake that finds an item
missing raises an alarm there; the EPCIS export of the day is valid against the official
schema."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collector import warehouse
from collector.epcis import records_to_document
from collector.storedb import StoreDb
from drivers.codecs.epc import encode_sscc96
from drivers.codecs.itemcodes import drug_code, pesticide_code, seed_qr
from simulators.epcis_schema import schema_errors
from simulators.warehouse_terminal import WarehouseTerminal, scan
from tests.conftest import SITE, Chain, wait_until
from traceedge.provision import new_device
from wire.checkdigit import with_check_digit

LICENCES = (
    "licence,kind,holder,classes,quantity,unit,valid_from,valid_until,sites\n"
    f"JD-1,toxic_purchase,宁波港华电镀厂,chemical_toxic,100000,g,2020-01-01,2099-12-31,{SITE}\n"
    f"JD-OLD,toxic_purchase,宁波港华电镀厂,chemical_toxic,100000,g,2020-01-01,2020-12-31,{SITE}\n"
    f"YZB-1,precursor_purchase,嘉兴市水务集团,chemical_precursor,50000,g,2020-01-01,2099-12-31,{SITE}\n"
    "ELSEWHERE-1,toxic_purchase,某公司,chemical_toxic,1,g,2020-01-01,2099-12-31,OTHER\n"
)
RECALLS = [
    {"lot": "L-BAD", "reason": "含量不合格", "since": "2025-11-20"},
    {"lot": "P-BAD", "reason": "药害投诉", "since": "2025-11-21"},
    {"lot": "D-BAD", "reason": "药品召回(二级)"},
]


def gs1(serial: str) -> dict[str, Any]:
    return scan(f"]C101{with_check_digit('0693000000001')}21{serial}")


def sscc(n: int) -> str:
    return f"]C100{with_check_digit(f'1693{n:013d}')}"


def sscc_tag(n: int) -> dict[str, Any]:
    """The same logistic unit read by its UHF tag (SSCC-96 EPC) at the door reader."""
    return scan(encode_sscc96(sscc(n)[5:], 7), source="epc")


def pesticide(n: int) -> str:
    fields = {
        "category": "1",
        "registration_tail": "080385",
        "production_type": "1",
        "spec": "010",
        "random": f"{n:021d}",
    }
    return "]Q1" + pesticide_code(fields)


def drug(n: int) -> dict[str, Any]:
    return scan(drug_code("8123456", f"{n:09d}", "1234"), level="unit")


def cli(ch: Chain, *args: str) -> str:
    res = subprocess.run(
        [
            *(sys.executable, "-m", "traceedge", "collector", args[0]),
            *("--config", str(ch.collectors[0].config), *args[1:]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def chemical(cls: str, name: str, quantity: int, lot: str, **more: Any) -> dict[str, Any]:
    return {
        "product_class": cls,
        "product": {"name": name},
        "quantity": quantity,
        "unit": "g",
        "lot": lot,
        **more,
    }


BUYER = {
    "party": "宁波港华电镀厂",
    "party_address": "宁波市北仑区新碶街道8号",
    "handler": "李敏",
    "handler_id": "330206197512124321",
    "use": "电镀",
}


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """The collectors' store: None for their SQLite file, else a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


def test_a_warehouse_day_for_each_store_with_the_gate_offline(
    store_url: str | None, chain_factory: Callable[..., Chain], tmp_path: Path
) -> None:
    terminals = [new_device("warehouse-terminal", SITE) for _ in range(3)]
    # store_url first: its database is made before the chain and dropped after it stops
    ch = chain_factory(separate_central=True, extra_devices=terminals, store_url=store_url)
    (tmp_path / "lic.csv").write_text(LICENCES, encoding="utf-8")
    (tmp_path / "recalls.json").write_text(json.dumps(RECALLS), encoding="utf-8")
    assert "registry version 1" in cli(ch, "import-licences", str(tmp_path / "lic.csv"))
    assert "version 1" in cli(ch, "import-recalls", str(tmp_path / "recalls.json"))
    wait_until(
        lambda: (
            ch.agent_status()["licence_registry_version"] == 1
            and ch.agent_status()["recall_list_version"] == 1
        ),
        30,
        "licences and recalls to reach the agent",
    )
    assert ch.agent_status()["licences_known"] == 3  # the site's slice only
    ch.central.stop()  # cut off from the central side for the whole day
    wait_until(lambda: not ch.agent_status()["uplink_connected"], 15, "the outage")

    chem, agri, pharm = (WarehouseTerminal(ch.broker.port, d, SITE) for d in terminals)
    published = 0
    try:
        # ---- dangerous-chemicals store -----------------------------------------------------
        drum = {**scan(sscc(1)), "inner": [gs1("CN1")["id"], gs1("CN2")["id"]]}
        chem.receive([drum], **chemical("chemical_toxic", "氰化钠", 100_000, "L-CN"))
        chem.receive([gs1("CN3")], **chemical("chemical_toxic", "氰化钠", 50_000, "L-CN"))
        chem.receive(
            [gs1("AN1"), gs1("AN2"), gs1("AN3")],
            **chemical("chemical_precursor", "硝酸铵", 75_000, "L-AN"),
        )
        chem.receive([gs1("BAD1")], **chemical("chemical_toxic", "氰化钠", 50_000, "L-BAD"))
        # ---- agricultural-inputs dealer ----------------------------------------------------
        case = {**scan(sscc(2)), "inner": [scan(pesticide(i))["id"] for i in (1, 2, 3)]}
        agri.receive(
            [case],
            product_class="pesticide",
            product={"name": "吡虫啉可湿性粉剂", "code": "PD20080385"},
            quantity=3,
            unit="piece",
            lot="P-OK",
        )
        agri.receive(
            [scan(pesticide(9))],
            product_class="pesticide",
            product={"name": "吡虫啉可湿性粉剂"},
            quantity=1,
            unit="piece",
            lot="P-BAD",
        )
        seed = scan(seed_qr("郑单958", "河南秋乐种业", "410100000000000001", "https://s.example/1"))
        agri.receive(
            [seed], product_class="seed", product={"name": "郑单958"}, quantity=1, unit="piece"
        )
        # ---- pharmacy ----------------------------------------------------------------------
        pharm.receive(
            [drug(i) for i in (1, 2, 3, 4)],
            product_class="drug",
            product={"name": "阿莫西林胶囊", "code": "H44021351"},
            quantity=4,
            unit="piece",
            lot="D-OK",
        )
        pharm.receive(
            [drug(9)],
            product_class="drug",
            product={"name": "阿莫西林胶囊"},
            quantity=1,
            unit="piece",
            lot="D-BAD",
        )
        box = scan(sscc(3))
        pharm.record(
            "goods.pack",
            {
                "site": SITE,
                "operator": "OP-01",
                "action": "pack",
                "parent": box,
                "children": [drug(3)["id"], drug(4)["id"]],
            },
        )
        stored = sum(len(t.records) for t in (chem, agri, pharm))
        wait_until(
            lambda: (
                sum(
                    v
                    for k, v in ch.agent_status()["waiting_by_kind"].items()
                    if k.startswith("goods.")
                )
                >= stored
            ),
            15,
            "the receipts to be stored at the agent",
        )

        toxic = chemical("chemical_toxic", "氰化钠", 50_000, "L-CN", licence="JD-1", **BUYER)
        cases: list[tuple[WarehouseTerminal, list[dict[str, Any]], dict[str, Any], list[str]]] = [
            # allowed: the drum leaves with its two inner units
            (chem, [drum], toxic, []),
            # the same drum's tag read leaving again, by the door reader (the barcode and the
            # UHF tag give the same id)
            (chem, [sscc_tag(1)], toxic, ["already_dispatched"]),
            # an inner unit of the drum that left
            (chem, [gs1("CN1")], toxic, ["already_dispatched"]),
            # each licence reason alone
            (chem, [gs1("CN3")], {**toxic, "licence": None}, ["no_licence"]),
            (chem, [gs1("CN3")], {**toxic, "licence": "JD-OLD"}, ["licence_expired"]),
            (chem, [gs1("CN3")], {**toxic, "quantity": 60_000}, ["over_licence_quantity"]),
            (
                chem,
                [gs1("AN1")],
                {**toxic, "product_class": "chemical_precursor", "lot": "L-AN"},
                ["licence_not_for_class"],
            ),
            (chem, [gs1("NEVER")], toxic, ["not_in_stock"]),
            (chem, [gs1("BAD1")], {**toxic, "lot": "L-BAD"}, ["recalled_lot"]),
            # a licence for another site is no licence here
            (chem, [gs1("CN3")], {**toxic, "licence": "ELSEWHERE-1"}, ["no_licence"]),
            # combined
            (
                chem,
                [gs1("NEVER"), gs1("BAD1"), gs1("CN2")],
                {**toxic, "licence": "JD-OLD", "quantity": 150_000},
                [
                    "licence_expired",
                    "over_licence_quantity",
                    "not_in_stock",
                    "already_dispatched",
                    "recalled_lot",
                ],
            ),
            (chem, [gs1("NEVER")], {**toxic, "licence": None}, ["no_licence", "not_in_stock"]),
            # precursor under its own licence: allowed
            (
                chem,
                [gs1("AN1")],
                chemical("chemical_precursor", "硝酸铵", 25_000, "L-AN", licence="YZB-1", **BUYER),
                [],
            ),
            # agri: pesticide units need no licence; the case's unit leaves once
            (
                agri,
                [scan(pesticide(1))],
                {
                    "product_class": "pesticide",
                    "product": {"name": "吡虫啉"},
                    "quantity": 1,
                    "unit": "piece",
                    "lot": "P-OK",
                    "party": "张三家庭农场",
                },
                [],
            ),
            (
                agri,
                [scan(pesticide(1))],
                {
                    "product_class": "pesticide",
                    "product": {"name": "吡虫啉"},
                    "quantity": 1,
                    "unit": "piece",
                    "lot": "P-OK",
                    "party": "张三家庭农场",
                },
                ["already_dispatched"],
            ),
            (
                agri,
                [scan(pesticide(9))],
                {
                    "product_class": "pesticide",
                    "product": {"name": "吡虫啉"},
                    "quantity": 1,
                    "unit": "piece",
                    "party": "张三家庭农场",
                },
                ["recalled_lot"],
            ),
            (
                agri,
                [seed],
                {
                    "product_class": "seed",
                    "product": {"name": "郑单958"},
                    "quantity": 1,
                    "unit": "piece",
                    "party": "李四",
                },
                [],
            ),
            # pharmacy: a unit, the packed box with its two units, then repeats
            (
                pharm,
                [drug(1)],
                {
                    "product_class": "drug",
                    "product": {"name": "阿莫西林胶囊"},
                    "quantity": 1,
                    "unit": "piece",
                    "lot": "D-OK",
                    "party": "患者",
                },
                [],
            ),
            (
                pharm,
                [box],
                {
                    "product_class": "drug",
                    "product": {"name": "阿莫西林胶囊"},
                    "quantity": 2,
                    "unit": "piece",
                    "lot": "D-OK",
                    "party": "某诊所",
                },
                [],
            ),
            (
                pharm,
                [drug(4)],
                {
                    "product_class": "drug",
                    "product": {"name": "阿莫西林胶囊"},
                    "quantity": 1,
                    "unit": "piece",
                    "party": "患者",
                },
                ["already_dispatched"],
            ),
            (
                pharm,
                [drug(9), drug(77)],
                {
                    "product_class": "drug",
                    "product": {"name": "阿莫西林胶囊"},
                    "quantity": 2,
                    "unit": "piece",
                    "party": "患者",
                },
                ["not_in_stock", "recalled_lot"],
            ),
        ]
        allowed = 0
        for i, (term, items, out, expected) in enumerate(cases):
            out = {k: v for k, v in out.items() if v is not None}
            ans = term.dispatch(items, out)
            assert ans["reasons"] == expected, (i, ans)
            assert ans["decision"] == ("deny" if expected else "allow"), (i, ans)
            assert "error" not in ans and ans["reg_ver"] == 1, (i, ans)
            allowed += not expected
        # stocktakes of the site (one agent here holds the three stores' terminals): the
        # first misses a precursor unit; the second, in parts, finds everything
        # (the case read by its own code: it stands for the inner units still in it)
        left = [gs1("CN3"), gs1("AN2"), gs1("BAD1"), scan(sscc(2)), scan(pesticide(9))]
        left += [drug(2), drug(9)]
        chem.count("COUNT-1", left)
        agri.count("COUNT-2", [*left, gs1("AN3")], per_part=3)
        published = sum(len(t.records) for t in (chem, agri, pharm))
    finally:
        for t in (chem, agri, pharm):
            t.close()
    decisions = len(cases)
    want = {"allow": allowed, "deny": decisions - allowed, "errors": 0, "refused": 0}
    wait_until(lambda: ch.agent_status()["dispatch"] == want, 10, f"dispatch counters {want}")
    ch.central.start()
    total = published + decisions
    wait_until(
        lambda: ch.collector_stats().get("records", 0) == total, 60, f"{total} records to arrive"
    )
    assert ch.collector_stats()["gaps"] == 0
    store = StoreDb(ch.store, store_url, pool_size=1)

    def alarms() -> list[str]:
        with store.read() as db:
            rows = db.execute(
                "SELECT detail FROM alarms WHERE kind = ?", (warehouse.ALARM,)
            ).fetchall()
        return [str(r[0]) for r in rows]

    try:
        with store.read() as db:
            rows = db.execute(
                "SELECT kind, COUNT(*), COUNT(DISTINCT dev || '/' || CAST(seq AS TEXT)) "
                "FROM records WHERE kind LIKE 'goods.%' GROUP BY kind"
            ).fetchall()
            by_kind = {k: (int(n), int(d)) for k, n, d in rows}
            assert all(n == d for n, d in by_kind.values())  # each record stored once
            assert by_kind["goods.dispatch"][0] == decisions
            assert by_kind["goods.out"][0] == allowed  # a goods.out after each allow only
            # the stocktake finds AN3 missing (AN1 left, AN2 counted)
            st = warehouse.stocktake(db, SITE, "COUNT-1")
            assert st is not None and st.missing == [gs1("AN3")["id"]], st
            complete = warehouse.stocktake(db, SITE, "COUNT-2")
            assert complete is not None and complete.parts == 3 and complete.missing == []
            assert complete.unexpected == []
            recs = [
                json.loads(r[0])
                for r in db.execute(
                    "SELECT rec FROM records WHERE kind LIKE 'goods.%' ORDER BY id"
                ).fetchall()
            ]
        # ... and the collector says so: one alarm
        wait_until(lambda: len(alarms()) >= 1, 15, "the stocktake alarm")
        found = alarms()
        assert len(found) == 1 and "COUNT-1: 1 item(s) missing" in found[0], found
        assert gs1("AN3")["id"] in found[0]
    finally:
        store.close()
    # EPCIS of the whole day, valid against the official schema
    doc = records_to_document(recs)
    assert schema_errors(doc) == []
    types = {ev["type"] for ev in doc["epcisBody"]["eventList"]}
    assert types == {"ObjectEvent", "AggregationEvent"}
    steps = {ev.get("bizStep") for ev in doc["epcisBody"]["eventList"]}
    assert {"receiving", "shipping", "packing", "cycle_counting", "inspecting"} <= steps
