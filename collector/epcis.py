"""EPCIS 2.0 export: stored records → JSON-LD events and capture documents. Pure, no I/O.

:func:`record_to_event` maps one stored record (``{"v","dev","seq","boot","kind","ts","tq",
"body","mac"}``, docs/wire.md) to one EPCIS 2.0 event; :func:`capture_document` wraps events
in an ``EPCISDocument`` for ``POST /capture``; :func:`records_to_document` does both. Every
event and document passes :func:`validate_event` / :func:`validate_document` (our own checks,
stricter than the schema on URIs) before it is returned; a failure raises :class:`EpcisError`.
The official JSON Schema is checked where a real platform checks it, by the fake platform
(:mod:`simulators.epcis_schema`). docs/epcis.md has the long form of this table.

=====================  ================  ======  ===========================  =================
kind                   event             action  bizStep                      disposition
=====================  ================  ======  ===========================  =================
cylinder.fill          ObjectEvent       OBSERVE ``tre`` bizstep/filling      —
cylinder.check         ObjectEvent       OBSERVE inspecting                   conformant (allow)
                                                                              / non_conformant
elevator.status        ObjectEvent       OBSERVE sensor_reporting             —
elevator.fault         ObjectEvent       OBSERVE sensor_reporting             —
elevator.maintenance   ObjectEvent       OBSERVE inspecting (routine),        —
                                                 repairing (repair),
                                                 ``tre`` bizstep/rescuing
market.entry           ObjectEvent       ADD     receiving                    active
market.settlement      TransactionEvent  ADD     retail_selling               retail_sold
goods.in               ObjectEvent       OBSERVE receiving                    in_progress
goods.out              ObjectEvent       OBSERVE shipping                     in_transit
goods.count            ObjectEvent       OBSERVE cycle_counting               —
goods.pack             AggregationEvent  ADD /   packing / unpacking          —
                                         DELETE
goods.dispatch         ObjectEvent       OBSERVE inspecting                   conformant (allow)
                                                                              / non_conformant
=====================  ================  ======  ===========================  =================

What is identified how (``ID`` = ``https://id.traceedge.example``; each segment
percent-encoded):

- cylinder ``ID/cylinder/{cyl}`` and elevator ``ID/elevator/{reg}``: ``epcList`` (instances);
- goods of one market batch ``ID/market/{market}/goods/{goods_code}/batch/{batch_id}``: the
  ``epcClass`` of ``quantityList`` (class level; goods codes are market codes, never GTINs, so
  no ``urn:epc:class:lgtin``), grams with uom ``GRM``, counted goods as a bare count;
- places: station ``ID/station/{station}``, its scale ``…/scale/{scale}`` and fill-gate
  reader ``…/reader/{dev}``; market ``ID/market/{market}``, its terminal ``…/terminal/{t}``
  and entry gate ``…/gate/{dev}``; an elevator's readPoint is the elevator itself;
- parties: trader ``ID/market/{m}/trader/{id}``, buyer ``ID/market/{m}/buyer/{id}``,
  operator ``ID/station/{s}/operator/{id}``, technician ``ID/technician/{worker}``;
- business transactions: voucher ``ID/market/{m}/voucher/{tran_id}`` (type ``tre`` btt/voucher)
  and receipt trace code ``ID/market/{m}/trace/{trace_id}`` (type ``tre`` btt/trace_code);
  certificate ``ID/certificate/{cert_no}`` as ``certificationInfo``;
- the source record: ``ID/device/{dev}`` and ``ID/record/{dev}/{seq}``.

``eventID`` is ``urn:uuid:`` + UUID v5 (``NAMESPACE_URL``) of the record URI
``ID/record/{dev}/{seq}``: the same record always gives the same id, whatever the mapping
version, so a re-export deduplicates. ``eventTime`` is ``ts`` in UTC with milliseconds and
``Z``; ``eventTimeZoneOffset`` is the ``tz`` argument (default ``+08:00``, China).

Our vocabulary is ``https://traceedge.example/voc/`` under the prefix ``tre`` declared in the
document's ``@context``: custom business steps, business transaction types and measurement
types are full URIs below it; extension fields are compact (``tre:reasons``). Every event
carries ``tre:device``, ``tre:seq``, ``tre:boot`` and ``tre:timeQuality`` (``tq``).
Measurements are sensor reports: masses ``Mass``/``GRM``, pressures ``Pressure``/``KPA``,
speeds ``Speed``/``MTS``, run hours ``Time``/``HUR``; elevator states (floor, door,
direction, …) use ``tre`` measurement types; a raised fault carries ``ALARM_CONDITION``.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

Event = dict[str, Any]

EPCIS_CONTEXT_URL = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
ID_BASE = "https://id.traceedge.example"
VOC = "https://traceedge.example/voc/"
PREFIX = "tre"
DEFAULT_TZ = "+08:00"
SCHEMA_VERSION = "2.0"

# Extension properties whose values are identifiers (JSON-LD: "@type": "@id").
_ID_VALUED = ("device", "operator", "checker", "technician")
CONTEXT: list[Any] = [
    EPCIS_CONTEXT_URL,
    {PREFIX: VOC, **{f"{PREFIX}:{name}": {"@type": "@id"} for name in _ID_VALUED}},
]

BIZSTEP_FILLING = VOC + "bizstep/filling"
BIZSTEP_RESCUING = VOC + "bizstep/rescuing"
BTT_VOUCHER = VOC + "btt/voucher"
BTT_TRACE_CODE = VOC + "btt/trace_code"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _mt(name: str) -> str:
    return VOC + "measurement/" + name


MT_FLOOR = _mt("floor")
MT_DIRECTION = _mt("direction")
MT_DOOR = _mt("door")
MT_DOOR_ZONE = _mt("door_zone")
MT_PASSENGERS = _mt("passengers")
MT_INSPECTION_MODE = _mt("inspection_mode")
MT_MAINTENANCE_MODE = _mt("maintenance_mode")
MT_FAULT = _mt("fault")
MT_RUNS = _mt("runs")
MT_DOOR_CYCLES = _mt("door_cycles")

# Prefixes the GS1 EPCIS 2.0 context itself declares.
GS1_CONTEXT_PREFIXES = frozenset(("epcis", "cbv", "cbvmda", "gs1", "rdfs", "owl", "xsd", "dcterms"))

# ---------------------------------------------------------------------------------------------
# CBV 2.0 terms that may stand bare (the context expands them); anything else must be a URI.

CBV_BIZSTEPS = _words(
    "accepting arriving assembling collecting commissioning consigning creating_class_instance "
    "cycle_counting decommissioning departing destroying disassembling dispensing encoding "
    "entering_exiting holding inspecting installing killing loading other packing picking "
    "receiving removing repackaging repairing replacing reserving retail_selling shipping "
    "staging_outbound stock_taking stocking storing transporting unloading unpacking "
    "void_shipping sensor_reporting sampling"
)
CBV_DISPOSITIONS = _words(
    "active container_closed damaged destroyed dispensed disposed encoded expired in_progress "
    "in_transit inactive no_pedigree_match non_sellable_other partially_dispensed recalled "
    "reserved retail_sold returned sellable_accessible sellable_not_accessible stolen unknown "
    "available completeness_verified completeness_inferred conformant container_open "
    "mismatch_instance mismatch_class mismatch_quantity needs_replacement non_conformant "
    "unavailable"
)
CBV_BTT = _words("bol cert desadv inv pedigree po poc prodorder recadv rma testprd testres upevt")
CBV_SOURCE_DEST_TYPES = frozenset(("owning_party", "possessing_party", "location"))
CBV_ERROR_REASONS = frozenset(("did_not_occur", "incorrect_data"))
CBV_SENSOR_ALERTS = frozenset(("ALARM_CONDITION", "ERROR_CONDITION"))
CBV_MEASUREMENT_TYPES = _words(
    "AbsoluteHumidity AbsorbedDose AbsorbedDoseRate Acceleration Radioactivity Altitude "
    "AmountOfSubstance AmountOfSubstancePerUnitVolume Angle AngularAcceleration "
    "AngularMomentum AngularVelocity Area Capacitance Conductance Conductivity Count Density "
    "Dimensionless DoseEquivalent DoseEquivalentRate DynamicViscosity ElectricCharge "
    "ElectricCurrent ElectricCurrentDensity ElectricFieldStrength Energy Exposure Force "
    "Frequency Illuminance Inductance Irradiance KinematicViscosity Length LinearMomentum "
    "Luminance LuminousFlux LuminousIntensity MagneticFlux MagneticFluxDensity "
    "MagneticVectorPotential Mass MassConcentration MassFlowRate MassPerAreaTime "
    "MemoryCapacity MolalityOfSolute MolarEnergy MolarMass MolarVolume Power Pressure "
    "RadiantFlux RadiantIntensity RelativeHumidity Resistance Resistivity SolidAngle "
    "SpecificVolume Speed SurfaceDensity SurfaceTension Temperature Time Torque Voltage "
    "Volume VolumeFlowRate VolumeFraction VolumetricFlux Wavenumber"
)
CBV_COMPONENTS = _words(
    "x y z axial_distance azimuth height spherical_radius polar_angle elevation_angle easting "
    "northing latitude longitude altitude"
)

EVENT_TYPES = (
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
)
_COMMON_KEYS = _words(
    "@context type eventTime recordTime eventTimeZoneOffset eventID certificationInfo "
    "errorDeclaration"
)
_EVENT_KEYS: dict[str, frozenset[str]] = {
    "ObjectEvent": _words(
        "action epcList quantityList bizStep disposition persistentDisposition readPoint "
        "bizLocation bizTransactionList sourceList destinationList sensorElementList "
        "ilmd"
    ),
    "AggregationEvent": _words(
        "parentID childEPCs childQuantityList action bizStep disposition readPoint bizLocation "
        "bizTransactionList sourceList destinationList sensorElementList"
    ),
    "TransactionEvent": _words(
        "bizTransactionList parentID epcList quantityList action bizStep disposition readPoint "
        "bizLocation sourceList destinationList sensorElementList"
    ),
    "TransformationEvent": _words(
        "inputEPCList inputQuantityList outputEPCList outputQuantityList transformationID "
        "bizStep disposition persistentDisposition readPoint bizLocation bizTransactionList "
        "sourceList destinationList sensorElementList ilmd"
    ),
    "AssociationEvent": _words(
        "parentID childEPCs childQuantityList action bizStep disposition readPoint bizLocation "
        "bizTransactionList sourceList destinationList sensorElementList"
    ),
}
_SENSOR_METADATA_URIS = _words("deviceID deviceMetadata rawData dataProcessingMethod bizRules")
_SENSOR_METADATA_TIMES = _words("time startTime endTime")
_REPORT_URIS = _SENSOR_METADATA_URIS | _words(
    "microorganism chemicalSubstance coordinateReferenceSystem uriValue"
)
_REPORT_NUMBERS = _words("value minValue maxValue meanValue sDev percRank percValue")
_REPORT_KEYS = (
    _REPORT_URIS
    | _REPORT_NUMBERS
    | _words("type exception time component stringValue booleanValue hexBinaryValue uom")
)
_METADATA_KEYS = _SENSOR_METADATA_URIS | _SENSOR_METADATA_TIMES

# Largest ``ts`` that still has a four-digit year (9999-12-31T23:59:59.999Z).
MAX_MS = 253_402_300_799_999


class EpcisError(ValueError):
    """An event or document that must not be exported; ``path`` says where (``eventList[2]
    .bizStep``), ``problem`` what is wrong."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


