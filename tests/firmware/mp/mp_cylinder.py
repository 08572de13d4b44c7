"""Cylinder reader scenarios: exactly the records expected, and the valve driven only
after the agent allowed the cylinder. The fill gate is answered by the stub gateway
(tesim.gateway.LoopChannel): the agent side is not under test here (see the end-to-end
test for the real agent)."""

import json

import scen
from scen import CYL, OK, REJECT, START, VALVE, press, tag_in, tag_out

from wire import auth

_TYPING = False
if _TYPING:
    from typing import Any

STATION = "CZ330106123"
PRE = {"appearance_ok": True, "residual_kpa": 120, "tare_g": 15200}
TAG = "E28011700000020A1B2C3D4E"


def allow(req: "dict[str, Any]") -> "dict[str, Any]":
    return {"decision": "allow", "reasons": [], "reg_ver": 12}


def _check(
    stage: str, decision: str, reasons: "list[str]", part: "dict[str, Any]", ver: int = 12
) -> "tuple[str, dict[str, Any]]":
    return (
        "cylinder.check",
        {
            "cyl": CYL,
            "tag": TAG,
            "station": STATION,
            "operator": "OP06001",
            "medium": "lpg",
            "stage": stage,
            "decision": decision,
            "reasons": reasons,
            "reg_ver": ver,
            stage: part,
        },
    )


def _cycle(rig: "scen.Rig", leak_ok: bool = True) -> None:
    tag_in(rig, 500)
    rig.w.script(press(OK, 1500) + press(START, 3000) + press(OK if leak_ok else REJECT, 25000))
    tag_out(rig, 30000)
    rig.run(32000)


def test_allowed_cylinder_is_filled_and_recorded() -> None:
    rig = scen.cylinder(allow)
    _cycle(rig)
    recs = scen.dump(rig.ch)
    pre_req, post_req = rig.ch.gate_requests
    assert pre_req["stage"] == "pre" and pre_req["cyl"] == CYL and pre_req["tag"] == TAG
    assert pre_req["pre"] == PRE and pre_req["operator"] == "OP06001"
    assert pre_req["station"] == STATION and pre_req["medium"] == "lpg"
    fill = recs[1]["body"]
    # the valve: opened once by START after the allow, closed at target - preact
    valve = rig.w.output_on(VALVE)
    assert [lv for _, lv in valve] == [0, 1, 0], valve
    opened, closed = valve[1][0], valve[2][0]
    assert 3000 < opened < 3300 and 14300 <= closed - opened <= 14600
    post = {"reweigh_g": 15200 + fill["actual_net_g"], "leak_ok": True, "checker": "OP06001"}
    assert post_req["post"] == post
    assert 14400 <= fill["actual_net_g"] <= 14600, fill
    assert fill["end_ts"] - fill["start_ts"] >= closed - opened
    expect = [
        _check("pre", "allow", [], PRE),
        (
            "cylinder.fill",
            {
                "cyl": CYL,
                "tag": TAG,
                "station": STATION,
                "operator": "OP06001",
                "medium": "lpg",
                "target_net_g": 14500,
                "actual_net_g": fill["actual_net_g"],
                "start_ts": fill["start_ts"],
                "end_ts": fill["end_ts"],
                "pre": PRE,
                "post": post,
                "scale": "CZ330106123-S01",
            },
        ),
        _check("post", "allow", [], post),
    ]
    assert scen.bodies(recs) == expect
    assert fill["actual_net_g"] == 14490, f"deterministic in virtual time: {fill['actual_net_g']}"
    assert [r["seq"] for r in recs] == [1, 2, 3] and {r["tq"] for r in recs} == {"rtc"}
    assert rig.rt.log.pending() == 0, "acknowledged records are freed"


def test_refused_cylinder_is_recorded_and_never_filled() -> None:
    rig = scen.cylinder(
        lambda r: {
            "decision": "deny",
            "reasons": ["inspection_overdue", "not_this_station"],
            "reg_ver": 12,
        }
    )
    _cycle(rig)
    assert scen.bodies(scen.dump(rig.ch)) == [
        _check("pre", "deny", ["inspection_overdue", "not_this_station"], PRE)
    ]
    assert rig.w.output_on(VALVE) == [(0, 0)], "the valve never opened"
    assert len(rig.ch.gate_requests) == 1


def test_no_answer_means_no_filling_and_no_record() -> None:
    rig = scen.cylinder(lambda r: None)
    _cycle(rig)
    assert rig.ch.stored() == [] and rig.w.output_on(VALVE) == [(0, 0)]
    assert rig.rt.gate.timeouts == 1
    assert "no answer from the gateway: NOT filled" in rig.rt.messages


def test_gateway_offline_means_no_filling() -> None:
    rig = scen.cylinder(allow)
    rig.ch.online = False
    _cycle(rig)
    assert rig.ch.gate_requests == [] and rig.w.output_on(VALVE) == [(0, 0)]


def test_late_allow_never_opens_the_valve() -> None:
    rig = scen.cylinder(allow)
    rig.ch.gate_delay_ms = 3500  # after the 3 s timeout
    _cycle(rig)
    assert rig.ch.stored() == [] and rig.w.output_on(VALVE) == [(0, 0)]
    assert rig.rt.gate.late == 1


