"""Warehouse handheld scenarios: goods in by tag and by scan, dispatch allowed / refused /
unanswered, a stocktake in parts, records kept in the flash log over a reboot. The
dispatch gate is the stub gateway's (tesim.gateway.LoopChannel: it decides only requests
sealed with the device key, as the agent does)."""

import json

import scen
from scen import scan, tag
from tesim.devices import typed

from wire import auth

import warehouse as app

_TYPING = False
if _TYPING:
    from typing import Any

T1 = "3035A537C8377540000003E9"
T2 = "3035A537C8377540000003EA"
ID1 = "https://id.gs1.org/01/06901234567892/21/1001"
ID2 = "https://id.gs1.org/01/06901234567892/21/1002"
PESTICIDE = "]Q1https://zs.example.com/p?code=10803851001462031958274016385520"
PID = "pesticide:10803851001462031958274016385520"
SITE = "WH330200001"


def keys(rig: "scen.Rig", at: int, k: str) -> None:
    rig.w.script(typed(k, at))


def _gs1(i: str) -> "dict[str, Any]":
    return {"scheme": "gs1", "id": i, "level": "unit"}


def _receive(rig: "scen.Rig") -> None:
    """1B 1A, two tags, #; 2A, a pesticide scan, #."""
    keys(rig, 100, "1B1A")
    tag(rig, 1000, T1)
    tag(rig, 2500, T2)
    keys(rig, 4000, "#")
    keys(rig, 4500, "2A")
    scan(rig, 5200, PESTICIDE)
    scan(rig, 5400, PESTICIDE)  # read twice: once
    keys(rig, 6000, "#")
    rig.run(7000)


TOXIC = {"name": "氰化钠", "code": "UN1689"}


def test_goods_in_by_tag_and_by_scan() -> None:
    rig = scen.warehouse()
    _receive(rig)
    recs = scen.dump(rig.ch)
    assert scen.bodies(recs) == [
        ("goods.in", {"site": SITE, "operator": "OP-02", "product_class": "chemical_toxic",
                      "product": TOXIC, "items": [_gs1(ID1), _gs1(ID2)],
                      "quantity": 100000, "unit": "g", "lot": "L20251101"}),
        ("goods.in", {"site": SITE, "operator": "OP-02", "product_class": "pesticide",
                      "product": {"name": "吡虫啉 70% 水分散粒剂", "code": "PD20080385"},
                      "items": [{"scheme": "pesticide", "id": PID, "level": "unit"}],
                      "quantity": 1, "unit": "piece"}),
    ], recs
    assert rig.rt.log.pending() == 0


def test_an_r2000_reader_reads_the_same_items() -> None:
    cfg = scen.example("warehouse")
    cfg["warehouse"]["reader"] = "r2000"
    rig = scen.warehouse(cfg=cfg)
    _receive(rig)
    recs = scen.dump(rig.ch)
    assert [r["body"]["items"] for r in recs][0] == [_gs1(ID1), _gs1(ID2)], recs
    app_: "Any" = rig.rt.app
    assert app_.uhf.errors == 0


def _dispatch(rig: "scen.Rig") -> None:
    keys(rig, 8000, "2B1A1C")
    tag(rig, 9000, T1)
    keys(rig, 10000, "#")
    rig.run(16000)


PARTY = {"party": "宁波港华电镀厂", "party_address": "宁波市北仑区港华路 8 号",
         "handler": "王伟", "handler_id": "330206198001011234",
         "licence": "JD-330200-2025-0042", "use": "电镀"}


def test_dispatch_allowed_is_sealed_and_recorded_with_gate_seq() -> None:
    rig = scen.warehouse(lambda r: {"decision": "allow", "reasons": [], "reg_ver": 3,
                                    "seq": 41})
    _receive(rig)
    _dispatch(rig)
    recs = scen.dump(rig.ch)
    assert rig.ch.dispatch_unsealed == 0 and len(rig.ch.dispatch_requests) == 1
    req = rig.ch.dispatch_requests[0]
    assert req["t"] == "dispatch" and req["dev"] == "WHS-S1-0001" and len(req["n"]) == 32
    assert req["items"] == [ID1] and req["quantity"] == 50000 and req["unit"] == "g"
    assert req["licence"] == PARTY["licence"] and req["party"] == PARTY["party"]
    assert req["product_class"] == "chemical_toxic" and req["lot"] == "L20251101"
    out = dict(site=SITE, operator="OP-02", product_class="chemical_toxic", product=TOXIC,
               items=[_gs1(ID1)], quantity=50000, unit="g", lot="L20251101", gate_seq=41)
    out.update(PARTY)
    assert scen.bodies(recs)[2:] == [("goods.out", out)], recs
    assert "dispatched 1" in rig.rt.messages


def test_dispatch_refused_shows_reasons_and_records_nothing() -> None:
    rig = scen.warehouse(lambda r: {"decision": "deny",
                                    "reasons": ["licence_expired", "recalled_lot"],
                                    "reg_ver": 3, "seq": 42})
    _receive(rig)
    _dispatch(rig)
    assert [r["kind"] for r in scen.dump(rig.ch)] == ["goods.in", "goods.in"]
    assert "REFUSED: licence_expired, recalled_lot" in rig.rt.messages


def test_no_answer_or_offline_means_nothing_leaves() -> None:
    rig = scen.warehouse(lambda r: None)
    _receive(rig)
    _dispatch(rig)
    assert [r["kind"] for r in scen.dump(rig.ch)] == ["goods.in", "goods.in"]
    assert "no answer from the gateway: NOT dispatched" in rig.rt.messages
    rig2 = scen.warehouse(lambda r: {"decision": "allow", "reasons": [], "reg_ver": 3})
    _receive(rig2)
    rig2.ch.online = False
    _dispatch(rig2)
    assert rig2.ch.dispatch_requests == [] and rig2.rt.gate.timeouts == 1
    assert [r["kind"] for r in rig2.ch.stored()] == ["goods.in", "goods.in"]


