"""EPCIS 2.0 export: every kind maps to events that pass our checks and the official schema.

Records come from ``simulators.records.make_body`` in a signed envelope. The official GS1
schema is checked by the fake platform's validator (``simulators.epcis_schema``, tested on
its own in ``tests/simulators/test_epcis_schema.py``) with format checking live (a bare
``bizStep`` must fail), and the adversarial events are refused by our own validation, and
by the schema where it can tell.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import epcis
from collector.epcis import (
    BIZSTEP_FILLING,
    CONTEXT,
    EpcisError,
    capture_document,
    record_to_event,
    records_to_document,
    validate_document,
    validate_event,
)
from simulators.epcis_schema import check_format_checkers, schema_errors, validator
from simulators.records import BASE_MS, make_body
from wire.envelope import KINDS, make_record

KEY = bytes(range(32))
SITE = "S01"


def make(
    kind: str,
    seq: int = 1,
    *,
    seed: int = 0,
    dev: str | None = None,
    site: str = SITE,
    ts: int | None = None,
    tq: str = "ntp",
    boot: int = 1,
) -> dict[str, Any]:
    """A signed record of ``kind`` with a realistic body."""
    ts = BASE_MS + seq * 30_000 if ts is None else ts
    dev = dev or f"{kind.replace('.', '-').upper()}-{site}"
    body = make_body(kind, random.Random(f"{seed}|{kind}|{seq}"), dev, seq, site, now_ms=ts)
    return make_record(dev, seq, boot, kind, ts, tq, body, KEY)


def find(kind: str, cond: Callable[[dict[str, Any]], bool], *, limit: int = 3000) -> dict[str, Any]:
    """The first record of ``kind`` (over seeds and sites) whose body satisfies ``cond``."""
    for seed in range(limit):
        rec = make(kind, seed=seed, site=f"S{seed % 40:02d}")
        if cond(rec["body"]):
            return rec
    raise AssertionError(f"no {kind} body satisfying the condition in {limit} seeds")


def doc_of(*events: dict[str, Any]) -> dict[str, Any]:
    """A document around ``events`` built without our validation (for adversarial cases)."""
    return {
        "@context": copy.deepcopy(CONTEXT),
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2025-11-23T00:00:00.000Z",
        "epcisBody": {"eventList": list(events)},
    }


def reports(ev: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for el in ev.get("sensorElementList", []) for r in el["sensorReport"]]


def ext(ev: dict[str, Any], name: str) -> Any:
    return ev["tre:" + name]


# ---------------------------------------------------------------------------------------------
# The validator really checks formats


def test_format_checkers_are_live_and_a_bare_bizstep_fails_the_schema() -> None:
    v = validator()
    assert v.format_checker is not None
    assert {"uri", "date-time"} <= set(v.format_checker.checkers)
    check_format_checkers(v)  # does not raise
    ev = record_to_event(make("cylinder.fill"))
    assert schema_errors(doc_of(ev)) == []
    bare = dict(ev, bizStep="filling")
    errors = schema_errors(doc_of(bare))
    assert errors, "a bare non-CBV bizStep passed: the uri format is not enforced"
    assert any("filling" in e for e in errors)
    with pytest.raises(EpcisError, match="bizStep"):
        validate_event(bare)


# ---------------------------------------------------------------------------------------------
# Every kind: our checks and the official schema, over many bodies


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_validates_against_the_official_schema(kind: str) -> None:
    records = [
        make(kind, seq, seed=seed, dev=f"DEV-{seed}", site=f"S{seed % 3}")
        for seed in range(8)
        for seq in range(1, 8)
    ]
    events = [record_to_event(r) for r in records]
    doc = capture_document(events, creation_ms=BASE_MS)
    assert schema_errors(doc) == []
    assert len({ev["eventID"] for ev in events}) == len(records)
    for ev, rec in zip(events, records, strict=True):
        assert ev["eventTime"].endswith("Z")
        assert ev["eventTimeZoneOffset"] == "+08:00"
        assert ev["tre:seq"] == rec["seq"]
        assert ev["tre:device"].endswith("/device/" + rec["dev"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 10**6),
    seq=st.integers(1, 2**40),
    ts=st.integers(BASE_MS - 10**11, BASE_MS + 10**12),
    site=st.text("ABCXYZ0123456789", min_size=1, max_size=6),
    tz=st.sampled_from(["+08:00", "+00:00", "-05:30", "+14:00", "-12:00", "+05:45"]),
    tq=st.sampled_from(["ntp", "rtc", "unsynced"]),
)
def test_any_generated_record_exports_to_a_valid_document(
    kind: str, seed: int, seq: int, ts: int, site: str, tz: str, tq: str
) -> None:
    rec = make(kind, seq, seed=seed, site=site, ts=ts, tq=tq)
    ev = record_to_event(rec, tz=tz)
    assert ev["eventTimeZoneOffset"] == tz
    assert ev["tre:timeQuality"] == tq
    assert schema_errors(capture_document([ev], creation_ms=ts)) == []


def test_a_document_of_every_kind_validates_and_is_deterministic() -> None:
    records = [make(kind, seq, seed=seq) for kind in KINDS for seq in range(1, 4)]
    doc = records_to_document(records, creation_ms=BASE_MS)
    events = doc["epcisBody"]["eventList"]
    assert len(events) == len(records)
    assert {ev["type"] for ev in events} == {"ObjectEvent", "TransactionEvent", "AggregationEvent"}
    assert doc["creationDate"] == "2025-11-23T00:00:00.000Z"
    assert doc["@context"][0] == epcis.EPCIS_CONTEXT_URL
    assert doc["@context"][1]["tre"] == "https://traceedge.example/voc/"
    assert schema_errors(doc) == []
    assert doc == records_to_document(records, creation_ms=BASE_MS)


# ---------------------------------------------------------------------------------------------
# What each kind says


def test_cylinder_fill_is_an_observation_with_a_custom_filling_step_and_mass_data() -> None:
    rec = find("cylinder.fill", lambda b: "final_kpa" in b and "tag" in b)
    b, ev = rec["body"], record_to_event(rec)
    assert (ev["type"], ev["action"]) == ("ObjectEvent", "OBSERVE")
    assert ev["bizStep"] == BIZSTEP_FILLING == "https://traceedge.example/voc/bizstep/filling"
    assert not ev["bizStep"].startswith("urn:epcglobal:cbv")
    assert ev["epcList"] == [f"https://id.traceedge.example/cylinder/{b['cyl']}"]
    station = f"https://id.traceedge.example/station/{b['station']}"
    assert ev["bizLocation"] == {"id": station}
    assert ev["readPoint"] == {"id": f"{station}/scale/{b['scale']}"}
    net = [r for r in reports(ev) if r.get("tre:measured") == "net_filled"]
    assert net == [
        {
            "type": "Mass",
            "value": b["actual_net_g"],
            "uom": "GRM",
            "tre:measured": "net_filled",
            "time": epcis.iso_time(b["end_ts"]),
        }
    ]
    pressures = {r["tre:measured"]: r["value"] for r in reports(ev) if r["type"] == "Pressure"}
    assert pressures == {
        "at_end_of_filling": b["final_kpa"],
        "residual_before_filling": b["pre"]["residual_kpa"],
    }
    meta = ev["sensorElementList"][0]["sensorMetadata"]
    assert (meta["startTime"], meta["endTime"]) == (
        epcis.iso_time(b["start_ts"]),
        epcis.iso_time(b["end_ts"]),
    )
    assert ext(ev, "targetNetMassG") == b["target_net_g"]
    assert (ext(ev, "medium"), ext(ev, "tag"), ext(ev, "leakOk")) == (
        b["medium"],
        b["tag"],
        b["post"]["leak_ok"],
    )


@pytest.mark.parametrize(
    ("decision", "disposition"), [("allow", "conformant"), ("deny", "non_conformant")]
)
def test_cylinder_check_disposition_follows_the_decision_with_every_reason(
    decision: str, disposition: str
) -> None:
    rec = find("cylinder.check", lambda b: b["decision"] == decision)
    b, ev = rec["body"], record_to_event(rec)
    assert (ev["action"], ev["bizStep"], ev["disposition"]) == (
        "OBSERVE",
        "inspecting",
        disposition,
    )
    assert ext(ev, "reasons") == b["reasons"]
    assert bool(b["reasons"]) == (decision == "deny")
    assert (ext(ev, "decision"), ext(ev, "stage"), ext(ev, "registryVersion")) == (
        decision,
        b["stage"],
        b["reg_ver"],
    )
    assert ev["epcList"] == [f"https://id.traceedge.example/cylinder/{b['cyl']}"]
    assert schema_errors(doc_of(ev)) == []


def test_cylinder_check_of_an_overfilled_cylinder_reports_the_reweigh() -> None:
    rec = find("cylinder.check", lambda b: b["reasons"] == ["overfilled"], limit=10000)
    ev = record_to_event(rec)
    assert ev["disposition"] == "non_conformant"
    assert ext(ev, "stage") == "post"
    gross = [r for r in reports(ev) if r["tre:measured"] == "gross_reweighed"]
    assert [r["value"] for r in gross] == [rec["body"]["post"]["reweigh_g"]]


def test_elevator_status_is_sensor_reporting_of_every_state() -> None:
    rec = find("elevator.status", lambda b: bool(b["faults"]) and "counters" in b, limit=20000)
    b, ev = rec["body"], record_to_event(rec)
    assert (ev["action"], ev["bizStep"]) == ("OBSERVE", "sensor_reporting")
    elevator = f"https://id.traceedge.example/elevator/{b['reg']}"
    assert ev["epcList"] == [elevator]
    assert ev["readPoint"] == {"id": elevator}
    by_type = {r["type"].rsplit("/", 1)[-1]: r for r in reports(ev)}
    assert by_type["floor"]["value"] == b["floor"]
    assert by_type["door"]["stringValue"] == b["door"]
    assert by_type["direction"]["stringValue"] == b["dir"]
    assert by_type["door_zone"]["booleanValue"] is b["door_zone"]
    assert by_type["passengers"]["booleanValue"] is b["people"]
    assert by_type["runs"]["value"] == b["counters"]["runs"]
    assert by_type["Time"] == {"type": "Time", "value": b["counters"]["run_hours"], "uom": "HUR"}
    faults = [r for r in reports(ev) if r["type"] == epcis.MT_FAULT]
    assert [r["stringValue"] for r in faults] == b["faults"]
    assert all(r["exception"] == "ALARM_CONDITION" for r in faults)


def test_elevator_status_without_a_people_sensor_reports_no_passengers() -> None:
    """A controller read over Modbus has no car sensor: ``people`` is absent, not false."""
    rec = find("elevator.status", lambda b: "counters" in b, limit=20000)
    rec = {**rec, "body": {k: v for k, v in rec["body"].items() if k != "people"}}
    ev = record_to_event(rec)
    types = [r["type"].rsplit("/", 1)[-1] for r in reports(ev)]
    assert "passengers" not in types and "floor" in types and "door_zone" in types


@pytest.mark.parametrize("state", ["raised", "cleared"])
def test_elevator_fault_carries_the_alarm_and_its_span(state: str) -> None:
    # A trapped-passenger alarm; the simulator always gives a cleared fault its raised_ts.
    rec = find("elevator.fault", lambda b: b["state"] == state and b["fault"].startswith("trapped"))
    b, ev = rec["body"], record_to_event(rec)
    assert (ev["bizStep"], ext(ev, "faultCode"), ext(ev, "faultState")) == (
        "sensor_reporting",
        b["fault"],
        state,
    )
    fault = reports(ev)[0]
    assert fault["stringValue"] == b["fault"]
    assert fault["booleanValue"] is (state == "raised")
    assert ("exception" in fault) is (state == "raised")
    meta = ev["sensorElementList"][0]["sensorMetadata"]
    if state == "cleared":
        assert meta["startTime"] == ext(ev, "faultRaisedTime") == epcis.iso_time(b["raised_ts"])
        assert meta["endTime"] == ev["eventTime"]
    passengers = [r for r in reports(ev) if r["type"] == epcis.MT_PASSENGERS]
    assert passengers == [{"type": epcis.MT_PASSENGERS, "booleanValue": True}]


def test_elevator_fault_speed_is_in_metres_per_second() -> None:
    rec = find("elevator.fault", lambda b: "speed_mm_s" in b)
    speed = [r for r in reports(record_to_event(rec)) if r["type"] == "Speed"]
    assert speed == [{"type": "Speed", "value": rec["body"]["speed_mm_s"] / 1000, "uom": "MTS"}]


@pytest.mark.parametrize(
    ("plan", "bizstep"),
    [("half_month", "inspecting"), ("year", "inspecting"), ("repair", "repairing")],
)
def test_elevator_maintenance_step_follows_the_plan(plan: str, bizstep: str) -> None:
    rec = find("elevator.maintenance", lambda b: b["plan"] == plan and b["event"] == "sign_out")
    b, ev = rec["body"], record_to_event(rec)
    assert ev["bizStep"] == bizstep
    assert ext(ev, "visit") == "sign_out"
    assert ext(ev, "items") == b["items"]
    assert ext(ev, "visitDurationMs") == b["time_out"] - b["time_in"]
    assert ext(ev, "timeOut") == epcis.iso_time(b["time_out"])
    assert ext(ev, "maintenanceCompany") == b["company"]


def test_elevator_rescue_gets_a_custom_step() -> None:
    rec = make("elevator.maintenance", seed=1)
    rec["body"] = dict(rec["body"], plan="rescue")
    ev = record_to_event(rec)
    assert ev["bizStep"] == "https://traceedge.example/voc/bizstep/rescuing"
    assert schema_errors(doc_of(ev)) == []


def test_market_entry_adds_the_batch_with_its_certificate() -> None:
    rec = find("market.entry", lambda b: "pieces" in b)
    b, ev = rec["body"], record_to_event(rec)
    assert (ev["action"], ev["bizStep"], ev["disposition"]) == ("ADD", "receiving", "active")
    market = f"https://id.traceedge.example/market/{b['market']}"
    assert ev["quantityList"] == [
        {
            "epcClass": f"{market}/goods/{b['goods_code']}/batch/{b['batch_id']}",
            "quantity": b["quantity_g"],
            "uom": "GRM",
        }
    ]
    assert ev["certificationInfo"] == epcis.certificate_uri(b["cert_no"])
    assert ev["bizLocation"] == {"id": market}
    assert ev["destinationList"] == [
        {"type": "owning_party", "destination": f"{market}/trader/{b['trader']}"}
    ]
    assert ev["ilmd"]["cbvmda:lotNumber"] == b["batch_id"]
    assert ev["ilmd"]["tre:origin"] == b["origin"]
    assert ext(ev, "pieces") == b["pieces"]


def test_certificate_numbers_with_any_characters_become_valid_uris() -> None:
    rec = make("market.entry")
    rec["body"] = dict(rec["body"], cert_no="检疫 No. 33/0042#A?")
    ev = record_to_event(rec)
    assert ev["certificationInfo"] == (
        "https://id.traceedge.example/certificate/%E6%A3%80%E7%96%AB%20No.%2033%2F0042%23A%3F"
    )
    assert ev["ilmd"]["tre:certificateNumber"] == "检疫 No. 33/0042#A?"
    assert schema_errors(doc_of(ev)) == []


def test_market_settlement_is_a_transaction_linking_sale_to_entry_batches() -> None:
    rec = next(
        r
        for r in (make("market.settlement", seed=seed) for seed in range(1000))
        if len(r["body"]["lines"]) >= 2 and "buyer" in r["body"]
    )
    b, ev = rec["body"], record_to_event(rec)
    assert (ev["type"], ev["action"]) == ("TransactionEvent", "ADD")
    assert (ev["bizStep"], ev["disposition"]) == ("retail_selling", "retail_sold")
    market = f"https://id.traceedge.example/market/{b['market']}"
    assert ev["bizTransactionList"] == [
        {"type": epcis.BTT_VOUCHER, "bizTransaction": f"{market}/voucher/{b['tran_id']}"},
        {"type": epcis.BTT_TRACE_CODE, "bizTransaction": f"{market}/trace/{b['trace_id']}"},
    ]
    assert len(ev["quantityList"]) == len(b["lines"])
    for q, line in zip(ev["quantityList"], b["lines"], strict=True):
        if line["mode"] == "weighed":
            assert (q["quantity"], q["uom"]) == (line["weight_g"], "GRM")
        else:
            assert q == {"epcClass": q["epcClass"], "quantity": line["pieces"]}
    assert ev["sourceList"] == [
        {"type": "owning_party", "source": f"{market}/trader/{b['seller']}"}
    ]
    assert ev["destinationList"] == [
        {"type": "owning_party", "destination": f"{market}/buyer/{b['buyer']}"}
    ]
    assert ext(ev, "totalFen") == b["total_fen"]
    assert [line["tre:amountFen"] for line in ext(ev, "saleLines")] == [
        line["amount_fen"] for line in b["lines"]
    ]
    # The gate registers batch s as its record s: the sale's classes are the entries' classes.
    ts = rec["ts"]
    entries = [record_to_event(make("market.entry", s, dev="GATE-1", ts=ts)) for s in range(1, 201)]
    entry_classes = {e["quantityList"][0]["epcClass"] for e in entries}
    assert {q["epcClass"] for q in ev["quantityList"]} <= entry_classes


# ---------------------------------------------------------------------------------------------
# Time and identity


def test_event_time_is_utc_with_milliseconds_and_the_offset_is_configurable() -> None:
    rec = make("elevator.status", ts=1_763_856_000_123)
    ev = record_to_event(rec)
    assert ev["eventTime"] == "2025-11-23T00:00:00.123Z"
    assert ev["eventTimeZoneOffset"] == "+08:00"
    assert record_to_event(rec, tz="-05:30")["eventTimeZoneOffset"] == "-05:30"
    assert epcis.iso_time(0) == "1970-01-01T00:00:00.000Z"
    for bad_tz in ("+8:00", "UTC", "+15:00", "08:00", ""):
        with pytest.raises(EpcisError, match="tz"):
            record_to_event(rec, tz=bad_tz)


def test_event_ids_are_deterministic_by_device_and_sequence() -> None:
    a = make("market.settlement", 7, seed=1)
    again = make("market.settlement", 7, seed=1)
    resent = make("market.settlement", 7, seed=2, boot=5, ts=BASE_MS + 99)
    other_seq = make("market.settlement", 8, seed=1)
    other_dev = make("market.settlement", 7, seed=1, dev="SCALE-OTHER")
    ids = {
        name: record_to_event(r)["eventID"]
        for name, r in [
            ("a", a),
            ("again", again),
            ("resent", resent),
            ("other_seq", other_seq),
            ("other_dev", other_dev),
        ]
    }
    assert ids["a"] == ids["again"] == ids["resent"]  # identity is (dev, seq)
    assert len({ids["a"], ids["other_seq"], ids["other_dev"]}) == 3
    assert record_to_event(a) == record_to_event(again)
    parsed = uuid.UUID(ids["a"].removeprefix("urn:uuid:"))
    assert parsed.version == 5
    assert parsed == uuid.uuid5(uuid.NAMESPACE_URL, epcis.record_uri(a["dev"], 7))


# ---------------------------------------------------------------------------------------------
# Adversarial events: refused by our validation before export, and by the schema where it can


def _fill() -> dict[str, Any]:
    return record_to_event(make("cylinder.fill", seed=3))


def _settlement() -> dict[str, Any]:
    return record_to_event(make("market.settlement", seed=3))


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda ev: ev.pop(key)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda ev: ev.__setitem__(key, value)


def _report(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda ev: ev["sensorElementList"][0]["sensorReport"][0].__setitem__(key, value)


# (name, base event, mutation, field our error names, the schema refuses it too)
ADVERSARIAL: list[
    tuple[str, Callable[[], dict[str, Any]], Callable[[dict[str, Any]], None], str, bool]
] = [
    ("no time zone offset", _fill, _drop("eventTimeZoneOffset"), "eventTimeZoneOffset", True),
    ("tz without colon", _fill, _set("eventTimeZoneOffset", "+0800"), "eventTimeZoneOffset", True),
    ("tz out of range", _fill, _set("eventTimeZoneOffset", "+15:00"), "eventTimeZoneOffset", True),
    (
        "tz as a name",
        _fill,
        _set("eventTimeZoneOffset", "Asia/Shanghai"),
        "eventTimeZoneOffset",
        True,
    ),
    ("no eventTime", _fill, _drop("eventTime"), "eventTime", True),
    ("time without Z", _fill, _set("eventTime", "2025-11-23T08:00:00.000"), "eventTime", True),
    ("time with a space", _fill, _set("eventTime", "2025-11-23 08:00:00Z"), "eventTime", True),
    ("impossible date", _fill, _set("eventTime", "2025-02-30T08:00:00Z"), "eventTime", True),
    ("time as ms", _fill, _set("eventTime", 1763856000000), "eventTime", True),
    ("bare bizStep", _fill, _set("bizStep", "filling"), "bizStep", True),
    (
        "CBV URN bizStep",
        _fill,
        _set("bizStep", "urn:epcglobal:cbv:bizstep:receiving"),
        "bizStep",
        True,
    ),
    (
        "bizStep with space",
        _fill,
        _set("bizStep", "https://traceedge.example/voc/bizstep/fill ing"),
        "bizStep",
        True,
    ),
    ("bare disposition", _fill, _set("disposition", "ok"), "disposition", True),
    ("bare readPoint", _fill, _set("readPoint", {"id": "CZ330106001"}), "readPoint.id", True),
    (
        "readPoint non-ASCII",
        _fill,
        _set("readPoint", {"id": "https://id.traceedge.example/站"}),
        "readPoint.id",
        True,
    ),
    ("bare bizLocation", _fill, _set("bizLocation", {"id": "station 1"}), "bizLocation.id", True),
    ("bare EPC", _fill, _set("epcList", ["3301061601511101"]), "epcList[0]", True),
    ("bare measurement type", _fill, _report("type", "Weight"), "type", True),
    (
        "quantity unit not a code",
        _settlement,
        lambda ev: ev["quantityList"][0].__setitem__("uom", "grams"),
        "uom",
        True,
    ),
    ("unprefixed extension", _fill, _set("reasons", ["damaged"]), "reasons", True),
    (
        "bare epcClass",
        _settlement,
        lambda ev: ev["quantityList"][0].__setitem__("epcClass", "10010001"),
        "epcClass",
        True,
    ),
    (
        "bare bizTransaction",
        _settlement,
        lambda ev: ev["bizTransactionList"][0].__setitem__(
            "bizTransaction", "32010225112394000018"
        ),
        "bizTransaction",
        True,
    ),
    (
        "bare source",
        _settlement,
        lambda ev: ev["sourceList"][0].__setitem__("source", "T3301060001"),
        "source",
        True,
    ),
    ("no bizTransactionList", _settlement, _drop("bizTransactionList"), "bizTransactionList", True),
    ("bad action", _fill, _set("action", "observe"), "action", True),
    # Stricter than the schema: these pass it, we refuse them.
    ("compact IRI bizStep", _fill, _set("bizStep", "tre:bizstep/filling"), "bizStep", False),
    ("undeclared prefix", _fill, _set("foo:bar", 1), "foo:bar", False),
    (
        "http URI without host",
        _fill,
        _set("readPoint", {"id": "https:///station/1"}),
        "readPoint.id",
        False,
    ),
    ("urn without namespace", _fill, _set("epcList", ["urn:x"]), "epcList[0]", False),
    ("no eventID", _fill, _drop("eventID"), "eventID", False),
    ("sensor unit not a code", _fill, _report("uom", "grams"), "uom", False),
]


@pytest.mark.parametrize(
    ("base", "mutate", "field", "schema_refuses"),
    [pytest.param(*case[1:], id=case[0]) for case in ADVERSARIAL],
)
def test_adversarial_events_are_refused(
    base: Callable[[], dict[str, Any]],
    mutate: Callable[[dict[str, Any]], None],
    field: str,
    schema_refuses: bool,
) -> None:
    ev = base()
    mutate(ev)
    with pytest.raises(EpcisError) as caught:
        validate_event(ev)
    assert field in str(caught.value)
    assert isinstance(caught.value, ValueError)
    with pytest.raises(EpcisError, match=r"epcisBody\.eventList\[1\]"):
        capture_document([base(), ev], creation_ms=BASE_MS)
    assert bool(schema_errors(doc_of(ev))) is schema_refuses


def test_documents_are_checked_as_a_whole() -> None:
    ev = _fill()
    good = doc_of(ev)
    validate_document(good)
    cases: list[tuple[Callable[[dict[str, Any]], None], str]] = [
        (lambda d: d.__setitem__("@context", [{"tre": epcis.VOC}]), "@context"),
        (lambda d: d.__setitem__("schemaVersion", "1.2"), "schemaVersion"),
        (lambda d: d.__setitem__("creationDate", "2025-11-23T00:00:00"), "creationDate"),
        (lambda d: d.__setitem__("type", "EPCISQueryDocument"), "type"),
        (lambda d: d["epcisBody"]["eventList"].append(dict(ev)), "repeats"),
        (lambda d: d["@context"][1].pop("tre"), "prefix 'tre'"),
    ]
    for mutate, words in cases:
        doc = copy.deepcopy(good)
        mutate(doc)
        with pytest.raises(EpcisError, match=words):
            validate_document(doc)


def test_broken_records_are_refused_with_a_clear_error() -> None:
    rec = make("cylinder.fill")
    with pytest.raises(EpcisError, match=r"no EPCIS mapping for kind 'gas\.leak'"):
        record_to_event(dict(rec, kind="gas.leak"))
    with pytest.raises(EpcisError, match=r"lacks field 'actual_net_g'"):
        body = {k: v for k, v in rec["body"].items() if k != "actual_net_g"}
        record_to_event(dict(rec, body=body))
    with pytest.raises(EpcisError, match="ts"):
        record_to_event(dict(rec, ts=2**53 - 1))
    with pytest.raises(EpcisError, match="seq"):
        record_to_event(dict(rec, seq=0))
    with pytest.raises(EpcisError, match="body"):
        record_to_event(dict(rec, body=[1]))


# ---------------------------------------------------------------------------------------------
# Warehouse in/out (docs/warehouse.md)


def test_goods_out_of_a_controlled_chemical_keeps_personal_data_out() -> None:
    rec = find("goods.out", lambda b: b["product_class"] == "chemical_toxic" and "doc" in b)
    b = rec["body"]
    ev = record_to_event(rec)
    assert (ev["type"], ev["action"], ev["bizStep"]) == ("ObjectEvent", "OBSERVE", "shipping")
    btt = {t["type"]: t["bizTransaction"] for t in ev["bizTransactionList"]}
    assert btt[epcis.BTT_LICENCE].endswith("/licence/" + b["licence"])
    assert "desadv" in btt
    assert ev["destinationList"][0]["type"] == "owning_party"
    text = json.dumps(ev, ensure_ascii=False)
    for personal in ("party_address", "handler", "handler_id"):
        assert b[personal] not in text, personal
    assert ev["tre:use"] == b["use"]
    ids = [i["id"] for i in b["items"]] + [x for i in b["items"] for x in i.get("inner", [])]
    assert len(ev["epcList"]) == len(set(ids))
    assert schema_errors(capture_document([ev], creation_ms=BASE_MS)) == []


@pytest.mark.parametrize("action", ["pack", "unpack"])
def test_goods_pack_is_an_aggregation_event(action: str) -> None:
    rec = find("goods.pack", lambda b: b["action"] == action)
    ev = record_to_event(rec)
    b = rec["body"]
    assert ev["type"] == "AggregationEvent"
    assert (ev["action"], ev["bizStep"]) == (
        ("ADD", "packing") if action == "pack" else ("DELETE", "unpacking")
    )
    assert ev["parentID"] == epcis.item_uri(b["parent"]["id"])
    assert ev["childEPCs"] == [epcis.item_uri(c) for c in b["children"]]
    assert schema_errors(capture_document([ev], creation_ms=BASE_MS)) == []


def test_item_ids_become_uris() -> None:
    gs1 = "https://id.gs1.org/01/06930000000013/21/A%2F1"
    assert epcis.item_uri(gs1) == gs1
    assert epcis.item_uri("pesticide:1" + "0" * 31) == (
        epcis.ID_BASE + "/item/pesticide/1" + "0" * 31
    )
    assert epcis.item_uri("epc:E280").endswith("/item/epc/E280")