# ---------------------------------------------------------------------------------------------
# Times, identifiers


_TZ_RE = re.compile(r"^[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00)$")
_TIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$"
)


def check_tz(tz: object, path: str = "eventTimeZoneOffset") -> str:
    """``tz`` if it is an EPCIS time zone offset (``+08:00``, ``-05:30``, ``+14:00``)."""
    if not isinstance(tz, str) or not _TZ_RE.match(tz):
        raise EpcisError(path, f"{tz!r} is not a time zone offset like '+08:00'")
    return tz


def iso_time(ms: object, path: str = "ts") -> str:
    """Milliseconds since the epoch as ISO 8601 UTC with milliseconds: ``…T12:00:00.250Z``."""
    if not isinstance(ms, int) or isinstance(ms, bool) or not 0 <= ms <= MAX_MS:
        raise EpcisError(path, f"{ms!r} is not a time in ms since the epoch (0..{MAX_MS})")
    seconds, millis = divmod(ms, 1000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def id_uri(*segments: object) -> str:
    """``https://id.traceedge.example/<seg>/<seg>…``, every segment percent-encoded."""
    parts = []
    for seg in segments:
        if isinstance(seg, bool) or not isinstance(seg, str | int) or seg == "":
            raise EpcisError("", f"identifier segment {seg!r} must be a non-empty string")
        part = quote(str(seg), safe="")
        # "." and ".." would be dot segments, removed when a URI is normalised.
        parts.append(part.replace(".", "%2E") if part.strip(".") == "" else part)
    return ID_BASE + "/" + "/".join(parts)


def record_uri(dev: str, seq: int) -> str:
    """The URI of the stored record ``(dev, seq)``."""
    return id_uri("record", dev, seq)


def event_id(dev: str, seq: int) -> str:
    """Deterministic ``eventID`` of record ``(dev, seq)``: ``urn:uuid:`` + UUID v5 of its URI."""
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, record_uri(dev, seq)))


