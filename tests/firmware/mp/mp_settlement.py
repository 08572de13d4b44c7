"""Settlement terminal scenarios: a sale from cards, keypad and the scale's own figures to
the record and the printed receipt; serials across a reboot and a new day; stopped
batches; cancel; unknown cards; the terminal's UTC offset. Codes expected here were
computed on the host with wire/tracecode.py (the same file the board runs)."""

import json

import scen
from scen import BUYER, SELLER, tap
from tesim.devices import typed

from wire import auth

_TYPING = False
if _TYPING:
    from typing import Any

PORK = {
    "batch_id": "33010625112300000076",
    "goods_code": "10010004",
    "goods_name": "五花肉",
    "mode": "weighed",
    "weight_g": 1235,
    "price_fen_per_kg": 3280,
    "amount_fen": 4051,
}
TOFU = {
    "batch_id": "33010625112300000472",
    "goods_code": "20040001",
    "goods_name": "豆腐",
    "mode": "counted",
    "pieces": 3,
    "price_fen_per_piece": 250,
    "amount_fen": 750,
}


def _sale(rig: "scen.Rig", t0: int, buyer: bool = True) -> None:
    sc = rig.dev["scale"]

    def load(w: "object") -> None:
        sc.gross_g = 1235
        sc.price_fen = 3280

    rig.w.at(t0, load)
    tap(rig, t0 + 1000, SELLER)
    rig.w.script(typed("1A", t0 + 2000))
    if buyer:
        tap(rig, t0 + 3500, BUYER)
    rig.w.script(
        typed("2A", t0 + 4500)
        + typed("3B", t0 + 5200)
        + typed("3D", t0 + 6000)
        + typed("#", t0 + 7000)
    )


def _body(
    tran: str, trace: str, buyer: bool = True, lines: "list[dict[str, Any]] | None" = None
) -> "dict[str, Any]":
    lines = lines if lines is not None else [PORK, TOFU]
    b: dict[str, Any] = {
        "market": "M330106042",
        "terminal": "M330106042-017",
        "scale_sw": "ACS-15RT V3.0.7",
        "tran_id": tran,
        "trace_id": trace,
        "seller": "T3301060007",
        "seller_card": "9C3A11F0",
        "lines": lines,
        "total_fen": sum(x["amount_fen"] for x in lines),
        "pay": "wechat",
    }
    if buyer:
        b["buyer"] = "B33010600042"
        b["buyer_card"] = "04A1B2C3D4E5F6"
    return b


def test_a_sale_is_recorded_and_printed() -> None:
    rig = scen.settlement()
    _sale(rig, 0)
    rig.run(9000)
    recs = scen.dump(rig.ch)
    assert scen.bodies(recs) == [
        ("market.settlement", _body("33010625112317000014", "83301422511231700014"))
    ]
    assert recs[0]["body"]["total_fen"] == 4801
    (printed,) = rig.dev["printer"].receipts()
    assert printed["qr"] == "https://trace.example.cn/t/83301422511231700014"
    assert printed["lines"][0] == "西湖农贸市场"
    assert printed["lines"][2] == "2025-11-23 09:00:07", printed["lines"]
    assert "Voucher 33010625112317000014" in printed["lines"]
    assert "Trace 83301422511231700014" in printed["lines"]
    assert printed["lines"][-3] == "TOTAL" + " " * 22 + "48.01"
    assert rig.dev["scale"].requests == 1, "one DC2: the scale's figures, taken once"


def test_the_terminal_utc_offset_dates_codes_and_receipt_alike() -> None:
    cfg = scen.example("settlement")
    cfg["settlement"]["utc_offset_min"] = 0
    rig = scen.settlement(cfg)
    rig.w.clock.set_wall_ms(1763920800000)  # 2025-11-24 02:00 CST, 2025-11-23 18:00 UTC
    _sale(rig, 0)
    rig.run(9000)
    (rec,) = scen.dump(rig.ch)
    assert rec["body"]["trace_id"] == "83301422511231700014", rec["body"]
    (printed,) = rig.dev["printer"].receipts()
    assert printed["lines"][2] == "2025-11-23 18:00:07", printed["lines"]


def test_serials_continue_after_a_reboot_and_restart_each_day() -> None:
    rig = scen.settlement()
    _sale(rig, 0)
    _sale(rig, 10000, buyer=False)
    rig.run(19000)
    rig.reboot(__import__("settlement").App, scen.example("settlement"), "MKT-M42-017")
    _sale(rig, 20000, buyer=False)
    rig.run(29000)
    rig.w.clock.set_wall_ms(rig.w.clock.wall_ms() + 86400000)  # the next day
    _sale(rig, 30000, buyer=False)
    rig.run(39000)
    recs = scen.dump(rig.ch)
    codes = [(r["body"]["tran_id"], r["body"]["trace_id"]) for r in recs]
    assert codes == [
        ("33010625112317000014", "83301422511231700014"),
        ("33010625112317000021", "83301422511231700021"),
        ("33010625112317000038", "83301422511231700038"),
        ("33010625112417000013", "83301422511241700011"),
    ], codes
    assert [r["boot"] for r in recs] == [1, 1, 2, 2]
    assert "buyer" not in recs[1]["body"]


