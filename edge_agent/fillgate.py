"""The cylinder fill gate (GB/T 38059 interlock): may this cylinder be filled here, now?

Pure: :func:`decide` takes the registry entry the agent holds (pushed down by the central
side, so the gate answers while cut off from it), the reader's request, this station and
today's date, and returns *every* reason that applies; an empty list allows filling.

Request, terminal → agent on ``t/{dev}/gate`` (``n``: a fresh random nonce per request,
16..64 hex digits)::

    {"id": 7, "n": "9f2c41d07be85a13c4e6f0b2a7d95e31", "stage": "pre",
     "cyl": "3101052301A0042", "tag": "E2801160...", "operator": "OP-03", "medium": "lpg",
     "pre": {"appearance_ok": true, "residual_kpa": 120, "tare_g": 15200}}

    {"id": 8, "n": "...", "stage": "post", "cyl": "...", "operator": "OP-03",
     "post": {"reweigh_g": 29800, "leak_ok": true, "checker": "OP-05"}}

Answer, agent → terminal on ``t/{dev}/cmd``: :func:`wire.auth.gate_answer`, sealed with the
device's key and echoing the nonce, so only the agent can answer and only this request::

    {"t": "gate", "dev": "CYL-S1-0001", "id": 7, "n": "9f2c...", "decision": "allow",
     "reasons": [], "reg_ver": 12, "seq": 311, "mac": "<64 hex>"}

Registry entry (dates ``YYYY-MM-DD``, masses in grams)::

    {"cyl", "tag"?, "owner", "entrusted": [...], "medium", "manufactured",
     "design_life_years", "next_inspection", "status": "in_service"|"scrapped",
     "tare_g", "max_fill_g"}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REASONS = (
    "unregistered",
    "registration_mismatch",
    "inspection_overdue",
    "scrapped",
    "design_life_exceeded",
    "not_this_station",
    "wrong_medium",
    "no_residual_pressure",
    "damaged",
    "overfilled",
    "leaking",
)
MEDIA = ("lpg", "cng", "o2", "n2", "ar", "co2", "c2h2", "other")


NONCE_DIGITS = "0123456789abcdefABCDEF"
# A request is a few hundred bytes; the gate parses no more than this (wire.limits.loads).
MAX_REQUEST_BYTES = 4096


class GateRequestError(ValueError):
    """The request cannot be understood; it is answered with ``deny`` and the error."""


class NonceError(GateRequestError):
    """The request carries no valid nonce: never allowed (an answer without one could be
    replayed), answered with ``deny`` and counted as refused."""


@dataclass(frozen=True)
class GateRequest:
    id: int
    nonce: str
    stage: str
    cyl: str
    operator: str
    tag: str | None
    medium: str | None
    pre: dict[str, Any] | None
    post: dict[str, Any] | None


def _int(d: dict[str, Any], key: str, lo: int, hi: int) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise GateRequestError(f"{key} must be an integer in {lo}..{hi}")
    return v


def request_nonce(obj: object) -> str | None:
    """The request's nonce ``n`` when it is 16..64 hex digits, else ``None``."""
    n = obj.get("n") if isinstance(obj, dict) else None
    if isinstance(n, str) and 16 <= len(n) <= 64 and all(c in NONCE_DIGITS for c in n):
        return n
    return None


def request_id(obj: object) -> int | None:
    """The request's ``id`` when it is one (what an answer may echo), else ``None``."""
    rid = obj.get("id") if isinstance(obj, dict) else None
    if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid <= 2**53:
        return rid
    return None


