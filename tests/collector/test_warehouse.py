"""Stock and stocktakes at the collector, on both stores: a count that finds an item missing
raises one ``stocktake_missing`` alarm; a complete count raises none."""

from __future__ import annotations

from typing import Any

from collector import warehouse
from tests.collector.test_markets import SITE, Feed, at, connect
from tests.stores import StoreUnderTest

OUTER = "https://id.gs1.org/00/169312345678901238"
U1, U2, U3 = (f"https://id.gs1.org/01/06930000000013/21/{i}" for i in (1, 2, 3))
DEV, GW = "WHS-S-0001", "GW-S-0001"


def unit(i: str) -> dict[str, Any]:
    return {"scheme": "gs1", "id": i, "level": "unknown"}


def goods_in(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "site": SITE,
        "operator": "OP-01",
        "product_class": "chemical_precursor",
        "product": {"name": "硝酸铵"},
        "items": items,
        "quantity": 75_000,
        "unit": "g",
    }


def count(part: int, items: list[str], last: bool) -> dict[str, Any]:
    return {
        "site": SITE,
        "operator": "OP-02",
        "count_id": "C1",
        "part": part,
        "last": last,
        "items": [unit(i) for i in items],
    }


def test_a_stocktake_that_finds_an_item_missing_raises_one_alarm(
    any_store: StoreUnderTest,
) -> None:
    feed = Feed(any_store.store)
    dispatch = {
        "site": SITE,
        "terminal": DEV,
        "operator": "OP-01",
        "product_class": "chemical_precursor",
        "items": [U3],
        "quantity": 25_000,
        "unit": "g",
        "decision": "allow",
        "reasons": [],
        "reg_ver": 1,
        "recall_ver": 0,
    }
    feed.commit(
        [
            feed.make(DEV, "goods.in", at(1), goods_in([{**unit(OUTER), "inner": [U1, U2]}])),
            feed.make(DEV, "goods.in", at(1.1), goods_in([unit(U3)])),
            feed.make(GW, "goods.dispatch", at(2), dispatch),
            feed.make(DEV, "goods.count", at(3), count(1, [U1], False)),
            feed.make(DEV, "goods.count", at(3.1), count(2, [], True)),
        ]
    )
    db = connect(any_store)
    try:
        assert sorted(warehouse.stock(db, SITE)) == sorted([OUTER, U1, U2])
        assert sorted(warehouse.stock(db, SITE, at(1.5))) == sorted([OUTER, U1, U2, U3])
        st = warehouse.stocktake(db, SITE, "C1")
        assert st is not None and st.closed_ts == at(3.1) and st.parts == 2
        assert st.missing == sorted([OUTER, U2]) and st.unexpected == []
        now = at(4)
        with any_store.write() as w:
            assert warehouse.check_stocktakes(w, now) == 1
        with any_store.write() as w:
            assert warehouse.check_stocktakes(w, now) == 0  # once
        rows = db.execute("SELECT detail FROM alarms WHERE kind = ?", (warehouse.ALARM,)).fetchall()
        assert len(rows) == 1 and "2 item(s) missing" in rows[0][0] and U2 in rows[0][0]
        assert warehouse.stocktake(db, SITE, "C9") is None
    finally:
        db.close()


def test_a_complete_count_raises_nothing(any_store: StoreUnderTest) -> None:
    feed = Feed(any_store.store)
    feed.commit(
        [
            feed.make(DEV, "goods.in", at(1), goods_in([{**unit(OUTER), "inner": [U1, U2]}])),
            # the outer package counted stands for its inner ones
            feed.make(DEV, "goods.count", at(2), count(1, [OUTER], True)),
        ]
    )
    with any_store.write() as w:
        assert warehouse.check_stocktakes(w, at(3)) == 0
        st = warehouse.stocktake(w, SITE, "C1")
        assert st is not None and st.missing == [] and st.expected == sorted([OUTER, U1, U2])
