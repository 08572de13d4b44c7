"""Multi-line scans (a seed label QR's four lines) joined back into one scan."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs.barcode import Decoder, Scan, ScanJoiner
from drivers.codecs.itemcodes import parse_scan, seed_qr
from drivers.codecs.slink import HostClock

from .props import SETTINGS

GAP = 150


def run(lines: list[tuple[Scan, int]], gap: int = GAP, **kw: int) -> tuple[list[Scan], ScanJoiner]:
    j = ScanJoiner(HostClock(), gap, **kw)
    out: list[Scan] = []
    for scan, at in lines:
        out += j.feed(scan, at)
    out += j.due(lines[-1][1] + gap + 1 if lines else 0)
    return out, j


def test_a_seed_label_qr_read_as_four_lines_is_one_item() -> None:
    text = seed_qr(
        "郑单958", "河南秋乐种业科技股份有限公司", "1100012345678901", "https://zzj.moa.gov.cn/s/1"
    )
    dec = Decoder()
    lines = [s for s in dec.feed(("]Q1" + text + "\r").encode()) if isinstance(s, Scan)]
    assert len(lines) == 4  # what a scanner's CR after every line makes of it
    out, j = run([(s, 1000 + 15 * i) for i, s in enumerate(lines)])
    assert len(out) == 1 and j.joined == 1
    item = parse_scan(out[0])
    assert item["scheme"] == "seed" and item["id"] == "seed:1100012345678901"


def test_two_scans_a_person_makes_stay_two() -> None:
    a, b = Scan("]C0", "ABC"), Scan("", "DEF")
    assert run([(a, 0), (b, GAP + 1)])[0] == [a, b]  # after the gap: a new scan
    assert run([(a, 0), (Scan("]C0", "X"), 5)])[0] == [a, Scan("]C0", "X")]  # its own AIM


def test_a_line_is_handed_out_only_after_the_gap() -> None:
    j = ScanJoiner(HostClock(), GAP)
    assert j.feed(Scan("]Q1", "line 1"), 0) == []
    assert j.due(GAP) == [] and j.pending()
    assert j.due(GAP + 1) == [Scan("]Q1", "line 1")] and not j.pending()
    assert ScanJoiner(HostClock(), 0).feed(Scan("", "x"), 0) == [Scan("", "x")]  # 0: off


def test_a_burst_too_long_is_cut_and_counted() -> None:
    lines = [(Scan("", f"l{i}"), i) for i in range(10)]
    out, j = run(lines, max_lines=4)
    assert [s.data for s in out] == ["l0\nl1\nl2\nl3", "l4\nl5\nl6\nl7", "l8\nl9"]
    assert j.cut == 2


_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=30)


@SETTINGS
@given(st.lists(st.lists(_text, min_size=1, max_size=6), min_size=1, max_size=8), st.data())
def test_property_scans_survive_being_split_into_lines(
    scans: list[list[str]], data: st.DataObject
) -> None:
    """Each scan's lines within the gap, scans further apart: every scan comes back whole."""
    at, lines = 0, []
    for n, scan in enumerate(scans):
        at += GAP + 1 + data.draw(st.integers(0, 5000), f"pause {n}")
        for i, text in enumerate(scan):
            if i:
                at += data.draw(st.integers(0, GAP), f"gap {n}.{i}")
            lines.append((Scan("]Q1" if i == 0 else "", text), at))
    out, _ = run(lines)
    assert [s.data for s in out] == ["\n".join(s) for s in scans]
    assert all(s.symbology == "]Q1" for s in out)


@SETTINGS
@given(
    st.lists(st.tuples(st.sampled_from(["", "]Q1", "]C0"]), _text, st.integers(0, 400))),
    st.integers(0, 300),
)
def test_property_total_no_line_lost_or_made(steps: list[tuple[str, str, int]], gap: int) -> None:
    j = ScanJoiner(HostClock(), gap, max_lines=5, max_chars=60)
    out: list[Scan] = []
    at = 0
    for sym, text, step in steps:
        at += step
        out += j.feed(Scan(sym, text), at)
        out += j.due(at)
    out += j.due(at + gap + 1)
    assert not j.pending()
    assert "\n".join(s.data for s in out) == "\n".join(t for _, t, _ in steps)


def test_a_slow_line_is_no_pause_when_its_bytes_are_heard() -> None:
    """At 9600 baud a long trace URL takes longer than the gap to arrive; the bytes heard
    meanwhile keep the scan open."""
    j = ScanJoiner(HostClock(), GAP)
    assert j.feed(Scan("]Q1", "郑单958"), 0) == []
    for t in range(20, 400, 20):  # the next line's bytes, a chunk every 20 ms
        assert j.heard(t) == [] and j.due(t) == []
    assert j.feed(Scan("", "https://zzj.moa.gov.cn/" + "x" * 380), 400) == []
    assert j.heard(400 + GAP + 1) == [Scan("]Q1", "郑单958\nhttps://zzj.moa.gov.cn/" + "x" * 380)]
    assert j.joined == 1