def test_a_forged_allow_never_opens_the_valve() -> None:
    """A4 at the terminal: someone on the broker sees the request and answers "allow"
    first, in every shape it can make without the device key; the agent's sealed "deny"
    (unregistered) is the only answer taken."""
    rig: Any = None

    def gate(r: "dict[str, Any]") -> "dict[str, Any]":
        ch = rig.ch
        allow = {"id": r["id"], "decision": "allow", "reasons": [], "reg_ver": 12}
        ch.push_cmd(json.dumps(dict(allow, type="gate")).encode())  # the unsealed format
        forged = dict(allow, t="gate", dev=ch.dev, n=r["n"], mac="0" * 64)
        ch.push_cmd(json.dumps(forged).encode())
        ch.push_cmd(auth.gate_answer(ch.dev, r["id"], r["n"], "allow", [], 12, b"\x01" * 32))
        return {"decision": "deny", "reasons": ["unregistered"], "reg_ver": 12}

    rig = scen.cylinder(gate)
    _cycle(rig)
    assert scen.bodies(scen.dump(rig.ch)) == [_check("pre", "deny", ["unregistered"], PRE)]
    assert rig.w.output_on(VALVE) == [(0, 0)], "the valve never opened"
    assert rig.rt.gate.forged == 2 and rig.rt.errors["cmd"] == 1  # the unsealed one


def test_gate_error_without_reason_is_not_a_decision() -> None:
    rig = scen.cylinder(
        lambda r: {"decision": "deny", "reasons": [], "reg_ver": 0, "error": "gate has no identity"}
    )
    _cycle(rig)
    assert rig.ch.stored() == [] and rig.w.output_on(VALVE) == [(0, 0)]
    assert "gate error: gate has no identity" in rig.rt.messages


def test_damaged_cylinder_reported_by_the_operator() -> None:
    rig = scen.cylinder(
        lambda r: (
            {"decision": "deny", "reasons": ["damaged"], "reg_ver": 3}
            if not r["pre"]["appearance_ok"]
            else allow(r)
        )
    )
    tag_in(rig, 500)
    rig.w.script(press(REJECT, 1500) + press(START, 3000))
    rig.run(8000)
    pre = dict(PRE, appearance_ok=False)
    assert scen.bodies(scen.dump(rig.ch)) == [_check("pre", "deny", ["damaged"], pre, 3)]
    assert rig.w.output_on(VALVE) == [(0, 0)]


def test_overfilled_cylinder_is_held() -> None:
    def gate(r: "dict[str, Any]") -> "dict[str, Any]":
        if r["stage"] == "post":
            return {"decision": "deny", "reasons": ["overfilled"], "reg_ver": 12}
        return allow(r)

    rig = scen.cylinder(gate, inflight_g=900)  # a slow valve: 900 g more after closing
    _cycle(rig)
    recs = scen.dump(rig.ch)
    kinds = [(r["kind"], r["body"].get("decision")) for r in recs]
    assert kinds == [
        ("cylinder.check", "allow"),
        ("cylinder.fill", None),
        ("cylinder.check", "deny"),
    ]
    assert recs[2]["body"]["reasons"] == ["overfilled"] and recs[2]["body"]["stage"] == "post"
    assert recs[1]["body"]["actual_net_g"] >= 15300
    assert "post check: HOLD CYLINDER: overfilled" in rig.rt.messages


def test_post_check_without_answer_still_records_the_fill() -> None:
    n = []

    def gate(r: "dict[str, Any]") -> "dict[str, Any] | None":
        n.append(r["stage"])
        return allow(r) if r["stage"] == "pre" else None

    rig = scen.cylinder(gate)
    _cycle(rig)
    recs = scen.dump(rig.ch)
    assert [r["kind"] for r in recs] == ["cylinder.check", "cylinder.fill"]
    assert "post check not confirmed: HOLD CYLINDER" in rig.rt.messages and n == ["pre", "post"]


def test_tag_without_a_cylinder_code() -> None:
    rig = scen.cylinder(allow)
    tag_in(rig, 500, b"bad code!")
    rig.w.script(press(OK, 1500) + press(START, 3000))
    rig.run(6000)
    assert rig.ch.stored() == [] and rig.ch.gate_requests == []


def test_scale_lost_while_filling_closes_the_valve() -> None:
    rig = scen.cylinder(allow)
    tag_in(rig, 500)
    rig.w.script(press(OK, 1500) + press(START, 3000))
    rig.w.at(6000, lambda w: setattr(rig.dev["scale"], "silent", True))
    rig.run(12000)
    valve = rig.w.output_on(VALVE)
    assert [lv for _, lv in valve] == [0, 1, 0] and valve[2][0] < 11000, valve
    assert any("scale not answering" in m for m in rig.rt.messages)
    assert rig.rt.app.healthy()


def test_hf_tag_through_the_mfrc522() -> None:
    cfg = scen.example("cylinder")
    cfg["hw"]["spi"] = {"rfid": {"id": 1, "sck": 18, "mosi": 23, "miso": 19, "cs": 15}}
    cfg["cylinder"]["reader"] = "hf"
    cfg["cylinder"]["tag_map"] = {"04A1B2C3D4E5F6": CYL}
    rig = scen.cylinder(allow, cfg)
    rig.w.at(500, lambda w: rig.dev["hf"].tap(bytes.fromhex("04A1B2C3D4E5F6")))
    rig.w.script(press(OK, 1500) + press(START, 3000) + press(OK, 25000))
    rig.run(30000)
    recs = scen.dump(rig.ch)
    assert [r["kind"] for r in recs] == ["cylinder.check", "cylinder.fill", "cylinder.check"]
    assert recs[0]["body"]["tag"] == "04A1B2C3D4E5F6" and recs[1]["body"]["cyl"] == CYL
