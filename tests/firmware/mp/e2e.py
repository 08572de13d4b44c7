"""End-to-end drivers: an app runs in real time under ``asyncio`` in the WebAssembly
interpreter; its MQTT link is the firmware's own (te.mqttlink) over a Node TCP socket
(tesim.jsnet) to a real Mosquitto, where a real edge agent takes the records.

Prints ``MADE <record>`` for every record made, ``E2E <event>`` milestones (the host test
restarts the broker on ``E2E restart-broker``) and ``E2E done ...`` when every record is
acknowledged, with the terminal's counters (``key=value``): what it ignored as forged or
as naming seqs it had not sent.

``offline_ms`` keeps the network down for that long at the start (the link's first
attempt waits), so records pile up unsent in the flash log, as after an outage."""

import json

import scen
from scen import DOOR, MAINS, OK, START, press, tag_in, tag_out
from te.config import Identity, Section
from te.mqttlink import MqttChannel
from tesim.jsnet import JsTransport

_TYPING = False
if _TYPING:
    from typing import Any


def _channel(ident: Identity, offline_ms: int = 0) -> "Any":
    def make(clock: "Any") -> MqttChannel:
        lk = ident.link
        ch = MqttChannel(
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
        ch.retry_at = clock.add(clock.ticks_ms(), offline_ms)
        return ch

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
    snd = rt.sender
    print(
        f"E2E done made={rt.rec.made} pending={rt.log.pending()} "
        f"connects={getattr(ch, 'connects', 0)} failures={getattr(ch, 'failures', 0)} "
        f"resends={snd.resends} acks={snd.acks} forged_acks={snd.forged_acks} "
        f"unsent_acks={snd.unsent_acks} gate_forged={rt.gate.forged} "
        f"gate_late={rt.gate.late} gate_timeouts={rt.gate.timeouts} "
        f"cmd_errors={rt.errors.get('cmd', 0)} "
    )
    close = getattr(ch, "close", None)
    if close is not None:
        close()


async def elevator(
    config: "dict[str, Any]", offline_ms: int = 0, restart_broker: bool = True
) -> None:
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
    rig = scen.elevator(cfg, real_time=True, ident=ident, channel=_channel(ident, offline_ms))
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
    marks = [(4300, "restart-broker")] if restart_broker else []
    await _drive(rig, 10500, 40000, marks)


async def elevator_serial(
    config: "dict[str, Any]", port: str, marks: "list[list[Any]] | None" = None
) -> None:
    """The elevator box wired to its gateway: the firmware's serial link (te.slink) over a
    real pty (tesim.jsserial) to the agent's ``serial_link`` source. ``marks``: ``[ms,
    name]`` printed as ``E2E <name>`` at that scenario time (the host acts on them)."""
    from te.slink import SerialChannel
    from tesim.jsserial import JsSerial

    ident = Identity(Section(config, "config.json:"))
    cfg = scen.elevator_cfg()
    cfg["elevator"].update({"power_ms": 300, "alarm_ms": 300, "clear_ms": 500})
    uart = JsSerial(port)

    def make(clock: "Any") -> SerialChannel:
        return SerialChannel(uart, clock, rto_ms=200)  # type: ignore[arg-type]

    rig = scen.elevator(cfg, real_time=True, ident=ident, channel=make)
    _trace(rig)
    rig.w.script(
        [
            (500, lambda w: w.set_pin(MAINS, 0)),
            (1500, lambda w: w.set_pin(MAINS, 1)),
            (2000, lambda w: w.set_pin(scen.ALARM, 0)),
            (2600, lambda w: w.set_pin(scen.ALARM, 1)),
        ]
    )
    await _drive(rig, 4000, 40000, [(int(m[0]), str(m[1])) for m in marks or []])
    ep = rig.rt.channel.ep  # type: ignore[attr-defined]
    print(
        f"E2E serial retransmits={ep.retransmits} bad_frames={ep.bad_frames} "
        f"opens={uart.opens} hangups={uart.hangups} "
    )
    uart.close()


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


async def cylinder_unregistered(config: "dict[str, Any]", cycles: int) -> None:
    """``cycles`` cylinders the registry does not know, one after the other: tag in,
    appearance OK, the gate's answer, START pressed (it opens the valve only after an
    allow), tag out; the next tag 2.5 s later (the reader's absence delay is 1.5 s).
    Prints how often the valve opened."""
    ident = Identity(Section(config, "config.json:"))
    rig = scen.cylinder(real_time=True, ident=ident, channel=_channel(ident))
    _trace(rig)
    for i in range(cycles):
        t0 = 500 + i * 5000
        tag_in(rig, t0)
        rig.w.script(press(OK, t0 + 700) + press(START, t0 + 1800))
        tag_out(rig, t0 + 2500)
    end = 500 + cycles * 5000
    await _drive(rig, end, end + 30000, [])
    opened = [t for t, lv in rig.w.output_on(scen.VALVE) if lv]
    app: Any = rig.rt.app
    print(f"E2E valve cycles={app.cycles} opened={len(opened)}")


async def warehouse(config: "dict[str, Any]") -> None:
    """Two cylinders of cyanide received by tag, one dispatched to the licensed buyer (the
    real agent's dispatch gate allows it), then the same tag again (refused:
    already_dispatched)."""
    ident = Identity(Section(config, "config.json:"))
    rig = scen.warehouse(real_time=True, ident=ident, channel=_channel(ident))
    await _warehouse_run(rig)


async def warehouse_serial(config: "dict[str, Any]", port: str) -> None:
    """The same handheld wired to its gateway: records and dispatch requests (``DISPATCH``
    frames) over the firmware's serial link (te.slink) on a real pty (tesim.jsserial) to
    the agent's ``serial_link`` source, the sealed answers back as ``CMD`` frames."""
    from te.slink import SerialChannel
    from tesim.jsserial import JsSerial

    ident = Identity(Section(config, "config.json:"))
    uart = JsSerial(port)

    def make(clock: "Any") -> SerialChannel:
        return SerialChannel(uart, clock, rto_ms=200)  # type: ignore[arg-type]

    rig = scen.warehouse(real_time=True, ident=ident, channel=make)
    await _warehouse_run(rig)
    ep = rig.rt.channel.ep  # type: ignore[attr-defined]
    print(f"E2E serial retransmits={ep.retransmits} bad_frames={ep.bad_frames} ")
    uart.close()


async def _step(rig: "scen.Rig", done: "Any", timeout_ms: int, what: str) -> None:
    """Run the app until ``done()`` (each step waits for the app, not for a clock: under a
    loaded machine the interpreter polls slowly, and a fixed timeline let a key press or
    a tag pass between two polls unseen)."""
    import asyncio

    w, rt = rig.w, rig.rt
    end = w.now + timeout_ms
    while not done():
        if w.now > end:
            raise AssertionError("E2E step timed out: " + what)
        w.tick()
        rt.poll()
        await asyncio.sleep_ms(5)


async def _hold(rig: "scen.Rig", ms: int, polls: int = 8) -> None:
    """At least ``ms`` and ``polls`` polls of the app."""
    w = rig.w
    n = [0]
    end = w.now + ms

    def done() -> bool:
        n[0] += 1
        return n[0] > polls and w.now >= end

    await _step(rig, done, 60000, "hold")


async def _keys(rig: "scen.Rig", keys: str) -> None:
    """Press each key long enough for the keypad scan to see it, then let it go."""
    for k in keys:
        rig.w.keypad.pressed = k
        await _hold(rig, 80)
        rig.w.keypad.pressed = ""
        await _hold(rig, 80)


async def _read_tag(rig: "scen.Rig", said: "list[str]", epc_hex: str, line: str) -> None:
    """A tag held in the handheld's field until the app shows ``line``, then taken away."""
    rd = rig.dev["reader"]
    epc = bytes.fromhex(epc_hex)
    at = len(said)
    if isinstance(rd.tags, dict):  # Chafon: EPC -> user memory
        rd.tags[epc] = b""
    else:  # R2000: the EPCs in the field
        rd.tags.append(epc)
    await _step(rig, lambda: any(s.startswith(line) for s in said[at:]), 20000, "read " + line)
    rd.tags.clear()
    app: "Any" = rig.rt.app
    await _step(rig, lambda: app.last_epc == "", 20000, "the tag seen gone")


def _shown(said: "list[str]", at: int, *starts: str) -> "Any":
    return lambda: any(s.startswith(x) for s in said[at:] for x in starts)


async def _warehouse_run(rig: "scen.Rig") -> None:
    """Receive two tagged cylinders; dispatch one to the licensed buyer once the receipt
    is acknowledged (in stock at the agent); then the same tag again (refused)."""
    _trace(rig)
    rt = rig.rt
    said: "list[str]" = []
    say = rt.say

    def keep(text: str) -> None:
        said.append(text)
        say(text)

    rt.say = keep  # type: ignore[method-assign]
    t1, t2 = "3035A537C8377540000003E9", "3035A537C8377540000003EA"
    at = len(said)
    await _keys(rig, "1B1A")
    await _step(rig, _shown(said, at, "product: "), 20000, "receive mode and product")
    await _read_tag(rig, said, t1, "1: ")
    await _read_tag(rig, said, t2, "2: ")
    at = len(said)
    await _keys(rig, "#")
    await _step(rig, _shown(said, at, "received 2"), 20000, "the receipt recorded")
    await _step(rig, lambda: rt.log.pending() == 0, 30000, "the receipt acknowledged")
    at = len(said)
    await _keys(rig, "2B1A1C")
    await _step(rig, _shown(said, at, "party: "), 20000, "dispatch mode, product, party")
    await _read_tag(rig, said, t1, "1: ")
    at = len(said)
    await _keys(rig, "#")
    await _step(rig, _shown(said, at, "dispatched", "REFUSED", "no answer"), 30000, "answer")
    await _read_tag(rig, said, t1, "1: ")  # the same item again: the list was cleared
    at = len(said)
    await _keys(rig, "#")
    await _step(rig, _shown(said, at, "dispatched", "REFUSED", "no answer"), 30000, "answer")
    await _drive(rig, 0, rig.w.now + 30000, [])
