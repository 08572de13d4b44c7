"""End-to-end drivers: an app runs in real time under ``asyncio`` in the WebAssembly
interpreter; its MQTT link is the firmware's own (te.mqttlink) over a Node TCP socket
(tesim.jsnet) to a real Mosquitto, where a real edge agent takes the records.

Prints ``MADE <record>`` for every record made, ``E2E <event>`` milestones (the host test
restarts the broker on ``E2E restart-broker``) and ``E2E done ...`` when every record is
acknowledged."""

import json

import scen
from scen import DOOR, MAINS, OK, START, press, tag_in, tag_out
from te.config import Identity, Section
from te.mqttlink import MqttChannel
from tesim.jsnet import JsTransport

_TYPING = False
if _TYPING:
    from typing import Any


def _channel(ident: Identity) -> "Any":
    def make(clock: "Any") -> MqttChannel:
        lk = ident.link
        return MqttChannel(
            JsTransport(),
            clock,
            ident.dev,
            lk.host,
            lk.port,
            lk.prefix,
            keepalive_s=5,
            backoff_min_ms=200,
            backoff_max_ms=2000,
            reply_ms=4000,
        )

    return make


def _trace(rig: "scen.Rig") -> None:
    orig = rig.rt.rec.record

    def record(kind: str, body: "dict[str, Any]", at: "Any" = None) -> "Any":
        r = orig(kind, body, at)
        if r is not None:
            print("MADE " + json.dumps(r))
        return r

    rig.rt.rec.record = record  # type: ignore[method-assign]


async def _drive(
    rig: "scen.Rig", scenario_ms: int, deadline_ms: int, marks: "list[tuple[int, str]]"
) -> None:
    import asyncio

    w = rig.w
    rt = rig.rt
    while True:
        w.tick()
        rt.poll()
        now = w.now
        while marks and marks[0][0] <= now:
            print("E2E " + marks.pop(0)[1])
        if now > scenario_ms and rt.log.pending() == 0 and not marks:
            break
        if now > deadline_ms:
            print(f"E2E timeout pending={rt.log.pending()}")
            break
        await asyncio.sleep_ms(5)
    ch = rt.channel
    print(
        f"E2E done made={rt.rec.made} pending={rt.log.pending()} "
        f"connects={ch.connects} failures={ch.failures} "  # type: ignore[attr-defined]
        f"resends={rt.sender.resends}"
    )
    ch.close()  # type: ignore[attr-defined]


async def elevator(config: "dict[str, Any]") -> None:
    ident = Identity(Section(config, "config.json:"))
    cfg = scen.elevator_cfg()
    cfg["elevator"].update(
        {
            "power_ms": 300,
            "alarm_ms": 300,
            "clear_ms": 500,
            "door_move_ms": 200,
            "status_min_ms": 500,
        }
    )
    rig = scen.elevator(cfg, real_time=True, ident=ident, channel=_channel(ident))
    _trace(rig)
    car = rig.dev["car"]
    rig.w.script(
        [
            (500, lambda w: w.set_pin(MAINS, 0)),
            (1500, lambda w: w.set_pin(MAINS, 1)),
            (2000, lambda w: w.set_pin(scen.ALARM, 0)),
            (2600, lambda w: w.set_pin(scen.ALARM, 1)),
            (3000, lambda w: car.go(1000, 3500)),
            (4000, lambda w: w.set_pin(DOOR, 0)),
            (4600, lambda w: w.set_pin(DOOR, 1)),
        ]
    )
    scen.tap(rig, 7500, bytes.fromhex("A1B2C3D4"))
    scen.tap(rig, 9000, bytes.fromhex("A1B2C3D4"))
    await _drive(rig, 10500, 40000, [(4300, "restart-broker")])


async def cylinder(config: "dict[str, Any]") -> None:
    ident = Identity(Section(config, "config.json:"))
    rig = scen.cylinder(
        rate_g_s=5000, inflight_g=80, real_time=True, ident=ident, channel=_channel(ident)
    )
    _trace(rig)
    tag_in(rig, 300)
    rig.w.script(press(OK, 800) + press(START, 2500) + press(OK, 7000))
    tag_out(rig, 8500)
    await _drive(rig, 9000, 40000, [])
    print("E2E gate " + json.dumps([r.answer for r in [rig.rt.gate.req] if r is not None]))
