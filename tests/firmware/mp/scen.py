"""Scenario helpers: each app's board wired to simulated devices, its config from the
app's ``app.example.json`` (the file a technician starts from), a stub gateway."""

import json

import tesim

tesim.install()

from te.runtime import Runtime  # noqa: E402
from tesim import harness  # noqa: E402
from tesim.devices import (  # noqa: E402
    CarSim,
    CasScaleSim,
    ChafonSim,
    FillingRig,
    KeypadSim,
    PrinterSim,
    R2000Sim,
    ScannerSim,
    SicsScaleSim,
)
from tesim.gateway import LoopChannel  # noqa: E402
from tesim.memfs import MemFS  # noqa: E402
from tesim.mfrc522sim import Mfrc522Sim  # noqa: E402
from tesim.world import World, new_world  # noqa: E402

_TYPING = False
if _TYPING:
    from typing import Any


def example(app: str) -> "dict[str, Any]":
    with open(f"/apps/{app}.json") as f:
        cfg: dict[str, Any] = json.load(f)
    return cfg


def press(pin: int, at: int, ms: int = 120) -> "list[tuple[int, Any]]":
    """An active-low push button held ``ms``."""
    return [(at, lambda w: w.set_pin(pin, 0)), (at + ms, lambda w: w.set_pin(pin, 1))]


def dump(ch: LoopChannel) -> "list[dict[str, Any]]":
    """The records the stub gateway stored; printed for the host's schema and MAC checks."""
    recs = ch.stored()
    for r in recs:
        print("REC " + json.dumps(r))
    return recs


def bodies(recs: "list[dict[str, Any]]") -> "list[tuple[str, dict[str, Any]]]":
    return [(r["kind"], r["body"]) for r in recs]


class Rig:
    def __init__(
        self, w: World, rt: Runtime, ch: LoopChannel, fs: MemFS, dev: "dict[str, Any]"
    ) -> None:
        self.w = w
        self.rt = rt
        self.ch = ch
        self.fs = fs
        self.dev = dev

    def run(self, until: int) -> None:
        self.w.run(until, self.rt.poll)

    def reboot(self, app: "Any", cfg: "dict[str, Any]", dev: str) -> None:
        self.rt.log.close()
        self.rt = harness.runtime(self.w, app, cfg, harness.identity(dev), self.fs, self.ch)


# -- cylinder -------------------------------------------------------------------------
VALVE, OK, REJECT, START, RESIDUAL = 25, 32, 33, 26, 34
EPC = bytes.fromhex("E2801170000002 0A1B2C3D4E".replace(" ", ""))
CYL = "3301061512310042"


def cylinder(
    gate: "Any" = None,
    cfg: "dict[str, Any] | None" = None,
    tare: int = 15200,
    rate_g_s: int = 1000,
    inflight_g: int = 80,
    real_time: bool = False,
    ident: "Any" = None,
    channel: "Any" = None,
) -> Rig:
    import cylinder as app

    w = new_world(real_time=real_time)
    c = cfg or example("cylinder")
    scale = SicsScaleSim(tare)
    reader = ChafonSim()
    w.attach_uart(1, reader)
    w.attach_uart(2, scale)
    w.models.append(FillingRig(scale, VALVE, rate_g_s, inflight_g))
    for p in (OK, REJECT, START):
        w.set_pin(p, 1)
    a = c["hw"]["adc"]["residual"]
    w.adc[RESIDUAL] = a["zero"] + 120 * (a["full"] - a["zero"]) // a["full_units"] + 1
    hf = Mfrc522Sim(15)
    w.attach_spi(1, hf)
    fs = MemFS()
    ident = ident or harness.identity("CYL-S1-3F9A2C")
    ch = channel(w.clock) if channel is not None else LoopChannel(w.clock, ident.dev, ident.key)
    if channel is None:
        ch.gate = gate
    rt = harness.runtime(w, app.App, c, ident, fs, ch)
    return Rig(w, rt, ch, fs, {"scale": scale, "reader": reader, "hf": hf})


def tag_in(rig: Rig, at: int, code: bytes = b"3301061512310042") -> None:
    rig.w.at(at, lambda w: rig.dev["reader"].tags.__setitem__(EPC, code + b"\x00" * 4))


def tag_out(rig: Rig, at: int) -> None:
    rig.w.at(at, lambda w: rig.dev["reader"].tags.clear())


# -- elevator -------------------------------------------------------------------------
DOOR, ZONE, PEOPLE, ALARM, MAINS, INSP, ENC_A, ENC_B = 4, 5, 18, 19, 21, 22, 34, 35
LEVELS = [0, 3500, 7000, 10500]


def elevator_cfg() -> "dict[str, Any]":
    c = example("elevator")
    c["elevator"].update(
        {
            "floors": [[1, 0], [2, 3500], [3, 7000], [4, 10500]],
            "home_floor": 1,
            "trapped_ms": 5000,
            "stop_out_ms": 3000,
            "door_move_ms": 300,
            "overspeed_ms": 200,
            "power_ms": 1000,
            "alarm_ms": 500,
            "clear_ms": 1000,
            "status_every_ms": 600000,
            "status_min_ms": 1000,
        }
    )
    return c


