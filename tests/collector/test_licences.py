"""The licence registry and recalled lots at the collector, on both stores: imported all or
nothing (a bad row named by index and field), from JSON or CSV; pushed to each site signed,
each site getting only the licences that may be presented there."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import licences
from collector.licences import LicenceRegistryError, check_licence, parse_csv
from collector.pushdown import PushDown
from collector.storedb import StoreDb
from hostlib.registry import Registry, add_devices
from tests.collector.test_markets import connect
from tests.collector.test_pushdown import Published
from tests.stores import KINDS, StoreUnderTest, store_of
from tests.traceedge.test_cli_imports import collector_config, run
from traceedge.provision import new_device, site_gateway, site_trust
from wire.command import load_private_key

SITES = ("CHEM01", "AGRI01")
LICENCE: dict[str, Any] = {
    "licence": "JD-330200-2025-0042",
    "kind": "toxic_purchase",
    "holder": "宁波港华电镀厂",
    "classes": ["chemical_toxic"],
    "quantity": 100_000,
    "unit": "g",
    "valid_from": "2025-01-01",
    "valid_until": "2025-12-31",
    "sites": ["CHEM01"],
}
CSV = (
    "licence,kind,holder,classes,quantity,unit,valid_from,valid_until,sites\n"
    "JD-1,toxic_purchase,宁波港华电镀厂,chemical_toxic,100000,g,2025-01-01,2025-12-31,CHEM01\n"
    "YZB-7,precursor_purchase,嘉兴市水务集团,chemical_precursor;chemical,5000,g,"
    "2025-01-01,2026-06-30,CHEM01 AGRI01\n"
    "NY-3,business,杭州农资公司,pesticide seed,1000000,piece,2024-01-01,2029-12-31,*\n"
)


def test_csv_and_json_give_the_same_entries() -> None:
    rows = parse_csv(CSV)
    checked = [check_licence(i, r) for i, r in enumerate(rows)]
    assert checked[1]["classes"] == ["chemical_precursor", "chemical"]
    assert checked[1]["sites"] == ["AGRI01", "CHEM01"]
    assert checked[2]["sites"] == ["*"] and checked[2]["quantity"] == 1_000_000


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"licence": "has space"}, "licence"),
        ({"kind": "gold"}, "kind"),
        ({"holder": ""}, "holder"),
        ({"classes": []}, "classes"),
        ({"classes": ["chemical_toxic", "chemical_toxic"]}, "classes"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": "12"}, "quantity"),
        ({"unit": "kg"}, "unit"),
        ({"valid_from": "2025-13-01"}, "valid_from"),
        ({"valid_until": "2024-12-31"}, "valid_until"),
        ({"sites": []}, "sites"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_row_is_named(over: dict[str, Any], field: str) -> None:
    with pytest.raises(LicenceRegistryError, match=rf"entry 3: {field}:"):
        check_licence(3, {**LICENCE, **over})


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_csv_and_checks_are_total(text: str) -> None:
    try:
        rows = parse_csv(text)
    except LicenceRegistryError:
        return
    for i, row in enumerate(rows):
        with contextlib.suppress(LicenceRegistryError):
            check_licence(i, row)


def test_import_is_all_or_nothing_and_pushed_per_site(
    any_store: StoreUnderTest, tmp_path: Path
) -> None:
    registry = tmp_path / "registry" / "devices.json"
    devs = [new_device("warehouse-terminal", s) for s in SITES]
    add_devices(registry, devs, int(time.time()))
    trust = site_trust(tmp_path, registry, SITES[0])
    site_gateway(registry, SITES[1], tmp_path / "trust")
    key = load_private_key(trust.command_key)
    db = connect(any_store)
    sent = Published()
    storedb = StoreDb(any_store.path, any_store.url, pool_size=1)
    push = PushDown(storedb, Registry(registry), key, sent)
    try:
        assert licences.import_licences(db, parse_csv(CSV)) == 1
        bad = [{**LICENCE, "licence": "NEW-1"}, {**LICENCE, "unit": "kg"}]
        with pytest.raises(LicenceRegistryError, match="entry 1: unit"):
            licences.import_licences(db, bad)
        with pytest.raises(LicenceRegistryError, match="twice"):
            licences.import_licences(db, [LICENCE, LICENCE])
        assert licences.licences_snapshot(db)["version"] == 1  # nothing changed
        assert "NEW-1" not in {e["licence"] for e in licences.licences_snapshot(db)["licences"]}
        assert licences.import_recalls(db, [{"lot": "L20251101", "reason": "纯度不合格"}]) == 1
        with pytest.raises(LicenceRegistryError, match="entry 0: reason"):
            licences.import_recalls(db, [{"lot": "L2"}])

        assert push.tick() > 0
        lic = sent.messages[:]
        got = Published()
        got.messages = list(lic)
        per_site = got.take("licences", key)
        assert {s: sorted(e["licence"] for e in c["licences"]) for s, c in per_site.items()} == {
            "CHEM01": ["JD-1", "NY-3", "YZB-7"],
            "AGRI01": ["NY-3", "YZB-7"],
        }
        got.messages = list(lic)
        recalls = got.take("recalls", key)
        assert set(recalls) == set(SITES)
        assert all(
            c["lots"] == [{"lot": "L20251101", "reason": "纯度不合格"}] for c in recalls.values()
        )
        sent.messages.clear()
        assert push.tick() == 0  # unchanged: not sent again before republish_s
        # a new import: a newer version goes out
        assert licences.import_licences(db, [{**LICENCE, "quantity": 5}]) == 2
        assert push.tick() == len(SITES)
        again = sent.take("licences", key)
        assert again["CHEM01"]["version"] == 2
    finally:
        storedb.close()
        db.close()


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreUnderTest]:
    """The store a collector config names, empty (as tests/traceedge/test_cli_imports.py)."""
    sut = store_of(request.param, tmp_path / "data")
    try:
        yield sut
    finally:
        sut.close()


def test_cli_imports_csv_and_json_all_or_nothing(store: StoreUnderTest, tmp_path: Path) -> None:
    cfg = collector_config(tmp_path, store)
    good = tmp_path / "lic.csv"
    good.write_text(CSV, encoding="utf-8")
    res = run("import-licences", cfg, good)
    assert res.exit_code == 0, res.output
    assert "imported 3 licence(s); registry version 1" in res.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([LICENCE, {**LICENCE, "licence": "X", "valid_from": "soon"}]))
    res = run("import-licences", cfg, bad)
    assert res.exit_code != 0 and "entry 1: valid_from" in res.output
    broken = tmp_path / "broken.csv"
    broken.write_text('licence,kind\n"JD-1,toxic', encoding="utf-8")
    res = run("import-licences", cfg, broken)
    assert res.exit_code != 0
    recalls = tmp_path / "recalls.json"
    recalls.write_text(json.dumps([{"lot": "L1", "reason": "杂质超标", "since": "2025-11-20"}]))
    res = run("import-recalls", cfg, recalls)
    assert res.exit_code == 0 and "recall list version 1" in res.output, res.output
    with store.read() as db:
        assert licences.licences_snapshot(db)["version"] == 1
        assert len(licences.licences_snapshot(db)["licences"]) == 3
        assert licences.recalls_snapshot(db)["lots"][0]["lot"] == "L1"


def test_the_example_files_import() -> None:
    config = Path(__file__).resolve().parents[2] / "config"
    rows = parse_csv((config / "licences.example.csv").read_text(encoding="utf-8"))
    checked = [check_licence(i, r) for i, r in enumerate(rows)]
    assert len(checked) == 3 and checked[2]["sites"] == ["*"]
    lots = json.loads((config / "recalls.example.json").read_text(encoding="utf-8"))
    assert [licences.check_recall(i, e)["lot"] for i, e in enumerate(lots)] == [
        "L20251101",
        "P250918",
    ]
