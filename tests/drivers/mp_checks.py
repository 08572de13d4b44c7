"""Codec checks that run unchanged under CPython (pytest) and MicroPython (Node + wasm).

Plain asserts, no pytest, no hypothesis: public vectors, every frame fed whole / split at
every position / byte by byte, a corrupted frame followed by a good one, garbage before
and between frames. ``run()`` returns the number of checks and raises on the first
failure. See ``micropython_run.mjs`` and ``test_micropython.py``.
"""

from drivers.codecs import (
    Money,
    Weight,
    barcode,
    cas_ecr,
    chafon,
    epc,
    gs1,
    itemcodes,
    modbus_elevator,
    pcsc,
    r2000,
    sics,
    toledo8217,
    toledo_continuous,
)
from drivers.codecs.errors import CodecError, DeviceError

from .feeding import check_all_ways, check_recovers, feed, kinds


def _corrupt(frame: bytes, index: int, mask: int) -> bytes:
    out = bytearray(frame)
    out[index] ^= mask
    return bytes(out)


def _raises(exc: type, fn: object, *args: object) -> None:
    try:
        fn(*args)  # type: ignore[operator]
    except exc:
        return
    raise AssertionError(f"{fn!r} did not raise {exc.__name__}")


def check_sics() -> None:
    raw = b"S S     100.00 g\r\n"
    reply = sics.decode_reply(raw)
    assert reply.weight == Weight(10000, 2, "g")
    assert sics.encode_reply(reply) == raw
    assert sics.encode_command("TA", Weight(5, 1, "kg")) == b"TA 0.5 kg\r\n"
    stream = raw + b"S D    -12.345 kg\r\nS I\r\nES\r\n"
    expected = [
        reply,
        sics.Reply("S", "D", Weight(-12345, 3, "kg")),
        sics.Reply("S", "I"),
        sics.Reply("ES"),
    ]
    check_all_ways(sics.Decoder, stream, expected)
    assert kinds(sics.Decoder().feed(b"S S 1x0.00 g\r\n" + raw)) == ["BadFrame:FrameError", "Reply"]
    check_recovers(sics.Decoder, b"\x00\xffzz" + raw + b"junk\r\n" + raw, [reply, reply])
    _raises(DeviceError, sics.Reply("ES").raise_for_status)


def check_toledo8217() -> None:
    weight = b"\x0201.234\r"
    status = b"\x02?\x21\r"
    assert toledo8217.encode_command("W") == b"W"
    expected = [toledo8217.Reply(Weight(1234, 3, "kg")), toledo8217.Reply(status=0x21)]
    check_all_ways(toledo8217.Decoder, weight + status, expected)
    assert expected[1].flags == ["motion"]
    items = toledo8217.Decoder().feed(b"\x0201.2x4\r" + weight)
    assert kinds(items) == ["BadFrame:FrameError", "Reply"]
    check_recovers(toledo8217.Decoder, b"\xff\x02" + weight + b"zz" + status, expected)


def check_cas_ecr() -> None:
    reading = cas_ecr.Reading("S", Weight(1250, 3, "kg"), Money(1290, 2), Money(1613, 2))
    frame = cas_ecr.encode_reading(reading)
    assert len(frame) == 31
    weight = cas_ecr.Reading("U", Weight(-5, 3, "kg"))
    wframe = cas_ecr.encode_reading(weight)
    assert len(wframe) == 15
    expected = [cas_ecr.Control("ACK"), reading, weight]
    check_all_ways(cas_ecr.Decoder, b"\x06" + frame + wframe, expected)
    items = cas_ecr.Decoder().feed(_corrupt(wframe, 12, 1) + wframe)
    assert kinds(items) == ["BadFrame:ChecksumError", "Reading"]
    assert cas_ecr.Decoder().feed(b"\x01\x02zz" + wframe) == [weight]


def check_toledo_continuous() -> None:
    frame = toledo_continuous.Frame(Weight(-12345, 2, "kg"), Weight(500, 2, "kg"), ["net"])
    raw = toledo_continuous.encode_frame(frame)
    assert len(raw) == 18 and (sum(raw) & 0x7F) == 0
    check_all_ways(toledo_continuous.Decoder, raw + raw, [frame, frame])
    items = toledo_continuous.Decoder().feed(_corrupt(raw, 17, 1) + raw)
    assert kinds(items) == ["BadFrame:ChecksumError", "Frame"]
    check_recovers(toledo_continuous.Decoder, b"\x02\x02x" + raw + b"\xff" + raw, [frame, frame])


