"""The dispatch gate's pure decision: every reason alone and combined, and a request parser
that is total (property-tested)."""

from __future__ import annotations

import contextlib
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.dispatchgate import (
    REASONS,
    Decision,
    Stock,
    decide,
    dispatch_body,
    parse_request,
)
from edge_agent.fillgate import GateRequestError, NonceError
from wire.schemas import default_validator

NONCE = "9f2c41d07be85a13c4e6f0b2a7d95e31"
TODAY = "2025-11-26"
A, B, C = "drug:81234560000000011234", "drug:81234560000000021234", "drug:81234560000000031234"
LICENCE = {
    "licence": "JD-1",
    "kind": "toxic_purchase",
    "holder": "宁波港华电镀厂",
    "classes": ["chemical_toxic"],
    "quantity": 100_000,
    "unit": "g",
    "valid_from": "2025-01-01",
    "valid_until": "2025-12-31",
    "sites": ["CHEM-01"],
}


def request(**over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "id": 1,
        "n": NONCE,
        "operator": "OP-01",
        "product_class": "chemical_toxic",
        "items": [A],
        "quantity": 50_000,
        "unit": "g",
        "lot": "L1",
        "licence": "JD-1",
        "party": "宁波港华电镀厂",
    }
    r.update(over)
    return {k: v for k, v in r.items() if v is not None}


def stock(
    in_stock: tuple[str, ...] = (A, B),
    dispatched: tuple[str, ...] = (),
    inner: dict[str, list[str]] | None = None,
    lots: dict[str, str] | None = None,
) -> Stock:
    return Stock(set(in_stock), set(dispatched), inner or {}, lots or {})


# Each reason alone: a request and the state that produce it and nothing else.
ALONE: dict[str, tuple[dict[str, Any], dict[str, Any] | None, int, Stock, set[str]]] = {
    "no_licence": (request(licence=None), None, 0, stock(), set()),
    "licence_expired": (request(), {**LICENCE, "valid_until": "2025-11-25"}, 0, stock(), set()),
    "licence_not_for_class": (
        request(),
        {**LICENCE, "classes": ["chemical_precursor"]},
        0,
        stock(),
        set(),
    ),
    "over_licence_quantity": (request(), LICENCE, 60_000, stock(), set()),
    "not_in_stock": (request(items=[C]), LICENCE, 0, stock(), set()),
    "already_dispatched": (request(), LICENCE, 0, stock((B,), (A,)), set()),
    "recalled_lot": (request(), LICENCE, 0, stock(), {"L1"}),
}


@pytest.mark.parametrize("reason", REASONS)
def test_each_reason_alone(reason: str) -> None:
    req, lic, used, st_, recalled = ALONE[reason]
    got = decide(parse_request(req), lic, used, st_, recalled, TODAY)
    assert got.reasons == [reason]


def test_allowed_when_nothing_applies() -> None:
    got = decide(parse_request(request()), LICENCE, 50_000, stock(), {"L9"}, TODAY)
    assert got == Decision([], []) and got.allowed


def test_every_combination_of_reasons() -> None:
    """All 2^7 - 1 combinations: each reason present exactly when its cause is."""
    for n in range(1, len(REASONS) + 1):
        for combo in itertools.combinations(REASONS, n):
            want = set(combo)
            lic: dict[str, Any] | None = dict(LICENCE)
            over: dict[str, Any] = {}
            if "no_licence" in want:
                lic = None
                over["licence"] = None
            assert lic is not None or "no_licence" in want
            if lic is not None:
                if "licence_expired" in want:
                    lic["valid_from"] = "2026-01-01"
                    lic["valid_until"] = "2026-12-31"
                if "licence_not_for_class" in want:
                    lic["classes"] = ["drug"]
            used = 60_000 if "over_licence_quantity" in want else 0
            items = [A]
            dispatched: tuple[str, ...] = ()
            if "not_in_stock" in want:
                items.append(C)
            if "already_dispatched" in want:
                items.append(B)
                dispatched = (B,)
            recalled = {"L1"} if "recalled_lot" in want else set()
            req = parse_request(request(items=items, **over))
            got = decide(req, lic, used, stock((A,), dispatched), recalled, TODAY)
            # without a licence, the licence's own reasons cannot be told
            expect = want - (
                {"licence_expired", "licence_not_for_class", "over_licence_quantity"}
                if "no_licence" in want
                else set()
            )
            assert set(got.reasons) == expect, combo
            assert got.reasons == [r for r in REASONS if r in expect]  # in a fixed order


def test_an_outer_package_leaving_takes_its_inner_ones() -> None:
    outer = "https://id.gs1.org/00/169312345678901238"
    st_ = stock((outer, A, B), inner={outer: [A, B]}, lots={A: "L7"})
    req = parse_request(request(items=[outer], lot=None))
    assert decide(req, LICENCE, 0, st_, {"L7"}, TODAY).reasons == ["recalled_lot"]
    gone = stock((outer, A), (B,), inner={outer: [A, B]})
    got = decide(req, LICENCE, 0, gone, set(), TODAY)
    assert got.reasons == ["already_dispatched"] and got.detail == [B]


