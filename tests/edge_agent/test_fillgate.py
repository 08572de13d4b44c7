"""Fill gate decisions: every refusal reason alone, and combined; the request parser is
total and refuses a request without a valid nonce."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.fillgate import (
    REASONS,
    GateRequest,
    GateRequestError,
    NonceError,
    check_body,
    decide,
    parse_request,
)
from wire.schemas import default_validator

TODAY = "2026-11-23"
STATION = "S001"


def entry(**over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "cyl": "3101052301A0042",
        "tag": "E28011606000020D",
        "owner": STATION,
        "entrusted": [],
        "medium": "lpg",
        "manufactured": "2018-05-01",
        "design_life_years": 15,
        "next_inspection": "2027-05-01",
        "status": "in_service",
        "tare_g": 15000,
        "max_fill_g": 14500,
    }
    e.update(over)
    return e


def request(**over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "id": 1,
        "n": "9f2c41d07be85a13c4e6f0b2a7d95e31",
        "stage": "pre",
        "cyl": "3101052301A0042",
        "tag": "E28011606000020D",
        "operator": "OP-03",
        "medium": "lpg",
        "pre": {"appearance_ok": True, "residual_kpa": 120, "tare_g": 15000},
    }
    r.update(over)
    return r


def post(reweigh_g: int = 29000, leak_ok: bool = True) -> dict[str, Any]:
    return request(
        stage="post",
        pre=None,
        post={"reweigh_g": reweigh_g, "leak_ok": leak_ok, "checker": "OP-05"},
    )


# Each reason with the entry/request change that causes it alone.
CAUSES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "registration_mismatch": ({}, {"tag": "E280116060000999"}),
    "inspection_overdue": ({"next_inspection": "2026-11-22"}, {}),
    "scrapped": ({"status": "scrapped"}, {}),
    "design_life_exceeded": ({"manufactured": "2011-11-23"}, {}),
    "not_this_station": ({"owner": "S999"}, {}),
    "wrong_medium": ({}, {"medium": "o2"}),
    "no_residual_pressure": ({}, {"pre": {"appearance_ok": True, "residual_kpa": 0, "tare_g": 1}}),
    "damaged": ({}, {"pre": {"appearance_ok": False, "residual_kpa": 100, "tare_g": 1}}),
}


def run(e: dict[str, Any] | None, r: dict[str, Any]) -> list[str]:
    return decide(e, parse_request(r), STATION, TODAY)


def test_a_good_cylinder_is_allowed() -> None:
    assert run(entry(), request()) == []
    assert run(entry(), post()) == []


def test_unregistered() -> None:
    assert run(None, request()) == ["unregistered"]


@pytest.mark.parametrize("reason", sorted(CAUSES))
def test_each_reason_alone(reason: str) -> None:
    e_over, r_over = CAUSES[reason]
    assert run(entry(**e_over), request(**r_over)) == [reason]


def test_boundaries() -> None:
    assert run(entry(next_inspection=TODAY), request()) == []  # due today: still allowed
    assert run(entry(manufactured="2011-11-24"), request()) == []  # life ends tomorrow
    assert run(entry(owner="S999", entrusted=[STATION]), request()) == []  # entrusted
    assert run(entry(manufactured="2012-02-29", design_life_years=14), request()) == [
        "design_life_exceeded"
    ]


def test_overfilled_and_leaking_after_filling() -> None:
    assert run(entry(), post(reweigh_g=15000 + 14500)) == []
    assert run(entry(), post(reweigh_g=15000 + 14501)) == ["overfilled"]
    assert run(entry(), post(leak_ok=False)) == ["leaking"]
    assert run(entry(), post(reweigh_g=40000, leak_ok=False)) == ["overfilled", "leaking"]


@pytest.mark.parametrize("combo", list(itertools.combinations(sorted(CAUSES), 3)))
def test_combined_reasons_are_all_reported(combo: tuple[str, ...]) -> None:
    e_over: dict[str, Any] = {}
    r_over: dict[str, Any] = {}
    for reason in combo:
        e_over.update(CAUSES[reason][0])
        r_over.update(CAUSES[reason][1])
    if "no_residual_pressure" in combo and "damaged" in combo:
        r_over["pre"] = {"appearance_ok": False, "residual_kpa": 0, "tare_g": 1}
    assert sorted(run(entry(**e_over), request(**r_over))) == sorted(combo)


def test_all_reasons_at_once() -> None:
    e_over: dict[str, Any] = {}
    r_over: dict[str, Any] = {}
    for e_o, r_o in CAUSES.values():
        e_over.update(e_o)
        r_over.update(r_o)
    r_over["pre"] = {"appearance_ok": False, "residual_kpa": 0, "tare_g": 1}
    assert set(run(entry(**e_over), request(**r_over))) == set(CAUSES)
    assert set(CAUSES) | {"unregistered", "overfilled", "leaking"} == set(REASONS)


@pytest.mark.parametrize(
    "bad",
    [
        "not a dict",
        {"stage": "pre", "cyl": "ABCD1", "operator": "x"},  # no id
        request(stage="during"),
        request(cyl="x"),
        request(operator=""),
        request(medium="water"),
        request(pre={"appearance_ok": "yes", "residual_kpa": 1, "tare_g": 1}),
        request(pre={"appearance_ok": True, "residual_kpa": 1.5, "tare_g": 1}),
        request(stage="post", post=None),
    ],
)
def test_bad_requests_are_refused_with_a_reason(bad: object) -> None:
    with pytest.raises(GateRequestError):
        parse_request(bad)


@pytest.mark.parametrize(
    "nonce", [None, "", "0" * 15, "0" * 65, "g" * 16, "00112233 4455667", 16, ["0" * 16]]
)
def test_a_request_without_a_valid_nonce_is_refused(nonce: object) -> None:
    r = request(n=nonce)
    if nonce is None:
        del r["n"]
    with pytest.raises(NonceError):
        parse_request(r)
    assert parse_request(request(n="0A" * 8)).nonce == "0A" * 8


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    ["id", "n", "stage", "cyl", "operator", "tag", "medium", "pre", "post", "appearance_ok"]
)


def near_requests() -> st.SearchStrategy[object]:
    """Requests with a few fields replaced by anything, and anything at all."""
    return (
        st.dictionaries(FIELDS, JSONISH).map(lambda d: {**request(), **d})
        | st.dictionaries(FIELDS, JSONISH).map(lambda d: {**post(), **d})
        | JSONISH
    )


@given(near_requests())
def test_the_request_parser_is_total(obj: object) -> None:
    try:
        req = parse_request(obj)
    except GateRequestError:
        return
    assert isinstance(req, GateRequest) and 16 <= len(req.nonce) <= 64
    decide(None, req, STATION, TODAY)  # a parsed request can always be decided
    decide(entry(), req, STATION, TODAY)


def test_decision_record_body_validates() -> None:
    v = default_validator()
    for e, r in [(entry(), request()), (None, request()), (entry(status="scrapped"), post())]:
        req = parse_request(r)
        reasons = decide(e, req, STATION, TODAY)
        v.validate("cylinder.check", check_body(req, STATION, reasons, 7, e))