STOP = {
    "batch_id": "33010625112300000076",
    "reason": "clenbuterol test failed",
    "at": "2025-11-23T08:00:00+08:00",
}


def test_stopped_batch_cannot_be_sold() -> None:
    rig = scen.settlement()
    rig.ch.stop_list(3, [STOP])
    _sale(rig, 0)
    rig.run(9000)
    assert scen.bodies(scen.dump(rig.ch)) == [
        ("market.settlement", _body("33010625112317000014", "83301422511231700014", lines=[TOFU]))
    ]
    assert "batch 33010625112300000076 is STOPPED: not for sale" in rig.rt.messages
    # an older stop list does not replace a newer one; the list survives a reboot
    rig.ch.stop_list(2, [])
    rig.run(9500)
    app: Any = rig.rt.app
    assert app.stop_lists_refused == 1
    rig.reboot(__import__("settlement").App, scen.example("settlement"), "MKT-M42-017")
    app = rig.rt.app
    assert app.stopped == ["33010625112300000076"] and app.stop_ver == 3


def test_only_a_sealed_newer_stop_list_is_taken() -> None:
    """Whoever can publish on t/{dev}/cmd cannot lift a stop (nor stop a batch): only the
    agent's seal under this device's key, with a version above the one held, counts; a
    newer list without the batch lifts its stop."""
    rig = scen.settlement()
    ch = rig.ch
    app: Any = rig.rt.app
    ch.stop_list(3, [STOP])
    rig.run(100)
    assert app.stopped == [STOP["batch_id"]]
    lift = json.loads(auth.stop_list(ch.dev, 9, [], ch.key))
    lift["mac"] = "0" * 64
    for forged in (
        json.dumps({"type": "stop_list", "version": 9, "batches": []}).encode(),  # unsealed
        json.dumps(lift).encode(),
        auth.stop_list(ch.dev, 9, [], b"\x01" * 32),  # another key
        auth.stop_list("MKT-OTHER", 9, [], ch.key),  # another device's list
        auth.stop_list(ch.dev, 3, [], ch.key),  # genuine, but not newer
        b"\xff not json",
        b"[" * 4000,
    ):
        ch.push_cmd(forged)
    rig.run(200)
    assert app.stopped == [STOP["batch_id"]] and app.stop_ver == 3
    assert app.stop_lists_refused == 5 and rig.rt.errors["cmd"] == 2  # 2: not JSON
    ch.stop_list(4, [])  # the centre lifted the stop
    _sale(rig, 1000)
    rig.run(10000)
    assert app.stop_ver == 4 and app.stopped == []
    (rec,) = scen.dump(ch)
    assert [x["batch_id"] for x in rec["body"]["lines"]] == [PORK["batch_id"], TOFU["batch_id"]]


def test_unstable_scale_waits_for_a_stable_reading() -> None:
    rig = scen.settlement()
    sc = rig.dev["scale"]
    sc.stable = False
    sc.gross_g = 900

    def settle(w: "object") -> None:
        sc.gross_g = 1235
        sc.stable = True

    rig.w.at(4500, settle)
    sc.price_fen = 3280
    tap(rig, 1000, SELLER)
    rig.w.script(typed("1A#", 2000, gap=1500))
    rig.run(8000)
    (rec,) = scen.dump(rig.ch)
    assert rec["body"]["lines"] == [PORK] and sc.requests > 3


def test_cancel_unknown_cards_and_empty_sales_make_no_record() -> None:
    rig = scen.settlement()
    tap(rig, 500, bytes.fromhex("DEADBEEF"))  # not a trader card: no session
    rig.w.script(typed("1A#", 1200))
    tap(rig, 3000, SELLER)
    rig.w.script(typed("#", 3800))  # nothing to settle
    rig.w.script(typed("2A3B*", 4500))  # cancelled
    rig.run(9000)
    assert rig.ch.stored() == [] and rig.dev["printer"].data == b""
    assert "nothing to settle" in rig.rt.messages and "sale cancelled" in rig.rt.messages
    assert "card DEADBEEF is not a trader card" in rig.rt.messages


def test_a_full_flash_log_refuses_the_sale() -> None:
    cfg = scen.example("settlement")
    cfg["log"] = {"seg_bytes": 512, "max_bytes": 2048, "reserve": 0}
    rig = scen.settlement(cfg)
    rig.ch.acking = False  # the gateway is away: nothing is freed
    for i in range(4):
        _sale(rig, i * 10000, buyer=False)
    rig.run(40000)
    made = rig.rt.rec.made
    assert made >= 1 and rig.rt.log.bytes <= 2048
    assert any(m.startswith("SALE NOT RECORDED") for m in rig.rt.messages)
    assert len(rig.dev["printer"].receipts()) == made, "no receipt without a record"
