"""MT-SICS: replies, commands, feeding every way, corruption, properties."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs import DeviceError, EncodeError, FrameError, Weight
from drivers.codecs.sics import (
    Command,
    CommandDecoder,
    Decoder,
    Reply,
    decode_command,
    decode_reply,
    encode_command,
    encode_reply,
)
from drivers.codecs.stream import BadFrame

from .feeding import check_all_ways, check_recovers, feed, kinds
from .props import FUZZ, SETTINGS, check_fuzz, check_garbage_between, check_pure_decode, chunked

STABLE = b"S S     100.00 g\r\n"
DYNAMIC = b"S D    -12.345 kg\r\n"
REPLIES = [
    (STABLE, Reply("S", "S", Weight(10000, 2, "g"))),
    (DYNAMIC, Reply("S", "D", Weight(-12345, 3, "kg"))),
    (b"S I\r\n", Reply("S", "I")),
    (b"S +\r\n", Reply("S", "+")),
    (b"S -\r\n", Reply("S", "-")),
    (b"ES\r\n", Reply("ES")),
    (b"ET\r\n", Reply("ET")),
    (b"EL\r\n", Reply("EL")),
    (b"Z A\r\n", Reply("Z", "A")),
    (b"T S       50.0 g\r\n", Reply("T", "S", Weight(500, 1, "g"))),
    (b"TA A      50.00 g\r\n", Reply("TA", "A", Weight(5000, 2, "g"))),
    (b"TAC A\r\n", Reply("TAC", "A")),
    (b'I4 A "B021002593"\r\n', Reply("I4", "A", text="B021002593")),
]


@pytest.mark.parametrize(("raw", "reply"), REPLIES)
def test_reply_vectors_decode_and_encode_literally(raw: bytes, reply: Reply) -> None:
    assert decode_reply(raw) == reply
    assert encode_reply(reply) == raw


def test_documented_example_100_g_is_10000_at_2_decimals() -> None:
    reply = decode_reply(STABLE)
    assert reply.weight is not None
    assert (reply.weight.value, reply.weight.decimals, reply.weight.unit) == (10000, 2, "g")
    assert reply.stable


@pytest.mark.parametrize(
    ("name", "weight", "raw"),
    [
        ("S", None, b"S\r\n"),
        ("SI", None, b"SI\r\n"),
        ("Z", None, b"Z\r\n"),
        ("T", None, b"T\r\n"),
        ("TA", None, b"TA\r\n"),
        ("TA", Weight(10000, 2, "g"), b"TA 100.00 g\r\n"),
        ("TAC", None, b"TAC\r\n"),
        ("@", None, b"@\r\n"),
        ("I4", None, b"I4\r\n"),
    ],
)
def test_commands_encode_and_decode(name: str, weight: Weight | None, raw: bytes) -> None:
    assert encode_command(name, weight) == raw
    assert decode_command(raw) == Command(name, weight)


def test_bad_commands_are_refused() -> None:
    with pytest.raises(EncodeError):
        encode_command("X")
    with pytest.raises(EncodeError):
        encode_command("S", Weight(1, 0, "g"))
    with pytest.raises(FrameError):
        decode_command(b"XYZ\r\n")


def test_whole_stream_split_everywhere_and_bytewise() -> None:
    stream = b"".join(raw for raw, _ in REPLIES)
    assert check_all_ways(Decoder, stream, [reply for _, reply in REPLIES]) == len(stream) + 1


def test_command_stream_every_way() -> None:
    stream = b"S\r\nTA 1.5 kg\r\n@\r\n"
    expected = [Command("S"), Command("TA", Weight(15, 1, "kg")), Command("@")]
    check_all_ways(CommandDecoder, stream, expected)


@pytest.mark.parametrize(
    "line",
    [
        b"S S     1x0.00 g\r\n",  # bad digit
        b"S S     100.00\r\n",  # unit missing
        b"S Q\r\n",  # unknown status
        b"S S     100.0.0 g\r\n",  # two points
        b"S\xff S 100.00 g\r\n",  # non-ASCII
        b'I4 A "B02\r\n',  # unterminated quote
        b"Z A extra\r\n",
    ],
)
def test_corrupted_reply_is_one_bad_frame_and_the_next_reply_survives(line: bytes) -> None:
    stream = STABLE + line + DYNAMIC
    expected_kinds = ["Reply", "BadFrame:FrameError", "Reply"]
    for _, chunks in [("whole", [stream]), ("bytes", [bytes([b]) for b in stream])]:
        items = feed(Decoder(), chunks)
        assert kinds(items) == expected_kinds
        assert items[2] == REPLIES[1][1]


def test_garbage_before_and_between_replies() -> None:
    stream = b"\x00\xff\x13" + STABLE + b"noise\r\n\xfe" + DYNAMIC
    check_recovers(Decoder, stream, [REPLIES[0][1], REPLIES[1][1]])


def test_garbage_glued_to_the_front_of_a_line_costs_only_the_garbage() -> None:
    items = Decoder().feed(b"\x00\xffzzS S     100.00 g\r\n")
    assert kinds(items) == ["BadFrame:FrameError", "Reply"]
    assert isinstance(items[0], BadFrame)
    assert items[0].raw == b"\x00\xffzz"


def test_lf_only_and_blank_lines_are_tolerated() -> None:
    assert Decoder().feed(b"\r\n\r\nS I\n\n") == [Reply("S", "I")]


def test_partial_line_is_need_more() -> None:
    decoder = Decoder()
    assert decoder.feed(STABLE[:-2]) == []
    assert decoder.buffered == len(STABLE) - 2
    assert decoder.feed(STABLE[-2:]) == [REPLIES[0][1]]


def test_raise_for_status_maps_errors_with_retry_advice() -> None:
    with pytest.raises(DeviceError, match="syntax error") as info:
        Reply("ES").raise_for_status()
    assert info.value.retry is False
    assert "retrying will not help" in str(info.value)
    with pytest.raises(DeviceError, match="transmission") as info:
        Reply("ET").raise_for_status()
    assert info.value.retry is True
    with pytest.raises(DeviceError, match="overload"):
        Reply("S", "+").raise_for_status()
    with pytest.raises(DeviceError, match="busy"):
        Reply("S", "I").raise_for_status()
    ok = Reply("S", "S", Weight(1, 0, "g"))
    assert ok.raise_for_status() is ok


def test_overlong_line_is_dropped_and_reported_then_decoding_resumes() -> None:
    decoder = Decoder()
    items = decoder.feed(b"x" * 5000)
    assert kinds(items) == ["BadFrame:BufferOverflow"]
    assert decoder.buffered == 0
    items = decoder.feed(b"\r\n" + STABLE)
    assert items[-1] == REPLIES[0][1]


def test_regression_status_char_glued_to_value_is_rejected() -> None:
    # "S S100.00 g" must not parse as status "S" with weight "100.00"
    with pytest.raises(FrameError):
        decode_reply(b"S S100.00 g\r\n")


# -- properties -----------------------------------------------------------------------------

units = st.sampled_from(["g", "kg", "mg", "lb", "oz", "ct"])
weights = st.builds(Weight, st.integers(-(10**9), 10**9), st.integers(0, 5), units)
texts = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"'))
replies = st.one_of(
    st.builds(Reply, st.sampled_from(["S", "SI"]), st.sampled_from("SD"), weights),
    st.builds(Reply, st.just("T"), st.just("S"), weights),
    st.builds(Reply, st.just("TA"), st.just("A"), weights),
    st.builds(Reply, st.sampled_from(["S", "Z", "T"]), st.sampled_from("I+-L")),
    st.builds(Reply, st.sampled_from(["ES", "ET", "EL"])),
    st.builds(lambda t: Reply("I4", "A", text=t), texts),
)


@SETTINGS
@given(replies)
def test_property_reply_round_trip(reply: Reply) -> None:
    assert decode_reply(encode_reply(reply)) == reply


@SETTINGS
@given(
    st.one_of(
        st.builds(Command, st.sampled_from(["S", "Z", "@", "I4", "TAC"])),
        st.builds(Command, st.just("TA"), weights),
    )
)
def test_property_command_round_trip(command: Command) -> None:
    assert decode_command(encode_command(command.name, command.weight)) == command


@SETTINGS
@given(st.lists(replies, min_size=1, max_size=8), st.data())
def test_property_replies_fed_in_any_chunks_decode_in_order(
    replies_: list[Reply], data: st.DataObject
) -> None:
    stream = b"".join(encode_reply(r) for r in replies_)
    chunks = data.draw(chunked(stream))
    assert feed(Decoder(), chunks) == replies_


# garbage here cannot itself form a reply line: no LF/CR, no reply letters
garbage = st.binary(max_size=12).map(lambda b: bytes(x for x in b if x not in b"\r\nSTZIE"))


@SETTINGS
@given(
    st.lists(replies, min_size=1, max_size=6),
    st.lists(garbage, max_size=4),
    st.lists(st.integers(1, 40)),
)
def test_property_good_replies_survive_garbage(
    replies_: list[Reply], garbage_: list[bytes], chunks: list[int]
) -> None:
    frames = [encode_reply(r) for r in replies_]
    check_garbage_between(Decoder, frames, garbage_, replies_, chunks)


@FUZZ
@given(st.binary(max_size=600), st.data())
def test_property_arbitrary_bytes_never_raise(data_: bytes, data: st.DataObject) -> None:
    check_fuzz(Decoder(max_buffer=256), data.draw(chunked(data_)), (Reply,))
    check_fuzz(CommandDecoder(max_buffer=256), data.draw(chunked(data_)), (Command,))
    check_pure_decode(decode_reply, data_)
    check_pure_decode(decode_command, data_)
