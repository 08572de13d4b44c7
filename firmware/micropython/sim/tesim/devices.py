"""Device models behind the simulated buses, speaking through the drivers' codecs
(the same ``encode_*`` / ``CommandDecoder`` the host-side simulators use)."""

from drivers.codecs import cas_ecr, chafon, sics
from drivers.codecs.quantities import Money, Weight

_TYPING = False
if _TYPING:
    from typing import Any

    from tesim.world import World


class UartDevice:
    """Base: bytes from the host arrive in ``receive``; ``send`` answers after a delay."""

    latency_ms = 3

    def __init__(self) -> None:
        self.uid = -1
        self.requests = 0

    def attached(self, world: "World", uid: int) -> None:
        self.uid = uid

    def send(self, world: "World", data: bytes) -> None:
        world.to_host(self.uid, data, self.latency_ms)

    def receive(self, world: "World", data: bytes) -> None:
        raise NotImplementedError


class SicsScaleSim(UartDevice):
    """An MT-SICS filling scale, 10 g division, reporting in kg with 2 decimals."""

    def __init__(self, gross_g: int = 0) -> None:
        super().__init__()
        self.dec = sics.CommandDecoder()
        self.gross_g = gross_g
        self.unstable_until = -1
        self.silent = False

    def settle(self, world: "World", ms: int) -> None:
        self.unstable_until = world.now + ms

    def put(self, world: "World", gross_g: int, settle_ms: int = 300) -> None:
        self.gross_g = gross_g
        self.settle(world, settle_ms)

    def receive(self, world: "World", data: bytes) -> None:
        for cmd in self.dec.feed(data):
            if not isinstance(cmd, sics.Command) or self.silent:
                continue
            self.requests += 1
            stable = world.now >= self.unstable_until
            w = Weight(self.gross_g // 10, 2, "kg")
            if cmd.name == "S":
                reply = sics.Reply("S", "S", w) if stable else sics.Reply("S", "I")
            elif cmd.name == "SI":
                reply = sics.Reply("S", "S" if stable else "D", w)
            else:
                reply = sics.Reply("ES")
            self.send(world, sics.encode_reply(reply))


class FillingRig:
    """Gas flows into the cylinder on the scale while the valve output is on."""

    def __init__(self, scale: SicsScaleSim, valve_pin: int, rate_g_s: int,
                 inflight_g: int = 0) -> None:
        self.scale = scale
        self.valve = valve_pin
        self.rate = rate_g_s
        self.inflight = inflight_g
        self.acc = 0
        self.was_open = False

    def step(self, world: "World", dt: int) -> None:
        is_open = world.outputs.get(self.valve, 0) == 1
        if is_open:
            self.acc += self.rate * dt
            self.scale.gross_g += self.acc // 1000
            self.acc %= 1000
            self.scale.settle(world, 500)
        elif self.was_open:
            self.scale.gross_g += self.inflight  # gas still in the hose when it closed
            self.scale.settle(world, 800)
        self.was_open = is_open


class CasScaleSim(UartDevice):
    """A CAS ECR price-computing scale: 5 g division; the scale computes the total."""

    def __init__(self) -> None:
        super().__init__()
        self.dec = cas_ecr.CommandDecoder()
        self.gross_g = 0
        self.price_fen = 0  # per kg, keyed on the scale by the seller
        self.stable = True

    def total_fen(self) -> int:
        return (self.gross_g * self.price_fen + 500) // 1000

    def receive(self, world: "World", data: bytes) -> None:
        for cmd in self.dec.feed(data):
            if not isinstance(cmd, str):
                continue
            self.requests += 1
            if cmd == "ENQ":
                self.send(world, cas_ecr.encode_control("ACK"))
                continue
            w = Weight(self.gross_g, 3, "kg")
            st = "S" if self.stable else "U"
            if cmd == "DC1":
                r = cas_ecr.Reading(st, w)
            else:
                r = cas_ecr.Reading(st, w, Money(self.price_fen, 2), Money(self.total_fen(), 2))
            self.send(world, cas_ecr.encode_reading(r))


class ChafonSim(UartDevice):
    """A Chafon UHF reader; ``tags`` in the field: EPC -> user memory bytes."""

    def __init__(self, adr: int = 0x00) -> None:
        super().__init__()
        self.adr = adr
        self.dec = chafon.CommandDecoder()
        self.tags: "dict[bytes, bytes]" = {}

    def receive(self, world: "World", data: bytes) -> None:
        for c in self.dec.feed(data):
            if not isinstance(c, chafon.Command):
                continue
            self.requests += 1
            if c.cmd == chafon.CMD_INVENTORY:
                epcs = list(self.tags)
                if epcs:
                    out = chafon.encode_inventory_response(self.adr, epcs)
                else:
                    out = chafon.encode_response(self.adr, c.cmd, chafon.STATUS_NO_TAG)
            elif c.cmd == chafon.CMD_READ:
                n = c.data[0] * 2
                epc = c.data[1 : 1 + n]
                ptr, words = c.data[2 + n], c.data[3 + n]
                mem = self.tags.get(epc)
                if mem is None:
                    out = chafon.encode_response(self.adr, c.cmd, 0xFA)
                else:
                    out = chafon.encode_response(self.adr, c.cmd, 0x00,
                                                 mem[ptr * 2 : (ptr + words) * 2])
            else:
                out = chafon.encode_response(self.adr, c.cmd, 0xFE)
            self.send(world, out)


class R2000Sim(UartDevice):
    """An R2000 reader: each real-time inventory answers the ``tags`` in the field (EPC
    bytes), then the round's summary."""

    def __init__(self, adr: int = 0x01) -> None:
        super().__init__()
        from drivers.codecs import r2000

        self.r2000 = r2000
        self.adr = adr
        self.dec = r2000.CommandDecoder()
        self.tags: "list[bytes]" = []

    def receive(self, world: "World", data: bytes) -> None:
        r = self.r2000
        for c in self.dec.feed(data):
            if not isinstance(c, r.Frame) or c.cmd != r.CMD_REALTIME_INVENTORY:
                continue
            self.requests += 1
            out = b""
            for epc in self.tags:
                out += r.encode_tag_read(r.TagRead(self.adr, 5, 0, r.pc_for(epc), epc, 60))
            out += r.encode_inventory_end(r.InventoryEnd(self.adr, 0, 50, len(self.tags)))
            self.send(world, out)


class ScannerSim(UartDevice):
    """A barcode/QR scanner in line mode: each scan is its text and CR LF."""

    def receive(self, world: "World", data: bytes) -> None:
        pass  # a scanner takes no commands here

    def scan(self, world: "World", text: str) -> None:
        self.send(world, text.encode() + b"\r\n")


class PrinterSim(UartDevice):
    """Collects ESC/POS bytes; ``receipts()`` takes them apart into text and QR data."""

    def __init__(self) -> None:
        super().__init__()
        self.data = b""

    def receive(self, world: "World", data: bytes) -> None:
        self.data += data

    def receipts(self) -> "list[dict[str, Any]]":
        out = []
        for chunk in self.data.split(b"\x1b@")[1:]:
            qr = ""
            i = chunk.find(b"\x1d(k")
            text = chunk
            while i >= 0:
                n = chunk[i + 3] | chunk[i + 4] << 8
                if chunk[i + 5 : i + 8] == b"1P0":
                    qr = chunk[i + 8 : i + 5 + n].decode()
                if text is chunk:
                    text = chunk[:i]
                i = chunk.find(b"\x1d(k", i + 5 + n)
            lines = [x for x in text.replace(b"\x1ba\x01", b"").decode().split("\n") if x]
            out.append({"lines": lines, "qr": qr})
        return out


class CarSim:
    """The elevator car: moves at ``speed`` (mm/s, + is up), drives the rope encoder
    (A edges, B = direction) and the door-zone sensor (``zone_mm`` either side of a level)."""

    def __init__(self, a_pin: int, b_pin: int, zone_pin: int, levels: "list[int]",
                 mm_per_pulse: int = 10, pos_mm: int = 0, zone_mm: int = 75) -> None:
        self.a = a_pin
        self.b = b_pin
        self.zone = zone_pin
        self.levels = levels
        self.mmpp = mm_per_pulse
        self.pos_um = pos_mm * 1000
        self.speed = 0
        self.zone_mm = zone_mm
        self.pulse_um = 0
        self.target: "int | None" = None

    @property
    def pos(self) -> int:
        return self.pos_um // 1000

    def go(self, speed: int, to_mm: "int | None" = None) -> None:
        self.speed = speed
        self.target = to_mm

    def step(self, world: "World", dt: int) -> None:
        d_um = self.speed * dt
        if self.target is not None:
            left = self.target * 1000 - self.pos_um
            if (self.speed > 0 and d_um >= left) or (self.speed < 0 and d_um <= left):
                d_um = left
                self.speed = 0
                self.target = None
        self.pos_um += d_um
        self.pulse_um += d_um
        world.set_pin(self.b, 1 if d_um > 0 else 0)
        step = self.mmpp * 1000
        while abs(self.pulse_um) >= step:
            self.pulse_um -= step if self.pulse_um > 0 else -step
            world.set_pin(self.a, 1)
            world.set_pin(self.a, 0)
        inz = 0
        for lv in self.levels:
            if abs(self.pos - lv) <= self.zone_mm:
                inz = 1
        if world.read_pin(self.zone) != inz:
            world.set_pin(self.zone, inz)


class KeypadSim:
    """A 4 x 4 matrix: a pressed key pulls its column low while its row is driven low."""

    LAYOUT = "123A456B789C*0#D"

    def __init__(self, rows: "list[int]", cols: "list[int]") -> None:
        self.rows = rows
        self.cols = cols
        self.pressed = ""

    def level(self, world: "World", n: int) -> "int | None":
        if n not in self.cols:
            return None
        if self.pressed:
            i = self.LAYOUT.find(self.pressed)
            r, c = i // 4, i % 4
            if self.cols[c] == n and world.outputs.get(self.rows[r], 1) == 0:
                return 0
        return 1


def typed(keys: str, start: int, hold: int = 60, gap: int = 60) -> "list[tuple[int, Any]]":
    """Scenario steps pressing ``keys`` one after another from ``start`` ms."""
    steps: "list[tuple[int, Any]]" = []
    t = start
    for k in keys:
        steps.append((t, lambda w, k=k: setattr(w.keypad, "pressed", k)))
        steps.append((t + hold, lambda w: setattr(w.keypad, "pressed", "")))
        t += hold + gap
    return steps
