"""What the operator does at the warehouse terminal (``edge_agent.terminal.desk``): pack and
unpack, stocktake parts, a full record, drop and cancel; every body schema-valid; a record
the log refused leaves the reads in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_agent.terminal.desk import Desk, Record
from edge_agent.terminal.whsettings import load_warehouse
from hostlib.registry import Device
from tests.e2e.test_warehouse_terminal import write_config
from wire import goods_records as gr
from wire.schemas import default_validator

DEV = Device("WHS-T01-00AA03", b"\7" * 32, "warehouse-terminal", "T01")


def item(n: int) -> dict[str, Any]:
    return {"scheme": "epc", "id": f"epc:{n:024X}", "level": "unknown", "epc": f"{n:024X}"}


Made = list[tuple[str, dict[str, Any]]]


def desk(tmp_path: Path) -> tuple[Desk, Record, Made]:
    cfg = write_config(tmp_path, DEV, 1883, "/dev/null", "/dev/null")
    made: Made = []

    def record(kind: str, body: dict[str, Any]) -> bool:
        default_validator().validate(kind, body)
        made.append((kind, body))
        return True

    return Desk(load_warehouse(cfg), boot=4), record, made


def test_pack_then_unpack(tmp_path: Path) -> None:
    d, rec, made = desk(tmp_path)
    d.set_mode(gr.PACK)
    assert d.commit(rec) == ["read the outer package, then the inner ones"]
    assert d.read(item(100), rec) == [f"outer package epc:{100:024X}: read the inner ones"]
    assert d.read(item(100), rec) == [f"epc:{100:024X}: already read"]
    for n in (1, 2, 2):
        d.read(item(n), rec)
    assert d.commit(rec) == ["pack: 2 inner"]
    d.set_mode(gr.UNPACK)
    d.read(item(100), rec)
    d.read(item(1), rec)
    assert d.commit(rec) == ["unpack: 1 inner"]
    assert [(k, b["action"], len(b["children"])) for k, b in made] == [
        ("goods.pack", "pack", 2),
        ("goods.pack", "unpack", 1),
    ]


def test_a_stocktake_writes_a_part_every_twelve_reads(tmp_path: Path) -> None:
    d, rec, made = desk(tmp_path)
    assert d.set_mode(gr.COUNT) == ["mode: stocktake CNT-4-1"]
    for n in range(15):
        d.read(item(n), rec)
    d.read(item(3), rec)  # counted in the first part already
    assert d.drop() == [f"dropped epc:{14:024X}"]
    out = d.commit(rec)
    assert out[-1] == "stocktake CNT-4-1 closed: 14 items" and d.mode == gr.NONE
    assert [(b["part"], b["last"], len(b["items"])) for _, b in made] == [(1, False, 12),
                                                                          (2, True, 2)]  # fmt: skip
    assert d.set_mode(gr.COUNT) == ["mode: stocktake CNT-4-2"]
    assert d.cancel() == ["cancelled"] and d.mode == gr.NONE


def test_a_full_record_takes_no_thirteenth_read_and_a_refused_record_keeps_its_reads(
    tmp_path: Path,
) -> None:
    d, rec, made = desk(tmp_path)
    d.set_mode(gr.RECEIVE)
    d.choose_product(2)
    for n in range(12):
        d.read(item(n), rec)
    assert d.read(item(12), rec) == ["12 reads: type record to record them"]
    assert d.commit(lambda k, b: False) == [] and len(d.reads) == 12
    assert d.commit(rec) == ["received 12"]
    assert made[0][1]["quantity"] == 12 and d.reads == []


def test_a_dispatch_needs_the_buyer_and_the_licence_fields(tmp_path: Path) -> None:
    d, rec, made = desk(tmp_path)
    d.set_mode(gr.DISPATCH)
    assert d.dispatch_request() == (None, ["choose a product (product N)"])
    d.choose_product(1)
    d.read(item(1), rec)
    assert d.dispatch_request() == (None, ["choose the buyer (party N)"])
    d.choose_party(1)
    fields, _ = d.dispatch_request()
    assert fields is not None and fields["licence"] == "JD-330200-2025-0042"
    assert d.read(item(2), rec) == [f"epc:{2:024X}: a dispatch is being decided, read ignored"]
    out = d.answered({"decision": "deny", "reasons": ["recalled_lot", "no_licence"]}, rec)
    assert out == ["REFUSED: recalled_lot, no_licence: NOT dispatched"] and made == []
    d.dispatch_request()
    assert d.answered(None, rec) == ["no answer from the gateway: NOT dispatched"]
    d.dispatch_request()
    assert d.answered({"decision": "allow", "reasons": [], "seq": 9}, rec) == [
        "dispatched 1 (gate seq 9)"
    ]
    assert made[0][0] == "goods.out" and made[0][1]["gate_seq"] == 9