def check_chafon() -> None:
    assert chafon.encode_inventory(0xFF) == bytes([0x04, 0xFF, 0x01, 0x1B, 0xB4])
    epc = bytes(range(1, 13))
    frames = [
        chafon.encode_inventory_response(0, [epc], status=0x03),
        chafon.encode_inventory_response(0, [epc[:4]], status=0x01),
    ]
    expected = [chafon.decode_response(f) for f in frames]
    check_all_ways(chafon.Decoder, b"".join(frames), expected)
    collector = chafon.InventoryRound()
    done = [collector.add(r) for r in expected]  # type: ignore[arg-type]
    assert done == [None, [epc, epc[:4]]]
    items = chafon.Decoder().feed(_corrupt(frames[0], 5, 0x40) + frames[1])
    assert kinds(items)[-1] == "Inventory" and kinds(items)[0] == "BadFrame:ChecksumError"
    assert chafon.Decoder().feed(b"\xf0" + frames[1]) == expected[1:]
    check_all_ways(chafon.CommandDecoder, chafon.encode_inventory(), [chafon.Command(0xFF, 1)])


def check_r2000() -> None:
    assert r2000.encode_realtime_inventory(1, 0xFF) == bytes([0xA0, 0x04, 0x01, 0x89, 0xFF, 0xD3])
    epc = bytes(range(12))
    tag = r2000.TagRead(1, 5, 2, r2000.pc_for(epc), epc, 0x50)
    end = r2000.InventoryEnd(1, 0, 123, 456789)
    stream = r2000.encode_tag_read(tag) + r2000.encode_inventory_end(end)
    check_all_ways(r2000.Decoder, stream, [tag, end])
    bad = _corrupt(r2000.encode_tag_read(tag), 8, 1)
    assert kinds(r2000.Decoder().feed(bad + stream)) == [
        "BadFrame:ChecksumError",
        "TagRead",
        "InventoryEnd",
    ]
    assert r2000.Decoder().feed(b"\xa0\xf0" + stream) == [tag, end]


def check_pcsc() -> None:
    assert pcsc.encode_get_uid() == bytes([0xFF, 0xCA, 0x00, 0x00, 0x00])
    assert pcsc.decode_uid_response(b"\x04\x11\x22\x33\x90\x00") == b"\x04\x11\x22\x33"
    for sw in (b"\x63\x00", b"\x6a\x81", b"\x6b\x00", b"\x6e\x00", b"\x6d\x00", b"\x67\x00"):
        _raises(DeviceError, pcsc.decode_uid_response, sw)
    assert pcsc.decode_apdu(pcsc.GET_UID).is_get_uid


def check_barcode() -> None:
    gtin = "09506000134352"
    url = "https://id.example.com/01/09506000134352/10/ABC?3103=000195"
    ais = {"01": gtin, "10": "ABC", "3103": "000195"}
    assert gs1.parse_digital_link(url) == ais
    assert gs1.build_digital_link(ais, "https://id.example.com") == url
    assert gs1.parse_element_string(gs1.encode_element_string(ais)) == ais
    scans = [
        barcode.Scan("]C1", "0109506000134352\x1d10ABC", {"01": gtin, "10": "ABC"}),
        barcode.Scan("]Q1", url, ais),
        barcode.Scan("]E0", "4006381333931", {"01": "04006381333931"}),
    ]
    stream = b"]C10109506000134352\x1d10ABC\r" + b"]Q1" + url.encode() + b"\r\n]E04006381333931\n"
    check_all_ways(barcode.Decoder, stream, scans)
    assert scans[0].gtin == gtin
    assert barcode.decode_scan(b"]C1" + b"01" + gtin.encode() + b"3103000195").net_weight == Weight(
        195, 3, "kg"
    )
    assert kinds(barcode.Decoder().feed(b"]E04006381333932\r\n\xff\x00]E04006381333931\r\n")) == [
        "BadFrame:FrameError",
        "BadFrame:FrameError",
        "Scan",
    ]
    _raises(CodecError, gs1.parse_element_string, "0109506000134353")


def check_modbus_elevator() -> None:
    regs = [0xFFFE, 1, 0, 0, 1, 4, 1600, 1, 57920, 1, 4464, 4321]
    status = modbus_elevator.decode_status(regs)
    assert status["floor"] == -2 and status["runs"] == 123456 and status["door"] == "closed"
    assert status["fault"] == "overspeed (governor)"
    assert modbus_elevator.encode_status(status) == regs
    _raises(CodecError, modbus_elevator.decode_status, regs[:-1])