def parse_request(obj: object) -> GateRequest:
    """A request from its parsed JSON; :class:`GateRequestError` (:class:`NonceError` for a
    missing or malformed nonce) for anything else. Total: any JSON value in, one of the two
    out."""
    if not isinstance(obj, dict):
        raise GateRequestError("request is not a JSON object")
    rid = _int(obj, "id", 0, 2**53)
    nonce = request_nonce(obj)
    if nonce is None:
        raise NonceError("n must be a fresh nonce of 16..64 hex digits")
    stage = obj.get("stage", "pre")
    if stage not in ("pre", "post"):
        raise GateRequestError("stage must be pre or post")
    cyl, operator = obj.get("cyl"), obj.get("operator")
    if not isinstance(cyl, str) or not 4 <= len(cyl) <= 32:
        raise GateRequestError("cyl must be the cylinder code")
    if not isinstance(operator, str) or not 1 <= len(operator) <= 32:
        raise GateRequestError("operator is required")
    tag = obj.get("tag")
    if tag is not None and (not isinstance(tag, str) or len(tag) > 64):
        raise GateRequestError("tag must be hex")
    medium = obj.get("medium")
    if medium is not None and medium not in MEDIA:
        raise GateRequestError(f"medium must be one of {', '.join(MEDIA)}")
    pre = obj.get("pre")
    if pre is not None:
        if not isinstance(pre, dict) or not isinstance(pre.get("appearance_ok"), bool):
            raise GateRequestError("pre needs appearance_ok, residual_kpa, tare_g")
        _int(pre, "residual_kpa", 0, 100000)
        _int(pre, "tare_g", 0, 2000000)
        pre = {k: pre[k] for k in ("appearance_ok", "residual_kpa", "tare_g")}
    post = obj.get("post")
    if post is not None:
        if not isinstance(post, dict) or not isinstance(post.get("leak_ok"), bool):
            raise GateRequestError("post needs reweigh_g, leak_ok, checker")
        _int(post, "reweigh_g", 0, 2000000)
        if not isinstance(post.get("checker"), str) or not post["checker"]:
            raise GateRequestError("post.checker is required")
        post = {k: post[k] for k in ("reweigh_g", "leak_ok", "checker")}
    if stage == "post" and post is None:
        raise GateRequestError("a post-fill request needs post")
    return GateRequest(
        rid, nonce, stage, cyl, operator, tag.upper() if tag else None, medium, pre, post
    )


def _add_years(date: str, years: int) -> str:
    y, rest = int(date[:4]), date[4:]
    if rest == "-02-29":
        rest = "-02-28"
    return f"{y + years:04d}{rest}"


def decide(entry: dict[str, Any] | None, req: GateRequest, station: str, today: str) -> list[str]:
    """Every reason that forbids filling (``pre``) or letting the cylinder leave (``post``)."""
    if entry is None:
        return ["unregistered"]
    reasons: list[str] = []
    if req.tag and entry.get("tag") and req.tag != str(entry["tag"]).upper():
        reasons.append("registration_mismatch")
    if entry.get("next_inspection", "0000-00-00") < today:
        reasons.append("inspection_overdue")
    if entry.get("status") == "scrapped":
        reasons.append("scrapped")
    if _add_years(entry["manufactured"], int(entry["design_life_years"])) <= today:
        reasons.append("design_life_exceeded")
    if station != entry.get("owner") and station not in entry.get("entrusted", []):
        reasons.append("not_this_station")
    if req.medium and req.medium != entry.get("medium"):
        reasons.append("wrong_medium")
    if req.pre is not None:
        if req.pre["residual_kpa"] <= 0:
            reasons.append("no_residual_pressure")
        if not req.pre["appearance_ok"]:
            reasons.append("damaged")
    if req.stage == "post" and req.post is not None:
        net = req.post["reweigh_g"] - int(entry.get("tare_g", 0))
        if net > int(entry.get("max_fill_g", 0)):
            reasons.append("overfilled")
        if not req.post["leak_ok"]:
            reasons.append("leaking")
    return reasons


def check_body(
    req: GateRequest, station: str, reasons: list[str], reg_ver: int, entry: dict[str, Any] | None
) -> dict[str, object]:
    """The ``cylinder.check`` body recording this decision."""
    body: dict[str, object] = {
        "cyl": req.cyl,
        "station": station,
        "operator": req.operator,
        "stage": req.stage,
        "decision": "deny" if reasons else "allow",
        "reasons": reasons,
        "reg_ver": reg_ver,
    }
    if req.tag:
        body["tag"] = req.tag
    medium = req.medium or (entry or {}).get("medium")
    if medium in MEDIA:
        body["medium"] = medium
    if req.pre is not None:
        body["pre"] = req.pre
    if req.post is not None:
        body["post"] = req.post
    return body
