"""Peripheral drivers against the simulated devices (which speak through the codecs):
MFRC522 card reads, Chafon UHF tag + user memory, MT-SICS and CAS ECR scales, the matrix
keypad, receipt and its ESC/POS bytes."""

import tesim

tesim.install()

from te.cas_scale import CasScale  # noqa: E402
from te.hal import Board  # noqa: E402
from te.keypad import Keypad  # noqa: E402
from te.mfrc522 import CardWatch, Mfrc522  # noqa: E402
from drivers.codecs.receipt import escpos, receipt  # noqa: E402
from te.scale import fen, grams  # noqa: E402
from te.sics_scale import SicsScale  # noqa: E402
from te.uhf import UhfReader  # noqa: E402
from tesim.devices import (  # noqa: E402
    CasScaleSim,
    ChafonSim,
    KeypadSim,
    PrinterSim,
    SicsScaleSim,
    typed,
)
from tesim.mfrc522sim import Mfrc522Sim, crc_a  # noqa: E402
from tesim.world import new_world  # noqa: E402

from drivers.codecs.quantities import Money, Weight  # noqa: E402

HW = {
    "spi": {"rfid": {"id": 1, "sck": 18, "mosi": 23, "miso": 19, "cs": 5, "rst": 22}},
    "uart": {"reader": {"id": 1}, "scale": {"id": 2}, "printer": {"id": 3}},
}


def test_crc_a_vector() -> None:
    # ISO 14443-3 Annex B: CRC_A of 00 00 is A0 1E; of 12 34 is 26 CF
    assert crc_a(b"\x00\x00") == b"\xa0\x1e" and crc_a(b"\x12\x34") == b"\x26\xcf"