def test_a_toxic_dispatch_needs_the_art41_fields() -> None:
    rig = scen.warehouse(lambda r: {"decision": "allow", "reasons": [], "reg_ver": 3})
    keys(rig, 100, "2B1A2C")  # a regular buyer without a licence on file
    tag(rig, 1000, T1)
    keys(rig, 2000, "#")
    rig.run(4000)
    assert rig.ch.dispatch_requests == [] and rig.ch.stored() == []
    assert any("lacks licence" in m for m in rig.rt.messages), rig.rt.messages


def test_stocktake_in_parts_of_twelve() -> None:
    rig = scen.warehouse()
    keys(rig, 100, "3B")
    codes = ["8123456%013d" % i for i in range(13)]
    for i, c in enumerate(codes):  # a scan every 0.3 s: a brisk stocktake
        scan(rig, 1000 + 300 * i, c)
    scan(rig, 5000, codes[0])  # counted twice: once
    tag(rig, 5500, T1)
    keys(rig, 7000, "#")
    rig.run(8000)
    recs = scen.dump(rig.ch)
    drug = [{"scheme": "drug", "id": "drug:" + c, "level": "unknown"} for c in codes]
    cid = "CNT-%d-1" % rig.rt.rec.boot
    assert scen.bodies(recs) == [
        ("goods.count", {"site": SITE, "operator": "OP-02", "count_id": cid, "part": 1,
                         "last": False, "items": drug[:12]}),
        ("goods.count", {"site": SITE, "operator": "OP-02", "count_id": cid, "part": 2,
                         "last": True, "items": [drug[12], _gs1(ID1)]}),
    ], recs


SEED = ("]Q1郑单958\r\n河南秋乐种业科技股份有限公司\r\n1100012345678901\r\n"
        "https://zzj.moa.gov.cn/s/1100012345678901")


def test_a_seed_label_qr_is_one_item_though_its_four_lines_come_apart() -> None:
    """The scanner ends each of the label QR's four lines with CR LF."""
    rig = scen.warehouse()
    keys(rig, 100, "3B")
    scan(rig, 1000, SEED)
    scan(rig, 1400, SEED)  # scanned again: once
    keys(rig, 2000, "#")
    rig.run(3000)
    cid = "CNT-%d-1" % rig.rt.rec.boot
    seed = {"scheme": "seed", "id": "seed:1100012345678901", "level": "unit"}
    assert scen.bodies(scen.dump(rig.ch)) == [
        ("goods.count", {"site": SITE, "operator": "OP-02", "count_id": cid, "part": 1,
                         "last": True, "items": [seed]})], rig.rt.messages
    app_: "Any" = rig.rt.app
    assert app_.join.joined == 2 and app_.bad_reads == 0


def test_pack_an_outer_package() -> None:
    rig = scen.warehouse()
    keys(rig, 100, "4B")
    scan(rig, 1000, "81234560000000099999")  # the carton
    tag(rig, 1500, T1)
    tag(rig, 2500, T2)
    keys(rig, 3500, "#")
    rig.run(4500)
    assert scen.bodies(scen.dump(rig.ch)) == [
        ("goods.pack", {"site": SITE, "operator": "OP-02", "action": "pack",
                        "parent": {"scheme": "drug", "id": "drug:81234560000000099999",
                                   "level": "unknown"},
                        "children": [ID1, ID2]})]


def test_records_survive_a_reboot_and_are_acked() -> None:
    rig = scen.warehouse()
    rig.ch.online = False
    _receive(rig)
    assert rig.rt.log.pending() == 2 and rig.ch.stored() == [], (rig.rt.log.pending(), rig.rt.messages)
    rig.reboot(app.App, scen.example("warehouse"), "WHS-S1-0001")
    rig.ch.online = True
    rig.run(rig.w.now + 3000)
    recs = scen.dump(rig.ch)
    assert [r["kind"] for r in recs] == ["goods.in", "goods.in"]
    assert [r["seq"] for r in recs] == [1, 2], recs
    assert recs[0]["boot"] < rig.rt.rec.boot, (recs, rig.rt.rec.boot)
    assert rig.rt.log.pending() == 0


def test_a_forged_allow_lets_nothing_leave() -> None:
    """Someone on the broker sees the request and answers "allow" first, in every shape
    it can make without the device key; the agent's sealed "deny" is the only answer taken."""
    rig: "Any" = None

    def gate(r: "dict[str, Any]") -> "dict[str, Any]":
        ch = rig.ch
        allow = {"id": r["id"], "decision": "allow", "reasons": [], "reg_ver": 3, "seq": 9}
        ch.push_cmd(json.dumps(dict(allow, t="gate", dev=ch.dev, n=r["n"], mac="0" * 64)).encode())
        ch.push_cmd(auth.gate_answer(ch.dev, r["id"], r["n"], "allow", [], 3, b"\x01" * 32, 9))
        ch.push_cmd(auth.gate_answer(ch.dev, r["id"], "f" * 32, "allow", [], 3, ch.key, 9))
        return {"decision": "deny", "reasons": ["not_in_stock"], "reg_ver": 3}

    rig = scen.warehouse(gate)
    _receive(rig)
    _dispatch(rig)
    assert [r["kind"] for r in scen.dump(rig.ch)] == ["goods.in", "goods.in"]
    assert rig.rt.gate.forged == 3, rig.rt.gate.forged
    assert "REFUSED: not_in_stock" in rig.rt.messages