def elevator(
    cfg: "dict[str, Any] | None" = None,
    real_time: bool = False,
    ident: "Any" = None,
    channel: "Any" = None,
) -> Rig:
    import elevator as app

    w = new_world(real_time=real_time)
    c = cfg or elevator_cfg()
    car = CarSim(ENC_A, ENC_B, ZONE, LEVELS, 10, 0)
    w.models.append(car)
    for p, v in ((DOOR, 1), (PEOPLE, 0), (ALARM, 1), (MAINS, 1), (INSP, 0), (ZONE, 1)):
        w.set_pin(p, v)
    rfid = Mfrc522Sim(15)
    w.attach_spi(1, rfid)
    fs = MemFS()
    ident = ident or harness.identity("ELV-B7-0001", kind="elevator-box")
    ch = channel(w.clock) if channel is not None else LoopChannel(w.clock, ident.dev, ident.key)
    rt = harness.runtime(w, app.App, c, ident, fs, ch)
    return Rig(w, rt, ch, fs, {"car": car, "rfid": rfid})


def status_trace(recs: "list[dict[str, Any]]") -> "list[tuple[Any, ...]]":
    out = []
    for r in recs:
        b = r["body"]
        if r["kind"] == "elevator.status":
            out.append(
                (
                    b["dir"],
                    b["floor"],
                    b["door"],
                    b["door_zone"],
                    b["people"],
                    b["maintenance"],
                    tuple(b["faults"]),
                )
            )
    return out


def faults(recs: "list[dict[str, Any]]") -> "list[tuple[str, str]]":
    return [(r["body"]["fault"], r["body"]["state"]) for r in recs if r["kind"] == "elevator.fault"]


# -- settlement -------------------------------------------------------------------------
SELLER = bytes.fromhex("9C3A11F0")
BUYER = bytes.fromhex("04A1B2C3D4E5F6")


def settlement(cfg: "dict[str, Any] | None" = None) -> Rig:
    import settlement as app

    w = new_world()
    c = cfg or example("settlement")
    scale = CasScaleSim()
    printer = PrinterSim()
    w.attach_uart(1, scale)
    w.attach_uart(2, printer)
    pins = c["hw"]["pins"]
    w.keypad = KeypadSim(
        [pins[f"r{i}"] for i in (1, 2, 3, 4)], [pins[f"c{i}"] for i in (1, 2, 3, 4)]
    )
    rfid = Mfrc522Sim(15)
    w.attach_spi(1, rfid)
    fs = MemFS()
    ident = harness.identity("MKT-M42-017", kind="market-scale")
    ch = LoopChannel(w.clock, ident.dev, ident.key)
    rt = harness.runtime(w, app.App, c, ident, fs, ch)
    return Rig(w, rt, ch, fs, {"scale": scale, "printer": printer, "rfid": rfid})


def tap(rig: Rig, at: int, uid: bytes, ms: int = 400) -> None:
    rig.w.at(at, lambda w: rig.dev["rfid"].tap(uid))
    rig.w.at(at + ms, lambda w: rig.dev["rfid"].remove())


# -- warehouse handheld -------------------------------------------------------------------
def warehouse(
    dispatch: "Any" = None,
    cfg: "dict[str, Any] | None" = None,
    real_time: bool = False,
    ident: "Any" = None,
    channel: "Any" = None,
) -> Rig:
    import warehouse as app

    w = new_world(real_time=real_time)
    c = cfg or example("warehouse")
    reader: "Any" = R2000Sim() if c["warehouse"].get("reader") == "r2000" else ChafonSim()
    scanner = ScannerSim()
    w.attach_uart(1, reader)
    w.attach_uart(2, scanner)
    pins = c["hw"]["pins"]
    w.keypad = KeypadSim(
        [pins[f"r{i}"] for i in (1, 2, 3, 4)], [pins[f"c{i}"] for i in (1, 2, 3, 4)]
    )
    fs = MemFS()
    ident = ident or harness.identity("WHS-S1-0001", kind="warehouse-terminal")
    if channel is not None:
        ch = channel(w.clock)
    else:
        ch = LoopChannel(w.clock, ident.dev, ident.key)
        ch.dispatch = dispatch
    rt = harness.runtime(w, app.App, c, ident, fs, ch)
    return Rig(w, rt, ch, fs, {"reader": reader, "scanner": scanner})


def tag(rig: Rig, at: int, epc_hex: str, ms: int = 600) -> None:
    """A tag held in the handheld's field for ``ms``."""
    epc = bytes.fromhex(epc_hex)
    rd = rig.dev["reader"]
    if isinstance(rd.tags, dict):  # Chafon: EPC -> user memory
        rig.w.at(at, lambda w: rd.tags.__setitem__(epc, b""))
    else:  # R2000: the EPCs in the field
        rig.w.at(at, lambda w: rd.tags.append(epc))
    rig.w.at(at + ms, lambda w: rd.tags.clear())


def scan(rig: Rig, at: int, text: str) -> None:
    rig.w.at(at, lambda w: rig.dev["scanner"].scan(w, text))