def device_uri(dev: str) -> str:
    return id_uri("device", dev)


def cylinder_uri(cyl: str) -> str:
    return id_uri("cylinder", cyl)


def elevator_uri(reg: str) -> str:
    return id_uri("elevator", reg)


def station_uri(station: str) -> str:
    return id_uri("station", station)


def market_uri(market: str) -> str:
    return id_uri("market", market)


def goods_batch_uri(market: str, goods_code: str, batch_id: str) -> str:
    """Class-level identifier of the goods of one entry batch (an ``epcClass``)."""
    return id_uri("market", market, "goods", goods_code, "batch", batch_id)


def voucher_uri(market: str, tran_id: str) -> str:
    return id_uri("market", market, "voucher", tran_id)


def trace_code_uri(market: str, trace_id: str) -> str:
    return id_uri("market", market, "trace", trace_id)


def certificate_uri(cert_no: str) -> str:
    return id_uri("certificate", cert_no)


# ---------------------------------------------------------------------------------------------
# Mapping


def _ext(name: str) -> str:
    return f"{PREFIX}:{name}"


def _mass(grams: int, measured: str, **extra: Any) -> dict[str, Any]:
    return {"type": "Mass", "value": grams, "uom": "GRM", _ext("measured"): measured, **extra}


def _pressure(kpa: int, measured: str) -> dict[str, Any]:
    return {"type": "Pressure", "value": kpa, "uom": "KPA", _ext("measured"): measured}


def _sensor(dev: str, reports: list[dict[str, Any]], **meta: str) -> list[dict[str, Any]]:
    return [{"sensorMetadata": {"deviceID": device_uri(dev), **meta}, "sensorReport": reports}]


def _base(rec: Mapping[str, Any], etype: str, tz: str) -> Event:
    dev, seq = rec["dev"], rec["seq"]
    return {
        "type": etype,
        "eventTime": iso_time(rec["ts"]),
        "eventTimeZoneOffset": tz,
        "eventID": event_id(dev, seq),
    }


def _provenance(rec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        _ext("device"): device_uri(rec["dev"]),
        _ext("seq"): rec["seq"],
        _ext("boot"): rec["boot"],
        _ext("timeQuality"): rec["tq"],
    }


def _cylinder_checks(b: Mapping[str, Any], ev: Event, reports: list[dict[str, Any]]) -> None:
    """The pre-fill and post-fill checks of a fill or check body, as reports and fields."""
    pre = b.get("pre")
    if pre is not None:
        reports.append(_pressure(pre["residual_kpa"], "residual_before_filling"))
        reports.append(_mass(pre["tare_g"], "tare"))
        ev[_ext("appearanceOk")] = pre["appearance_ok"]
    post = b.get("post")
    if post is not None:
        reports.append(_mass(post["reweigh_g"], "gross_reweighed"))
        ev[_ext("leakOk")] = post["leak_ok"]
        ev[_ext("checker")] = id_uri("station", b["station"], "operator", post["checker"])


def _cylinder_fill(rec: Mapping[str, Any], tz: str) -> Event:
    b = rec["body"]
    ev = _base(rec, "ObjectEvent", tz)
    station = b["station"]
    ev.update(
        action="OBSERVE",
        epcList=[cylinder_uri(b["cyl"])],
        bizStep=BIZSTEP_FILLING,
        readPoint={"id": id_uri("station", station, "scale", b["scale"])},
        bizLocation={"id": station_uri(station)},
    )
    end = iso_time(b["end_ts"], "body.end_ts")
    reports = [_mass(b["actual_net_g"], "net_filled", time=end)]
    if "final_kpa" in b:
        reports.append(_pressure(b["final_kpa"], "at_end_of_filling"))
    _cylinder_checks(b, ev, reports)
    start = iso_time(b["start_ts"], "body.start_ts")
    ev["sensorElementList"] = _sensor(rec["dev"], reports, startTime=start, endTime=end)
    ev[_ext("medium")] = b["medium"]
    ev[_ext("targetNetMassG")] = b["target_net_g"]
    ev[_ext("operator")] = id_uri("station", station, "operator", b["operator"])
    ev[_ext("scale")] = b["scale"]
    if "tag" in b:
        ev[_ext("tag")] = b["tag"]
    return ev


def _cylinder_check(rec: Mapping[str, Any], tz: str) -> Event:
    b = rec["body"]
    ev = _base(rec, "ObjectEvent", tz)
    station = b["station"]
    ev.update(
        action="OBSERVE",
        epcList=[cylinder_uri(b["cyl"])],
        bizStep="inspecting",
        disposition="conformant" if b["decision"] == "allow" else "non_conformant",
        readPoint={"id": id_uri("station", station, "reader", rec["dev"])},
        bizLocation={"id": station_uri(station)},
    )
    reports: list[dict[str, Any]] = []
    _cylinder_checks(b, ev, reports)
    if reports:
        ev["sensorElementList"] = _sensor(rec["dev"], reports)
    ev[_ext("stage")] = b["stage"]
    ev[_ext("decision")] = b["decision"]
    ev[_ext("reasons")] = list(b["reasons"])
    ev[_ext("registryVersion")] = b["reg_ver"]
    ev[_ext("operator")] = id_uri("station", station, "operator", b["operator"])
    for key, name in (("medium", "medium"), ("tag", "tag")):
        if key in b:
            ev[_ext(name)] = b[key]
    return ev


def _elevator(rec: Mapping[str, Any], tz: str, bizstep: str) -> Event:
    ev = _base(rec, "ObjectEvent", tz)
    reg = rec["body"]["reg"]
    ev.update(
        action="OBSERVE",
        epcList=[elevator_uri(reg)],
        bizStep=bizstep,
        readPoint={"id": elevator_uri(reg)},
    )
    return ev