def test_what_the_licence_let_leave_at_its_other_sites_counts_too() -> None:
    """Here 30 000 g, at the licence's other sites 20 000 g: 50 000 g are left of 100 000."""
    req = parse_request(request())  # 50 000 g
    assert decide(req, LICENCE, 30_000, stock(), set(), TODAY, used_elsewhere=20_000).allowed
    over = decide(req, LICENCE, 30_000, stock(), set(), TODAY, used_elsewhere=20_001)
    assert over.reasons == ["over_licence_quantity"]
    # the figures are in the record: used here, used elsewhere, the push's version
    body = dispatch_body(req, "CHEM-01", "WHS-1", over, 3, 1, (30_000, 20_001, 1_700_000))
    assert (body["used_here"], body["used_elsewhere"], body["use_ver"]) == (
        30_000,
        20_001,
        1_700_000,
    )
    default_validator().validate("goods.dispatch", body)


def test_licence_for_another_unit_counts_as_over_quantity() -> None:
    got = decide(parse_request(request(unit="ml")), LICENCE, 0, stock(), set(), TODAY)
    assert got.reasons == ["over_licence_quantity"]


def test_unlicensed_classes_need_no_licence_but_a_named_one_must_be_on_file() -> None:
    req = parse_request(request(product_class="drug", licence=None))
    assert decide(req, None, 0, stock(), set(), TODAY).allowed
    named = parse_request(request(product_class="drug", licence="NOPE"))
    assert decide(named, None, 0, stock(), set(), TODAY).reasons == ["no_licence"]
    # an agent configured to ask a licence for pesticides too
    pest = parse_request(request(product_class="pesticide", licence=None))
    got = decide(pest, None, 0, stock(), set(), TODAY, ("chemical_toxic", "pesticide"))
    assert got.reasons == ["no_licence"]


def test_bodies_validate_against_the_schema() -> None:
    v = default_validator()
    for reason, (req, lic, used, st_, recalled) in ALONE.items():
        r = parse_request(req)
        d = decide(r, lic, used, st_, recalled, TODAY)
        body = dispatch_body(r, "CHEM-01", "WHS-CHEM-0001", d, 3, 1)
        v.validate("goods.dispatch", body)
        assert body["decision"] == "deny" and body["reasons"] == [reason]
    ok = dispatch_body(parse_request(request()), "CHEM-01", "WHS-1", Decision([], []), 3, 1)
    v.validate("goods.dispatch", ok)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"n": None}, "nonce"),
        ({"n": "xyz"}, "nonce"),
        ({"items": []}, "items"),
        ({"items": [A, A]}, "repeat"),
        ({"items": ["a b c d"]}, "items"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"unit": "kg"}, "unit"),
        ({"product_class": "gold"}, "product_class"),
        ({"operator": ""}, "operator"),
        ({"licence": "有"}, "licence"),
        ({"party": ""}, "party"),
        ({"id": -1}, "id"),
    ],
)
def test_bad_requests_are_named(over: dict[str, Any], message: str) -> None:
    req = request()
    req.update(over)
    req = {k: v for k, v in req.items() if v is not None}
    with pytest.raises(GateRequestError, match=message) as info:
        parse_request(req)
    assert isinstance(info.value, NonceError) == (message == "nonce")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    base=st.fixed_dictionaries({}, optional={k: _json for k in request()}),
    keep=st.dictionaries(st.sampled_from(sorted(request())), st.booleans()),
)
def test_parse_request_is_total(base: dict[str, Any], keep: dict[str, bool]) -> None:
    """Any JSON value: a request, or GateRequestError; never anything else."""
    obj = {**{k: v for k, v in request().items() if keep.get(k)}, **base}
    for value in (obj, list(obj), json.dumps(obj), None):
        with contextlib.suppress(GateRequestError):
            parse_request(value)


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(st.sampled_from([A, B, C, "seed:X1234"]), min_size=1, max_size=4, unique=True),
    in_stock=st.sets(st.sampled_from([A, B, C, "seed:X1234"])),
    dispatched=st.sets(st.sampled_from([A, B, C, "seed:X1234"])),
    recalled=st.sets(st.sampled_from(["L1", "L2"])),
    used=st.integers(0, 200_000),
    elsewhere=st.integers(0, 200_000),
    quantity=st.integers(1, 200_000),
    has_licence=st.booleans(),
    today=st.sampled_from(["2024-12-31", "2025-01-01", TODAY, "2025-12-31", "2026-01-01"]),
)
def test_decision_properties(
    items: list[str],
    in_stock: set[str],
    dispatched: set[str],
    recalled: set[str],
    used: int,
    elsewhere: int,
    quantity: int,
    has_licence: bool,
    today: str,
) -> None:
    in_stock -= dispatched
    req = parse_request(request(items=items, quantity=quantity))
    lic = LICENCE if has_licence else None
    st_ = stock(tuple(in_stock), tuple(dispatched))
    got = decide(req, lic, used, st_, recalled, today, used_elsewhere=elsewhere)
    assert len(set(got.reasons)) == len(got.reasons) and set(got.reasons) <= set(REASONS)
    assert ("no_licence" in got.reasons) == (not has_licence)
    assert ("already_dispatched" in got.reasons) == bool(set(items) & dispatched)
    assert ("not_in_stock" in got.reasons) == bool(set(items) - in_stock - dispatched)
    assert ("recalled_lot" in got.reasons) == ("L1" in recalled)
    if has_licence:
        over = used + elsewhere + quantity > 100_000
        assert ("over_licence_quantity" in got.reasons) == over
        assert ("licence_expired" in got.reasons) == (not "2025-01-01" <= today <= "2025-12-31")
    # allowed exactly when every item is in stock, none left, licence good, lot not recalled
    assert got.allowed == (
        has_licence
        and set(items) <= in_stock
        and used + elsewhere + quantity <= 100_000
        and "2025-01-01" <= today <= "2025-12-31"
        and "L1" not in recalled
    )
    assert set(got.detail) <= set(items)