def check_itemcodes() -> None:
    code = "10803851001462031958274016385520"
    item = itemcodes.parse_item("https://zs.example.com/p?code=" + code)
    assert item["id"] == "pesticide:" + code and item["production"] == "holder"
    assert item["registration_tail"] == "080385" and item["level"] == "unit"
    fields = {"category": "1", "registration_tail": "080385", "production_type": 1}
    fields.update({"spec": "001", "random": code[11:]})
    assert itemcodes.pesticide_code(fields) == code
    _raises(CodecError, itemcodes.parse_item, code[:7] + "4" + code[8:])
    _raises(CodecError, itemcodes.parse_item, code[:31])
    seed = "郑单958 \r\n河南某种业有限公司\r\n41010000100000000012\r\nhttps://zs.example.cn/s\r\n"
    item = itemcodes.parse_item(seed.encode())
    assert item["id"] == "seed:41010000100000000012" and item["variety"] == "郑单958"
    assert itemcodes.parse_item(itemcodes.seed_qr("a", "b", "C1", "d", "\r"))["unit_code"] == "C1"
    _raises(CodecError, itemcodes.parse_item, "a\r\n\r\nC1\r\nd")
    _raises(CodecError, itemcodes.parse_item, "a\nb\n41010000100000000012")
    item = itemcodes.parse_item("]C081234560001234567890")
    assert item["scheme"] == "drug" and item["drug_id"] == "8123456" and item["check"] == "7890"
    sscc = itemcodes.parse_item("]C100106141412345678908")
    assert sscc["level"] == "case" and sscc["id"] == "https://id.gs1.org/00/106141412345678908"
    _raises(CodecError, itemcodes.parse_item, "]C100106141412345678908", "scan", "unit")
    dl = itemcodes.parse_item("https://example.cn/01/09506000134352/21/S1?17=281231")
    assert dl["id"] == "https://id.gs1.org/01/09506000134352/21/S1" and dl["expiry"] == "281231"
    # GS1 EPC Tag Data Standard examples: sgtin 0614141.812345.6789, sscc 0614141.1234567890
    tag = itemcodes.parse_item("3074257BF7194E4000001A85", "epc")
    assert tag["id"] == "https://id.gs1.org/01/80614141123458/21/6789"
    assert epc.encode_sgtin96("80614141123458", 6789, 7, 3) == "3074257BF7194E4000001A85"
    assert epc.encode_sscc96("106141412345678908", 7) == "3114257BF4499602D2000000"
    assert (
        itemcodes.parse_item(b"\x31\x14\x25\x7b\xf4\x49\x96\x02\xd2\x00\x00\x00", "epc")["level"]
        == "case"
    )
    other = itemcodes.parse_item(bytes(range(1, 13)), "epc")
    assert other["id"] == "epc:0102030405060708090A0B0C"
    _raises(CodecError, itemcodes.parse_item, "301C" + "0" * 20, "epc")
    # a fixed pseudo-random soup of texts: an item or a CodecError, nothing else
    seed_ = 99
    refused = 0
    alphabet = "0123456789]C1Qd\x1d\r\n /?=&:htps.AZaz%"
    for _ in range(300):
        text = ""
        for _ in range(seed_ % 40):
            seed_ = (seed_ * 1103515245 + 12345) & 0x7FFFFFFF
            text += alphabet[(seed_ >> 16) % len(alphabet)]
        seed_ = (seed_ * 1103515245 + 12345) & 0x7FFFFFFF
        for source in ("scan", "epc"):
            try:
                itemcodes.parse_item(text, source)
            except CodecError:
                refused += 1
    assert refused > 300


def check_fuzz_smoke() -> None:
    # a fixed pseudo-random byte soup: nothing but frames and BadFrames, bounded buffers
    seed = 12345
    soup = bytearray()
    for _ in range(3000):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        soup.append(seed >> 16 & 0xFF)
    makers = (
        sics.Decoder,
        toledo8217.Decoder,
        cas_ecr.Decoder,
        toledo_continuous.Decoder,
        chafon.Decoder,
        r2000.Decoder,
        barcode.Decoder,
    )
    for make in makers:
        decoder = make(max_buffer=512)  # type: ignore[call-arg]
        pos = 0
        step = 1
        while pos < len(soup):
            feed(decoder, [bytes(soup[pos : pos + step])])
            assert decoder.buffered <= 512
            pos += step
            step = step % 97 + 1


CHECKS = (
    check_sics,
    check_toledo8217,
    check_cas_ecr,
    check_toledo_continuous,
    check_chafon,
    check_r2000,
    check_pcsc,
    check_barcode,
    check_modbus_elevator,
    check_itemcodes,
    check_fuzz_smoke,
)


def run() -> int:
    for check in CHECKS:
        check()
    print("mp_checks:", len(CHECKS), "checks passed")
    return len(CHECKS)