def _state(mt: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": mt, "booleanValue": value}
    if isinstance(value, str):
        return {"type": mt, "stringValue": value}
    return {"type": mt, "value": value}


def _elevator_status(rec: Mapping[str, Any], tz: str) -> Event:
    b = rec["body"]
    ev = _elevator(rec, tz, "sensor_reporting")
    reports = [
        _state(MT_FLOOR, b["floor"]),
        _state(MT_DIRECTION, b["dir"]),
        _state(MT_DOOR, b["door"]),
        _state(MT_DOOR_ZONE, b["door_zone"]),
        _state(MT_INSPECTION_MODE, b["inspection"]),
        _state(MT_MAINTENANCE_MODE, b["maintenance"]),
    ]
    if "people" in b:  # absent: no sensor in the car (a controller read over Modbus)
        reports.insert(4, _state(MT_PASSENGERS, b["people"]))
    for fault in b["faults"]:
        reports.append({**_state(MT_FAULT, fault), "exception": "ALARM_CONDITION"})
    counters = b.get("counters")
    if counters is not None:
        reports.append(_state(MT_RUNS, counters["runs"]))
        reports.append(_state(MT_DOOR_CYCLES, counters["door_cycles"]))
        reports.append({"type": "Time", "value": counters["run_hours"], "uom": "HUR"})
    ev["sensorElementList"] = _sensor(rec["dev"], reports, time=ev["eventTime"])
    return ev


def _elevator_fault(rec: Mapping[str, Any], tz: str) -> Event:
    b = rec["body"]
    ev = _elevator(rec, tz, "sensor_reporting")
    raised = b["state"] == "raised"
    fault = {"type": MT_FAULT, "stringValue": b["fault"], "booleanValue": raised}
    if raised:
        fault["exception"] = "ALARM_CONDITION"
    reports = [fault, _state(MT_FLOOR, b["floor"])]
    if "door" in b:
        reports.append(_state(MT_DOOR, b["door"]))
    if "people" in b:
        reports.append(_state(MT_PASSENGERS, b["people"]))
    if "speed_mm_s" in b:
        reports.append({"type": "Speed", "value": b["speed_mm_s"] / 1000, "uom": "MTS"})
    meta = {"time": ev["eventTime"]}
    ev[_ext("faultCode")] = b["fault"]
    ev[_ext("faultState")] = b["state"]
    if "raised_ts" in b:
        raised_at = iso_time(b["raised_ts"], "body.raised_ts")
        ev[_ext("faultRaisedTime")] = raised_at
        meta = {"startTime": raised_at, "endTime": ev["eventTime"]}
    if "detail" in b:
        ev[_ext("faultDetail")] = b["detail"]
    ev["sensorElementList"] = _sensor(rec["dev"], reports, **meta)
    return ev


def _elevator_maintenance(rec: Mapping[str, Any], tz: str) -> Event:
    b = rec["body"]
    plan = b.get("plan")
    bizstep = {"repair": "repairing", "rescue": BIZSTEP_RESCUING}.get(plan, "inspecting")
    ev = _elevator(rec, tz, bizstep)
    ev[_ext("visit")] = b["event"]
    if plan is not None:
        ev[_ext("plan")] = plan
    ev[_ext("technician")] = id_uri("technician", b["worker"])
    ev[_ext("card")] = b["card"]
    ev[_ext("maintenanceCompany")] = b["company"]
    ev[_ext("timeIn")] = iso_time(b["time_in"], "body.time_in")
    if "time_out" in b:
        ev[_ext("timeOut")] = iso_time(b["time_out"], "body.time_out")
        ev[_ext("visitDurationMs")] = b["time_out"] - b["time_in"]
    if "items" in b:
        ev[_ext("items")] = list(b["items"])
    return ev


def _market_entry(rec: Mapping[str, Any], tz: str) -> Event:
    b = rec["body"]
    ev = _base(rec, "ObjectEvent", tz)
    market = b["market"]
    ev.update(
        certificationInfo=certificate_uri(b["cert_no"]),
        action="ADD",
        quantityList=[
            {
                "epcClass": goods_batch_uri(market, b["goods_code"], b["batch_id"]),
                "quantity": b["quantity_g"],
                "uom": "GRM",
            }
        ],
        bizStep="receiving",
        disposition="active",
        readPoint={"id": id_uri("market", market, "gate", rec["dev"])},
        bizLocation={"id": market_uri(market)},
        destinationList=[
            {"type": "owning_party", "destination": id_uri("market", market, "trader", b["trader"])}
        ],
        ilmd={
            "cbvmda:lotNumber": b["batch_id"],
            _ext("origin"): b["origin"],
            _ext("goodsCode"): b["goods_code"],
            _ext("goodsName"): b["goods_name"],
            _ext("certificateNumber"): b["cert_no"],
        },
    )
    if "pieces" in b:
        ev[_ext("pieces")] = b["pieces"]
    if "card" in b:
        ev[_ext("card")] = b["card"]
    src = b.get("source")
    if isinstance(src, Mapping):  # the upstream receipt the goods were bought on (卡单同行)
        for key, name in (("trace_id", "sourceTraceCode"), ("tran_id", "sourceTranId"),
                          ("via", "sourceVia")):  # fmt: skip
            if key in src:
                ev[_ext(name)] = src[key]
    return ev


_LINE_FIELDS = (
    ("batch_id", "batch"),
    ("goods_code", "goodsCode"),
    ("goods_name", "goodsName"),
    ("mode", "mode"),
    ("weight_g", "weightG"),
    ("price_fen_per_kg", "priceFenPerKg"),
    ("pieces", "pieces"),
    ("price_fen_per_piece", "priceFenPerPiece"),
    ("amount_fen", "amountFen"),
)


def _market_settlement(rec: Mapping[str, Any], tz: str) -> Event:
    b = rec["body"]
    ev = _base(rec, "TransactionEvent", tz)
    market = b["market"]
    quantities: list[dict[str, Any]] = []
    for line in b["lines"]:
        q: dict[str, Any] = {
            "epcClass": goods_batch_uri(market, line["goods_code"], line["batch_id"])
        }
        if line["mode"] == "weighed":
            q.update(quantity=line["weight_g"], uom="GRM")
        else:
            q["quantity"] = line["pieces"]
        quantities.append(q)
    ev.update(
        bizTransactionList=[
            {"type": BTT_VOUCHER, "bizTransaction": voucher_uri(market, b["tran_id"])},
            {"type": BTT_TRACE_CODE, "bizTransaction": trace_code_uri(market, b["trace_id"])},
        ],
        quantityList=quantities,
        action="ADD",
        bizStep="retail_selling",
        disposition="retail_sold",
        readPoint={"id": id_uri("market", market, "terminal", b["terminal"])},
        bizLocation={"id": market_uri(market)},
        sourceList=[
            {"type": "owning_party", "source": id_uri("market", market, "trader", b["seller"])}
        ],
    )
    if "buyer" in b:
        buyer = id_uri("market", market, "buyer", b["buyer"])
        ev["destinationList"] = [{"type": "owning_party", "destination": buyer}]
    ev[_ext("tranId")] = b["tran_id"]
    ev[_ext("traceCode")] = b["trace_id"]
    ev[_ext("totalFen")] = b["total_fen"]
    ev[_ext("saleLines")] = [
        {_ext(name): line[key] for key, name in _LINE_FIELDS if key in line} for line in b["lines"]
    ]
    ev[_ext("scaleSoftware")] = b["scale_sw"]
    ev[_ext("sellerCard")] = b["seller_card"]
    for key, name in (("buyer_card", "buyerCard"), ("pay", "pay")):
        if key in b:
            ev[_ext(name)] = b[key]
    return ev


# ---------------------------------------------------------------------------------------------
# Warehouse in/out (goods.*): docs/warehouse.md

BTT_LICENCE = VOC + "btt/licence"
_UOM = {"g": "GRM", "ml": "MLT"}


def item_uri(item_id: str) -> str:
    """An item id of :func:`drivers.codecs.itemcodes.parse_item` as an EPC URI: GS1 ids are
    Digital Link URIs already; ``pesticide:…``, ``seed:…``, ``drug:…``, ``epc:…`` become
    ``ID/item/{scheme}/{code}``."""
    if item_id.startswith("https://id.gs1.org/"):
        return item_id
    scheme, _, code = item_id.partition(":")
    return id_uri("item", scheme, code)


def warehouse_uri(site: str) -> str:
    return id_uri("warehouse", site)


def _goods_ids(items: Any) -> list[str]:
    out: list[str] = []
    for it in items:
        for i in [it["id"], *it.get("inner", [])]:
            uri = item_uri(i)
            if uri not in out:
                out.append(uri)
    return out


def _goods_move(rec: Mapping[str, Any], tz: str, inbound: bool) -> Event:
    b = rec["body"]
    ev = _base(rec, "ObjectEvent", tz)
    site = b["site"]
    product = b["product"]
    q: dict[str, Any] = {
        "epcClass": id_uri("product", b["product_class"], product.get("code") or product["name"]),
        "quantity": b["quantity"],
    }
    if b["unit"] in _UOM:
        q["uom"] = _UOM[b["unit"]]
    ev.update(
        action="OBSERVE",
        epcList=_goods_ids(b["items"]),
        quantityList=[q],
        bizStep="receiving" if inbound else "shipping",
        disposition="in_progress" if inbound else "in_transit",
        readPoint={"id": id_uri("warehouse", site, "terminal", rec["dev"])},
        bizLocation={"id": warehouse_uri(site)},
    )
    bts: list[dict[str, str]] = []
    if "licence" in b:
        bts.append({"type": BTT_LICENCE, "bizTransaction": id_uri("licence", b["licence"])})
    if "doc" in b:
        bts.append(
            {"type": "po" if inbound else "desadv", "bizTransaction": id_uri("doc", site, b["doc"])}
        )
    if bts:
        ev["bizTransactionList"] = bts
    # the counter-party by name only: its address, the handler and the ID number stay in the
    # store (personal data)
    if "party" in b:
        party = id_uri("party", b["party"])
        if inbound:
            ev["sourceList"] = [{"type": "owning_party", "source": party}]
        else:
            ev["destinationList"] = [{"type": "owning_party", "destination": party}]
    if "lot" in b:  # ilmd is for ADD (commissioning) only; these items exist already
        ev[_ext("lot")] = b["lot"]
    ev[_ext("productClass")] = b["product_class"]
    ev[_ext("productName")] = product["name"]
    ev[_ext("operator")] = id_uri("warehouse", site, "operator", b["operator"])
    if "use" in b:
        ev[_ext("use")] = b["use"]
    if "gate_seq" in b:
        ev[_ext("gateSeq")] = b["gate_seq"]
    return ev


def _goods_in(rec: Mapping[str, Any], tz: str) -> Event:
    return _goods_move(rec, tz, True)


def _goods_out(rec: Mapping[str, Any], tz: str) -> Event:
    return _goods_move(rec, tz, False)


def _goods_count(rec: Mapping[str, Any], tz: str) -> Event:
    b = rec["body"]
    ev = _base(rec, "ObjectEvent", tz)
    site = b["site"]
    ev.update(
        action="OBSERVE",
        epcList=_goods_ids(b["items"]),
        bizStep="cycle_counting",
        readPoint={"id": id_uri("warehouse", site, "terminal", rec["dev"])},
        bizLocation={"id": warehouse_uri(site)},
    )
    ev[_ext("countId")] = b["count_id"]
    ev[_ext("part")] = b["part"]
    ev[_ext("last")] = b["last"]
    ev[_ext("operator")] = id_uri("warehouse", site, "operator", b["operator"])
    if "product_class" in b:
        ev[_ext("productClass")] = b["product_class"]
    return ev


def _goods_pack(rec: Mapping[str, Any], tz: str) -> Event:
    b = rec["body"]
    ev = _base(rec, "AggregationEvent", tz)
    site = b["site"]
    pack = b["action"] == "pack"
    ev.update(
        parentID=item_uri(b["parent"]["id"]),
        childEPCs=[item_uri(c) for c in b["children"]],
        action="ADD" if pack else "DELETE",
        bizStep="packing" if pack else "unpacking",
        readPoint={"id": id_uri("warehouse", site, "terminal", rec["dev"])},
        bizLocation={"id": warehouse_uri(site)},
    )
    ev[_ext("operator")] = id_uri("warehouse", site, "operator", b["operator"])
    return ev


def _goods_dispatch(rec: Mapping[str, Any], tz: str) -> Event:
    b = rec["body"]
    ev = _base(rec, "ObjectEvent", tz)
    site = b["site"]
    ev.update(
        action="OBSERVE",
        epcList=[item_uri(i) for i in b["items"]],
        bizStep="inspecting",
        disposition="conformant" if b["decision"] == "allow" else "non_conformant",
        readPoint={"id": id_uri("warehouse", site, "terminal", b["terminal"])},
        bizLocation={"id": warehouse_uri(site)},
    )
    if "licence" in b:
        ev["bizTransactionList"] = [
            {"type": BTT_LICENCE, "bizTransaction": id_uri("licence", b["licence"])}
        ]
    ev[_ext("gate")] = "dispatch"
    ev[_ext("decision")] = b["decision"]
    ev[_ext("reasons")] = list(b["reasons"])
    ev[_ext("registryVersion")] = b["reg_ver"]
    ev[_ext("productClass")] = b["product_class"]
    ev[_ext("quantity")] = b["quantity"]
    ev[_ext("unit")] = b["unit"]
    ev[_ext("operator")] = id_uri("warehouse", site, "operator", b["operator"])
    if "lot" in b:
        ev[_ext("lot")] = b["lot"]
    if b.get("detail"):
        ev[_ext("itemsRefused")] = [item_uri(i) for i in b["detail"]]
    return ev


_MAPPERS: dict[str, Callable[[Mapping[str, Any], str], Event]] = {
    "cylinder.fill": _cylinder_fill,
    "cylinder.check": _cylinder_check,
    "elevator.status": _elevator_status,
    "elevator.fault": _elevator_fault,
    "elevator.maintenance": _elevator_maintenance,
    "market.entry": _market_entry,
    "market.settlement": _market_settlement,
    "goods.in": _goods_in,
    "goods.out": _goods_out,
    "goods.count": _goods_count,
    "goods.pack": _goods_pack,
    "goods.dispatch": _goods_dispatch,
}
KINDS = tuple(_MAPPERS)


def record_to_event(rec: Mapping[str, Any], tz: str = DEFAULT_TZ) -> Event:
    """The EPCIS 2.0 event of one stored record, checked by :func:`validate_event`.

    ``rec`` is a record as stored (its body already valid for its kind). Raises
    :class:`EpcisError` on an unknown kind, a malformed envelope or body, a bad ``tz``.
    """
    check_tz(tz, "tz")
    if not isinstance(rec, Mapping):
        raise EpcisError("record", "is not a JSON object")
    dev, seq = rec.get("dev"), rec.get("seq")
    where = f"record {dev}/{seq}"
    if not isinstance(dev, str) or not dev:
        raise EpcisError(where, "dev must be a non-empty string")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise EpcisError(where, "seq must be a positive integer")
    mapper = _MAPPERS.get(str(rec.get("kind")))
    if mapper is None:
        raise EpcisError(where, f"no EPCIS mapping for kind {rec.get('kind')!r}")
    if not isinstance(rec.get("body"), Mapping):
        raise EpcisError(where, "body must be a JSON object")
    try:
        ev = mapper(rec, tz)
        ev.update(_provenance(rec))
    except EpcisError as exc:
        raise EpcisError(f"{where} {exc.path}".strip(), exc.problem) from None
    except KeyError as exc:
        raise EpcisError(where, f"{rec['kind']} record lacks field {exc.args[0]!r}") from None
    except (TypeError, AttributeError) as exc:
        raise EpcisError(where, f"malformed {rec['kind']} record: {exc}") from None
    try:
        validate_event(ev)
    except EpcisError as exc:
        raise EpcisError(f"{where} event.{exc.path}", exc.problem) from None
    return ev


def capture_document(
    events: Iterable[Mapping[str, Any]],
    *,
    creation_ms: int | None = None,
    context: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """An ``EPCISDocument`` holding ``events``, checked by :func:`validate_document`.

    ``creationDate`` is ``creation_ms`` (default: now); ``context`` defaults to
    :data:`CONTEXT` (the GS1 context and our ``tre`` prefix).
    """
    if creation_ms is None:
        creation_ms = time.time_ns() // 1_000_000
    doc: dict[str, Any] = {
        "@context": list(CONTEXT if context is None else context),
        "type": "EPCISDocument",
        "schemaVersion": SCHEMA_VERSION,
        "creationDate": iso_time(creation_ms, "creation_ms"),
        "epcisBody": {"eventList": [dict(ev) for ev in events]},
    }
    validate_document(doc)
    return doc


def records_to_document(
    records: Iterable[Mapping[str, Any]], tz: str = DEFAULT_TZ, *, creation_ms: int | None = None
) -> dict[str, Any]:
    """:func:`capture_document` of :func:`record_to_event` of every record."""
    return capture_document((record_to_event(r, tz) for r in records), creation_ms=creation_ms)


# ---------------------------------------------------------------------------------------------
# Our own validation: stricter than the schema where it matters for export


_URI_RE = re.compile(
    r"^([A-Za-z][A-Za-z0-9+.\-]*):(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#\[\]]|%[0-9A-Fa-f]{2})+$"
)
_URN_RE = re.compile(r"^urn:[A-Za-z0-9][A-Za-z0-9\-]{0,31}:\S+$", re.IGNORECASE)
_HTTP_RE = re.compile(r"^https?://[^/?#@\s]+(?:[/?#]|$)", re.IGNORECASE)
_EXT_KEY_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_.\-]*):[^\s:/][^\s]*$")
_UOM_RE = re.compile(r"^[A-Z0-9]{2,3}$")
_HEX_RE = re.compile(r"^[A-Fa-f0-9]+$")


