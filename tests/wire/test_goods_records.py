"""The warehouse records every warehouse terminal makes (``wire/goods_records.py``): valid
against their schemas for any reads, a read counted once per record, every refusal reason
shown, and the very same bodies under the real MicroPython interpreter (the handheld) as
under CPython (the Linux terminal)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.mpy import repo_files, run_micropython
from wire import goods_records as gr
from wire.goods import DISPATCH_REASONS, PRODUCT_CLASSES, UNITS
from wire.schemas import default_validator

PRODUCT = {"key": 1, "name": "氰化钠", "code": "UN1689", "class": "chemical_toxic",
           "amount": 50000, "unit": "g", "lot": "L20251101"}  # fmt: skip
BUYER = {"key": 1, "party": "宁波港华电镀厂", "party_address": "宁波市北仑区港华路 8 号",
         "handler": "王伟", "handler_id": "330206198001011234",
         "licence": "JD-330200-2025-0042", "use": "电镀"}  # fmt: skip
SHOP = {"key": 2, "party": "李庄农资店"}
LICENSED = ["chemical_toxic", "chemical_precursor"]

items = st.builds(
    lambda n, scheme: {"scheme": scheme, "id": f"{scheme}:{n:08d}", "level": "unit"},
    st.integers(0, 30),
    st.sampled_from(["epc", "pesticide", "drug"]),
)
products = st.fixed_dictionaries(
    {
        "name": st.text(min_size=1, max_size=20),
        "class": st.sampled_from(PRODUCT_CLASSES),
        "unit": st.sampled_from(UNITS),
        "amount": st.integers(1, 100000),
    },
    optional={"code": st.from_regex(r"[A-Z0-9]{1,12}", fullmatch=True),
              "lot": st.from_regex(r"L[0-9]{1,10}", fullmatch=True)},
)  # fmt: skip


def read_all(mode: int, seen: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
    reads: list[dict[str, Any]] = []
    parent = None
    counted: list[str] = []
    for it in seen:
        got = gr.take(mode, reads, it, parent, counted)
        if got == gr.PARENT:
            parent = it
    return reads, parent


@given(st.lists(items, max_size=40), st.sampled_from([gr.RECEIVE, gr.DISPATCH, gr.COUNT]))
def test_a_read_counts_once_and_a_record_holds_at_most_twelve(
    seen: list[dict[str, Any]], mode: int
) -> None:
    reads, _ = read_all(mode, seen)
    ids = [r["id"] for r in reads]
    assert len(ids) == len(set(ids)) <= gr.MAX_READS
    first = list(dict.fromkeys(it["id"] for it in seen))[: gr.MAX_READS]
    assert ids == first


@given(st.lists(items, min_size=1, max_size=12), products, st.sampled_from([BUYER, SHOP]))
def test_in_and_out_bodies_are_schema_valid(
    seen: list[dict[str, Any]], product: dict[str, Any], party: dict[str, Any]
) -> None:
    v = default_validator()
    reads, _ = read_all(gr.RECEIVE, seen)
    body = gr.in_body("WH330200001", "OP-02", product, reads, party)
    v.validate("goods.in", body)
    assert body["quantity"] == product["amount"] * len(reads)
    out, missing = gr.out_body("WH330200001", "OP-02", product, reads, party, LICENSED)
    if product["class"] in LICENSED and party is SHOP:
        assert missing == ["licence", "use", "party_address", "handler", "handler_id"]
        return
    assert missing == []
    out = gr.allowed(out, {"decision": "allow", "seq": 7})
    assert out is not None and out["gate_seq"] == 7
    v.validate("goods.out", out)
    req = gr.dispatch_fields("OP-02", out)
    assert req["items"] == [r["id"] for r in reads] and req["party"] == party["party"]


@given(st.lists(items, min_size=2, max_size=13), st.sampled_from([gr.PACK, gr.UNPACK]))
def test_pack_and_count_bodies_are_schema_valid(seen: list[dict[str, Any]], mode: int) -> None:
    v = default_validator()
    reads, parent = read_all(mode, seen)
    if reads:
        body = gr.pack_body("WH330200001", "OP-02", mode, parent, reads)
        v.validate("goods.pack", body)
        assert parent["id"] not in body["children"]
    count, _ = read_all(gr.COUNT, seen)
    v.validate("goods.count", gr.count_body("WH1", "OP", gr.count_id(3, 1), 1, True, count))


@given(st.lists(st.one_of(st.sampled_from(DISPATCH_REASONS), st.text(max_size=8)), max_size=8))
def test_a_refusal_shows_every_known_reason(reasons: list[str]) -> None:
    said = gr.refusal({"decision": "deny", "reasons": reasons, "error": "boom"})
    known = [r for r in reasons if r in DISPATCH_REASONS]
    assert said == ("REFUSED: " + ", ".join(known) if known else "REFUSED: boom")
    assert gr.allowed({"x": 1}, {"decision": "deny", "reasons": reasons}) is None


def test_a_gate_answer_of_any_shape_is_shown_never_raised() -> None:
    assert gr.refusal({"decision": "deny", "reasons": "not_in_stock"}) == (
        "REFUSED: no reason given"
    )
    assert gr.allowed({}, {"decision": "allow", "seq": True}) == {}
    assert gr.allowed({}, {"decision": "allow", "seq": 0}) == {}


SCRIPT = """
import json
from wire import goods_records as gr
P = json.loads(%r)
reads = []
counted = []
seen = [{"scheme": "epc", "id": "epc:%%02d" %% (i %% 5), "level": "unit"} for i in range(9)]
for it in seen:
    gr.take(gr.RECEIVE, reads, it, None, counted)
out = [gr.in_body("WH1", "OP", P["product"], reads, P["shop"])]
body, missing = gr.out_body("WH1", "OP", P["product"], reads, P["buyer"], P["licensed"])
out.append(gr.allowed(body, {"decision": "allow", "seq": 4}))
out.append(gr.dispatch_fields("OP", body))
out.append(gr.out_body("WH1", "OP", P["product"], reads, P["shop"], P["licensed"])[1])
out.append(gr.pack_body("WH1", "OP", gr.UNPACK, reads[0], reads[1:]))
out.append(gr.count_body("WH1", "OP", gr.count_id(2, 5), 1, False, reads))
out.append(gr.refusal({"decision": "deny", "reasons": ["recalled_lot", "x", "not_in_stock"]}))
print("GR " + json.dumps(out))
"""


def test_the_handheld_and_the_linux_terminal_make_the_same_bodies() -> None:
    params = json.dumps(
        {"product": PRODUCT, "buyer": BUYER, "shop": SHOP, "licensed": LICENSED},
        ensure_ascii=False,
    )
    code = SCRIPT % params
    files = ("canonical", "envelope", "limits", "mac", "goods", "goods_records")
    out = run_micropython(code, repo_files(*(f"wire/{f}.py" for f in files)))
    mp = next(line for line in out.splitlines() if line.startswith("GR "))
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(code, {})  # the same script under CPython
    assert json.loads(mp[3:]) == json.loads(buf.getvalue()[3:])
    got = json.loads(mp[3:])
    assert got[0]["quantity"] == 5 * 50000 and got[1]["gate_seq"] == 4
    assert got[6] == "REFUSED: recalled_lot, not_in_stock"