def test_mfrc522_reads_each_tap_once() -> None:
    w = new_world()
    sim = Mfrc522Sim(5)
    w.attach_spi(1, sim)
    b = Board(HW, w.clock)
    spi, cs, rst = b.spi("rfid")
    m = Mfrc522(spi, cs, rst)
    m.init()
    assert m.version == 0x92
    watch = CardWatch(m, w.clock, every_ms=100)
    seen = []

    def run(ms: int) -> None:
        for _ in range(ms // 10):
            w.advance(10)
            uid = watch.poll(w.clock.ticks_ms())
            if uid:
                seen.append(uid)

    run(500)
    assert seen == []
    sim.tap(b"\xa1\xb2\xc3\xd4")
    run(1000)
    assert seen == ["A1B2C3D4"], "a halted card answers once per tap"
    sim.remove()
    run(300)
    sim.tap(bytes.fromhex("04a1b2c3d4e5f6"))
    run(500)
    assert seen == ["A1B2C3D4", "04A1B2C3D4E5F6"]  # 7-byte UID: two cascade levels
    assert w.outputs[5] == 1, "chip select released"


def test_uhf_reader_reads_epc_and_cylinder_code() -> None:
    w = new_world()
    sim = ChafonSim()
    w.attach_uart(1, sim)
    b = Board(HW, w.clock)
    r = UhfReader(b.uart("reader"), w.clock)
    epc = bytes.fromhex("E28011700000020A1B2C3D4E")

    def run(ms: int) -> None:
        for _ in range(ms // 10):
            w.advance(10)
            r.poll(w.clock.ticks_ms())

    run(400)
    assert r.current(w.clock.ticks_ms()) is None
    sim.tags[epc] = b"33010615123" + b"10042" + b"\x00" * 4
    run(1000)
    assert r.current(w.clock.ticks_ms()) == ("E28011700000020A1B2C3D4E", "3301061512310042")
    sim.tags.clear()
    run(2000)
    assert r.current(w.clock.ticks_ms()) is None and r.errors == 0


def test_sics_scale() -> None:
    w = new_world()
    sim = SicsScaleSim(15230)
    w.attach_uart(2, sim)
    s = SicsScale(Board(HW, w.clock).uart("scale"), w.clock)
    s.ask(True, w.clock.ticks_ms())
    for _ in range(10):
        w.advance(10)
        if s.poll(w.clock.ticks_ms()):
            break
    assert s.gross_g == 15230 and s.stable and not s.failed
    sim.settle(w, 1000)
    s.ask(True, w.clock.ticks_ms())
    for _ in range(10):
        w.advance(10)
        if s.poll(w.clock.ticks_ms()):
            break
    assert s.failed, "S I (busy, not stable) is a failed request"
    sim.silent = True
    s.ask(False, w.clock.ticks_ms())
    done = False
    for _ in range(200):
        w.advance(10)
        done = s.poll(w.clock.ticks_ms())
        if done:
            break
    assert done and s.failed and s.timeouts == 1


def test_cas_scale_figures_are_the_scales() -> None:
    w = new_world()
    sim = CasScaleSim()
    sim.gross_g = 1235
    sim.price_fen = 3280
    w.attach_uart(2, sim)
    s = CasScale(Board(HW, w.clock).uart("scale"), w.clock)
    s.ask(w.clock.ticks_ms())
    while not s.poll(w.clock.ticks_ms()):
        w.advance(5)
    r = s.reading
    assert r is not None and r.stable and r.weight is not None
    assert r.unit_price is not None and r.total is not None
    assert (grams(r.weight), fen(r.unit_price), fen(r.total)) == (1235, 3280, 4051)
    assert grams(Weight(1250, 3, "kg")) == 1250 and grams(Weight(15, 1, "kg")) == 1500
    assert fen(Money(129, 1)) == 1290 and fen(Money(12900, 3)) == 1290
    for bad in (Money(12901, 3),):
        try:
            fen(bad)
        except ValueError:
            continue
        raise AssertionError(f"rounded {bad!r}")
    try:
        grams(Weight(12345, 4, "kg"))
    except ValueError:
        pass
    else:
        raise AssertionError("a weight finer than a gram must not round")


def test_keypad_matrix() -> None:
    w = new_world()
    rows, cols = [13, 12, 14, 27], [26, 25, 33, 32]
    w.keypad = KeypadSim(rows, cols)
    b = Board({}, w.clock)
    kp = Keypad(
        [b.raw_pin(n, True) for n in rows], [b.raw_pin(n, False, True) for n in cols], w.clock
    )
    w.script(typed("12A*0#D", 100))
    got = ""
    for _ in range(300):
        w.advance(10)
        k = kp.poll(w.clock.ticks_ms())
        if k:
            got += k
    assert got == "12A*0#D", got


def test_receipt_and_escpos() -> None:
    body = {
        "market": "M330106042",
        "terminal": "M330106042-017",
        "scale_sw": "V3.0.7",
        "tran_id": "33010625112317000011",
        "trace_id": "83301422511231700012",
        "seller": "T3301060007",
        "seller_card": "9C3A11F0",
        "buyer": "B1",
        "lines": [
            {
                "batch_id": "33010625112300000076",
                "goods_code": "10010004",
                "goods_name": "五花肉",
                "mode": "weighed",
                "weight_g": 1235,
                "price_fen_per_kg": 3280,
                "amount_fen": 4051,
            },
            {
                "batch_id": "33010625112300000472",
                "goods_code": "20040001",
                "goods_name": "豆腐",
                "mode": "counted",
                "pieces": 3,
                "price_fen_per_piece": 250,
                "amount_fen": 750,
            },
        ],
        "total_fen": 4801,
        "pay": "wechat",
    }
    ts = 1763859600000 + 15 * 60000 + 2000  # 09:15:02 CST
    r = receipt(body, ts, "西湖农贸市场", "https://t.example/t/")
    assert r["lines"][2] == "2025-11-23 09:15:02"
    # a terminal set to another UTC offset prints its own local time, as its codes use
    utc = receipt(body, ts, "西湖农贸市场", "https://t.example/t/", 0)
    assert utc["lines"][2] == "2025-11-23 01:15:02" and utc["lines"][3:] == r["lines"][3:]
    assert r["qr"] == "https://t.example/t/83301422511231700012"
    assert "  1.235 kg x 32.80         40.51" in r["lines"] and len(r["lines"][8]) == 32
    assert (
        r["lines"][-1] == "Trace 83301422511231700012"
        and r["lines"][-3].startswith("TOTAL")
        and r["lines"][-3].endswith("48.01")
    )
    w = new_world()
    p = PrinterSim()
    w.attach_uart(3, p)
    Board(HW, w.clock).uart("printer").write(escpos(r))
    (printed,) = p.receipts()
    assert printed["qr"] == r["qr"] and printed["lines"] == r["lines"]