def check_uri(value: object, path: str, prefixes: Iterable[str] = ()) -> str:
    """``value`` if it is an absolute URI (RFC 3986 characters, a scheme, for http(s) a host,
    for urn a namespace), not a bare word nor a compact IRI over a context prefix."""
    if not isinstance(value, str) or not value:
        raise EpcisError(path, f"{value!r} is not a URI")
    m = _URI_RE.match(value)
    if m is None:
        what = "a bare word" if ":" not in value else "not an absolute URI"
        raise EpcisError(path, f"{value!r} is {what}; a full URI is required")
    scheme = m.group(1).lower()
    if scheme in ("http", "https") and not _HTTP_RE.match(value):
        raise EpcisError(path, f"{value!r} is an http(s) URI without a host")
    if scheme == "urn" and not _URN_RE.match(value):
        raise EpcisError(path, f"{value!r} is not a urn:<namespace>:<name>")
    if scheme in prefixes or scheme in GS1_CONTEXT_PREFIXES:
        raise EpcisError(path, f"{value!r} is a compact IRI; write the full URI")
    return value


def _check_term_or_uri(
    value: object, path: str, terms: frozenset[str], what: str, prefixes: Iterable[str]
) -> None:
    if isinstance(value, str) and value in terms:
        return
    if isinstance(value, str) and ":" not in value:
        raise EpcisError(path, f"{value!r} is neither a CBV {what} nor a URI")
    check_uri(value, path, prefixes)
    assert isinstance(value, str)
    low = value.lower()
    if low.startswith("urn:epcglobal:cbv") or re.match(r"^https?://ns\.gs1\.org/cbv/", low):
        raise EpcisError(path, f"{value!r}: CBV {what}s are written as bare terms in JSON-LD")


