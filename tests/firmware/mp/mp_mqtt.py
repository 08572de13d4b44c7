"""MQTT 3.1.1 codec: known packet bytes, every chunking of a stream, malformed input."""

import tesim

tesim.install()

from te import mqtt  # noqa: E402


def test_connect_bytes() -> None:
    # MQTT 3.1.1 spec example layout: protocol name, level 4, flags, keepalive, client id
    got = mqtt.connect("dev1", 30)
    assert got == b"\x10\x10\x00\x04MQTT\x04\x02\x00\x1e\x00\x04dev1", got
    auth = mqtt.connect("d", 60, "u", "p")
    assert auth[9] == 0xC2 and auth.endswith(b"\x00\x01d\x00\x01u\x00\x01p")
    p = mqtt.Decoder().feed(auth)[0]
    assert mqtt.decode_connect(p) == ("d", 60, 0xC2)


def test_publish_subscribe_ack_ping() -> None:
    assert mqtt.publish("a/b", b"xy", 1, 10) == b"\x32\x09\x00\x03a/b\x00\x0axy"
    assert mqtt.publish("t", b"", 0) == b"\x30\x03\x00\x01t"
    assert mqtt.puback(258) == b"\x40\x02\x01\x02"
    sub = mqtt.subscribe(1, [("t/x/ack", 1), ("t/x/cmd", 1)])
    assert sub[0] == 0x82
    p = mqtt.Decoder().feed(sub)[0]
    assert p.type == mqtt.SUBSCRIBE and p.pid == 1
    assert mqtt.decode_subscribe(p) == [("t/x/ack", 1), ("t/x/cmd", 1)]
    assert mqtt.pingreq() == b"\xc0\x00" and mqtt.disconnect() == b"\xe0\x00"


def test_remaining_length_edges() -> None:
    for n, enc in (
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16383, b"\xff\x7f"),
        (16384, b"\x80\x80\x01"),
        (2097151, b"\xff\xff\x7f"),
    ):
        assert mqtt.varlen(n) == enc, n
    big = b"z" * 16000
    raw = mqtt.publish("t/big", big, 1, 7)
    (p,) = mqtt.Decoder(20000).feed(raw)
    assert p.payload == big and p.pid == 7 and p.qos == 1


def test_every_chunking_of_a_stream() -> None:
    stream = (
        mqtt.connack(0)
        + mqtt.suback(1, [1, 1])
        + mqtt.publish("t/d/ack", b'{"r":[[1,2]]}', 1, 5)
        + mqtt.puback(9)
        + mqtt.pingresp()
        + mqtt.publish("t/d/cmd", b"{}", 0)
    )
    want = [
        (2, 0, b"\x00\x00"),
        (9, 1, b"\x01\x01"),
        (3, 5, b'{"r":[[1,2]]}'),
        (4, 9, b""),
        (13, 0, b""),
        (3, 0, b"{}"),
    ]

    def kinds(ps: "list[mqtt.Packet]") -> "list[tuple[int, int, bytes]]":
        return [(p.type, p.pid, p.payload) for p in ps]

    assert kinds(mqtt.Decoder().feed(stream)) == want
    for cut in range(1, len(stream)):
        d = mqtt.Decoder()
        assert kinds(d.feed(stream[:cut]) + d.feed(stream[cut:])) == want, cut
    d = mqtt.Decoder()
    got: list[mqtt.Packet] = []
    for i in range(len(stream)):
        got += d.feed(stream[i : i + 1])
    assert kinds(got) == want


def _raises(data: bytes) -> None:
    try:
        mqtt.Decoder(100).feed(data)
    except mqtt.MqttError:
        return
    raise AssertionError(f"accepted {data!r}")


def test_malformed_input_raises() -> None:
    _raises(b"\x30\xff\xff\xff\xff\x01")  # remaining length over 4 bytes
    _raises(b"\x30\x80\x01" + b"x" * 128)  # over the decoder's limit
    _raises(b"\x30\x01\x00")  # PUBLISH shorter than its topic length
    _raises(b"\x36\x05\x00\x01tab")  # QoS 3
    _raises(b"\x20\x03\x00\x00\x00")  # CONNACK of 3 bytes
    _raises(b"\xf0\x00")  # reserved type 15
    _raises(b"\x30\x04\x00\x02\xff\xfe")  # topic not UTF-8