def check_time(value: object, path: str) -> str:
    """``value`` if it is an ISO 8601 date-time with seconds and a ``Z`` or ``±hh:mm``."""
    if not isinstance(value, str) or not _TIME_RE.match(value):
        raise EpcisError(
            path, f"{value!r} is not an ISO 8601 time with seconds and 'Z' or an offset"
        )
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise EpcisError(path, f"{value!r} is not a valid time: {exc}") from None
    return value


def _check_number(value: object, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EpcisError(path, f"{value!r} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise EpcisError(path, f"{value!r} is not a finite number")


def _check_keys(
    obj: Mapping[str, Any], path: str, known: frozenset[str], prefixes: frozenset[str]
) -> None:
    for key in obj:
        if key in known:
            continue
        m = _EXT_KEY_RE.match(key) if isinstance(key, str) else None
        if m is None:
            raise EpcisError(
                f"{path}.{key}" if path else str(key),
                "unknown field; extensions must be prefix:name with a prefix in @context",
            )
        if m.group(1) not in prefixes:
            raise EpcisError(
                f"{path}.{key}" if path else key,
                f"prefix {m.group(1)!r} is not declared in @context",
            )


def _list(value: object, path: str, *, non_empty: bool = False) -> list[Any]:
    if not isinstance(value, list):
        raise EpcisError(path, "must be a list")
    if non_empty and not value:
        raise EpcisError(path, "must not be empty")
    return value


def _obj(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise EpcisError(path, "must be a JSON object")
    return value


def _check_quantities(value: object, path: str, prefixes: frozenset[str]) -> None:
    for i, q in enumerate(_list(value, path)):
        p = f"{path}[{i}]"
        q = _obj(q, p)
        extra = set(q) - {"epcClass", "quantity", "uom"}
        if extra:
            raise EpcisError(p, f"unknown fields {sorted(extra)}")
        if "epcClass" not in q:
            raise EpcisError(p, "epcClass is required")
        check_uri(q["epcClass"], p + ".epcClass", prefixes)
        if "quantity" in q:
            _check_number(q["quantity"], p + ".quantity")
            if q["quantity"] < 0:
                raise EpcisError(p + ".quantity", "must not be negative")
        if "uom" in q:
            if "quantity" not in q:
                raise EpcisError(p + ".uom", "a unit needs a quantity")
            if not isinstance(q["uom"], str) or not _UOM_RE.match(q["uom"]):
                raise EpcisError(p + ".uom", f"{q['uom']!r} is not a UN/ECE Rec 20 code")


def _check_sensors(value: object, path: str, prefixes: frozenset[str]) -> None:
    for i, el in enumerate(_list(value, path)):
        p = f"{path}[{i}]"
        el = _obj(el, p)
        _check_keys(el, p, frozenset(("sensorMetadata", "sensorReport")), prefixes)
        if "sensorMetadata" in el:
            mp = p + ".sensorMetadata"
            meta = _obj(el["sensorMetadata"], mp)
            _check_keys(meta, mp, _METADATA_KEYS, prefixes)
            for key in sorted(_SENSOR_METADATA_URIS):
                if key in meta:
                    check_uri(meta[key], f"{mp}.{key}", prefixes)
            for key in sorted(_SENSOR_METADATA_TIMES):
                if key in meta:
                    check_time(meta[key], f"{mp}.{key}")
        if "sensorReport" not in el:
            raise EpcisError(p, "sensorReport is required")
        for j, rep in enumerate(_list(el["sensorReport"], p + ".sensorReport", non_empty=True)):
            rp = f"{p}.sensorReport[{j}]"
            rep = _obj(rep, rp)
            _check_keys(rep, rp, _REPORT_KEYS, prefixes)
            if "type" not in rep:
                raise EpcisError(rp, "type is required")
            _check_sensor_vocab(rep["type"], rp + ".type", CBV_MEASUREMENT_TYPES, prefixes)
            if "exception" in rep:
                _check_sensor_vocab(
                    rep["exception"], rp + ".exception", CBV_SENSOR_ALERTS, prefixes
                )
            if "component" in rep:
                _check_term_or_uri(
                    rep["component"], rp + ".component", CBV_COMPONENTS, "component", prefixes
                )
            for key in sorted(_REPORT_URIS):
                if key in rep:
                    check_uri(rep[key], f"{rp}.{key}", prefixes)
            for key in sorted(_REPORT_NUMBERS):
                if key in rep:
                    _check_number(rep[key], f"{rp}.{key}")
            if "time" in rep:
                check_time(rep["time"], rp + ".time")
            if "uom" in rep and (not isinstance(rep["uom"], str) or not _UOM_RE.match(rep["uom"])):
                raise EpcisError(rp + ".uom", f"{rep['uom']!r} is not a UN/ECE Rec 20 code")
            if "stringValue" in rep and not isinstance(rep["stringValue"], str):
                raise EpcisError(rp + ".stringValue", "must be a string")
            if "booleanValue" in rep and not isinstance(rep["booleanValue"], bool):
                raise EpcisError(rp + ".booleanValue", "must be true or false")
            hexv = rep.get("hexBinaryValue")
            if hexv is not None and (not isinstance(hexv, str) or not _HEX_RE.match(hexv)):
                raise EpcisError(rp + ".hexBinaryValue", "must be hexadecimal")


def _check_sensor_vocab(
    value: object, path: str, terms: frozenset[str], prefixes: frozenset[str]
) -> None:
    if isinstance(value, str) and value in terms:
        return
    if isinstance(value, str) and ":" not in value:
        raise EpcisError(path, f"{value!r} is neither a CBV term nor a URI")
    check_uri(value, path, prefixes)
    assert isinstance(value, str)
    if re.match(r"^https?://(?:www\.)?gs1\.org/voc/", value, re.IGNORECASE):
        raise EpcisError(path, f"{value!r}: GS1 Web Vocabulary terms are written bare")


def _context_prefixes(context: object) -> frozenset[str]:
    """Prefixes an ``@context`` (string, object or list of them) declares, plus GS1's."""
    found = set(GS1_CONTEXT_PREFIXES)
    items = context if isinstance(context, list) else [context]
    for item in items:
        if isinstance(item, Mapping):
            for key, val in item.items():
                if isinstance(key, str) and ":" not in key and isinstance(val, str):
                    found.add(key)
    return frozenset(found)


DEFAULT_PREFIXES = _context_prefixes(CONTEXT)


def validate_event(
    ev: Mapping[str, Any], *, prefixes: Iterable[str] | None = None, path: str = ""
) -> None:
    """Refuse an event we must not export; raise :class:`EpcisError` saying where and why.

    Checks more than the schema does: ``eventTime`` with ``Z`` or an offset and
    ``eventTimeZoneOffset`` present; ``eventID`` present; every identifier (epcList,
    epcClass, readPoint, bizLocation, bizTransaction, source, destination, sensor device…)
    an absolute URI, never a bare word nor a compact IRI; ``bizStep``, ``disposition`` and
    the vocabulary types either a CBV term or a URI outside CBV; extension fields
    ``prefix:name`` with a prefix from ``prefixes`` (default: our ``@context``).
    """
    pre = DEFAULT_PREFIXES if prefixes is None else frozenset(prefixes) | GS1_CONTEXT_PREFIXES

    def at(key: str) -> str:
        return f"{path}.{key}" if path else key

    ev = _obj(ev, path or "event")
    etype = ev.get("type")
    if etype not in EVENT_TYPES:
        raise EpcisError(at("type"), f"{etype!r} is not an EPCIS event type")
    _check_keys(ev, path, _COMMON_KEYS | _EVENT_KEYS[etype], pre)
    if "eventTime" not in ev:
        raise EpcisError(at("eventTime"), "is required")
    check_time(ev["eventTime"], at("eventTime"))
    if "recordTime" in ev:
        check_time(ev["recordTime"], at("recordTime"))
    if "eventTimeZoneOffset" not in ev:
        raise EpcisError(at("eventTimeZoneOffset"), "is required (e.g. '+08:00')")
    check_tz(ev["eventTimeZoneOffset"], at("eventTimeZoneOffset"))
    if "eventID" not in ev:
        raise EpcisError(at("eventID"), "is required: the platform deduplicates by it")
    check_uri(ev["eventID"], at("eventID"), pre)
    if "certificationInfo" in ev:
        certs = ev["certificationInfo"]
        for i, c in enumerate(certs if isinstance(certs, list) else [certs]):
            check_uri(c, at(f"certificationInfo[{i}]"), pre)
    if "errorDeclaration" in ev:
        ep = at("errorDeclaration")
        decl = _obj(ev["errorDeclaration"], ep)
        _check_keys(decl, ep, frozenset(("declarationTime", "reason", "correctiveEventIDs")), pre)
        check_time(decl.get("declarationTime"), ep + ".declarationTime")
        if "reason" in decl:
            _check_term_or_uri(
                decl["reason"], ep + ".reason", CBV_ERROR_REASONS, "error reason", pre
            )
        for i, c in enumerate(
            _list(decl.get("correctiveEventIDs", []), ep + ".correctiveEventIDs")
        ):
            check_uri(c, f"{ep}.correctiveEventIDs[{i}]", pre)
    needs_action = etype in ("ObjectEvent", "TransactionEvent", "AggregationEvent")
    if ("action" in ev or needs_action) and ev.get("action") not in ("OBSERVE", "ADD", "DELETE"):
        raise EpcisError(at("action"), f"{ev.get('action')!r} is not OBSERVE, ADD or DELETE")
    if "bizStep" in ev:
        _check_term_or_uri(ev["bizStep"], at("bizStep"), CBV_BIZSTEPS, "business step", pre)
    if "disposition" in ev:
        _check_term_or_uri(
            ev["disposition"], at("disposition"), CBV_DISPOSITIONS, "disposition", pre
        )
    if "persistentDisposition" in ev:
        pp = at("persistentDisposition")
        pd = _obj(ev["persistentDisposition"], pp)
        _check_keys(pd, pp, frozenset(("set", "unset")), frozenset())
        if not pd:
            raise EpcisError(pp, "needs set or unset")
        for key, items in pd.items():
            for i, d in enumerate(_list(items, f"{pp}.{key}", non_empty=True)):
                _check_term_or_uri(d, f"{pp}.{key}[{i}]", CBV_DISPOSITIONS, "disposition", pre)
    for key in ("readPoint", "bizLocation"):
        if key in ev:
            loc = _obj(ev[key], at(key))
            _check_keys(loc, at(key), frozenset(("id",)), pre)
            if "id" not in loc:
                raise EpcisError(at(key), "id is required")
            check_uri(loc["id"], at(key) + ".id", pre)
    for key in ("epcList", "childEPCs", "inputEPCList", "outputEPCList"):
        if key in ev:
            items = _list(ev[key], at(key))
            if len(set(map(str, items))) != len(items):
                raise EpcisError(at(key), "holds the same EPC twice")
            for i, epc in enumerate(items):
                check_uri(epc, at(f"{key}[{i}]"), pre)
    for key in ("parentID", "transformationID"):
        if key in ev:
            check_uri(ev[key], at(key), pre)
    for key in ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"):
        if key in ev:
            _check_quantities(ev[key], at(key), pre)
    if "bizTransactionList" in ev:
        bp = at("bizTransactionList")
        for i, bt in enumerate(_list(ev["bizTransactionList"], bp, non_empty=True)):
            p = f"{bp}[{i}]"
            bt = _obj(bt, p)
            _check_keys(bt, p, frozenset(("type", "bizTransaction")), frozenset())
            check_uri(bt.get("bizTransaction"), p + ".bizTransaction", pre)
            if "type" in bt:
                _check_term_or_uri(bt["type"], p + ".type", CBV_BTT, "transaction type", pre)
    elif etype == "TransactionEvent":
        raise EpcisError(at("bizTransactionList"), "a TransactionEvent needs one")
    for key, field in (("sourceList", "source"), ("destinationList", "destination")):
        if key in ev:
            for i, sd in enumerate(_list(ev[key], at(key))):
                p = at(f"{key}[{i}]")
                sd = _obj(sd, p)
                _check_keys(sd, p, frozenset(("type", field)), frozenset())
                _check_term_or_uri(
                    sd.get("type"),
                    p + ".type",
                    CBV_SOURCE_DEST_TYPES,
                    "source/destination type",
                    pre,
                )
                check_uri(sd.get(field), f"{p}.{field}", pre)
    if "sensorElementList" in ev:
        _check_sensors(ev["sensorElementList"], at("sensorElementList"), pre)
    if "ilmd" in ev:
        if ev.get("action") != "ADD" and etype == "ObjectEvent":
            raise EpcisError(at("ilmd"), "only an ADD ObjectEvent may carry ilmd")
        _check_keys(_obj(ev["ilmd"], at("ilmd")), at("ilmd"), frozenset(), pre)
    if etype == "ObjectEvent" and ev.get("action") != "DELETE":
        has_what = bool(ev.get("epcList")) or bool(ev.get("quantityList"))
        sensors_at = bool(ev.get("sensorElementList")) and "readPoint" in ev
        if not (has_what or sensors_at or "epcList" in ev):
            raise EpcisError(
                path or "event", "an ObjectEvent needs an epcList, a quantityList or sensor data"
            )


def validate_document(doc: Mapping[str, Any]) -> None:
    """Refuse a capture document we must not export (see :func:`validate_event`); also
    requires the GS1 EPCIS 2.0 context, ``schemaVersion`` and unique ``eventID``s."""
    doc = _obj(doc, "document")
    if doc.get("type") != "EPCISDocument":
        raise EpcisError("type", f"{doc.get('type')!r} is not 'EPCISDocument'")
    context = doc.get("@context")
    items = context if isinstance(context, list) else [context]
    if EPCIS_CONTEXT_URL not in items:
        raise EpcisError("@context", f"must include {EPCIS_CONTEXT_URL}")
    prefixes = _context_prefixes(context)
    known = _words(
        "@context id type schemaVersion creationDate instanceIdentifier sender receiver "
        "epcisHeader epcisBody"
    )
    _check_keys(doc, "", known, prefixes)
    if doc.get("schemaVersion") != SCHEMA_VERSION:
        raise EpcisError("schemaVersion", f"{doc.get('schemaVersion')!r} is not '2.0'")
    check_time(doc.get("creationDate"), "creationDate")
    if "id" in doc:
        check_uri(doc["id"], "id", prefixes)
    body = _obj(doc.get("epcisBody"), "epcisBody")
    events = _list(body.get("eventList"), "epcisBody.eventList")
    seen: dict[str, int] = {}
    for i, ev in enumerate(events):
        p = f"epcisBody.eventList[{i}]"
        validate_event(_obj(ev, p), prefixes=prefixes, path=p)
        eid = ev["eventID"]
        if eid in seen:
            raise EpcisError(p + ".eventID", f"{eid} repeats eventList[{seen[eid]}]")
        seen[eid] = i
