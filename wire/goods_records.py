"""Warehouse in/out records (出入库) as every warehouse terminal makes them.

One file for the MicroPython handheld (``firmware/micropython/apps/warehouse``, copied
onto the board by its manifest) and the Linux warehouse terminal
(``edge_agent/terminal/warehouse.py``), so both make the same ``goods.in``, ``goods.out``,
``goods.count`` and ``goods.pack`` bodies (``config/schemas/goods.*.json``) and the same
dispatch request from the same reads. MicroPython subset: annotations never evaluated,
no ``from __future__``.

A *read* is an item (``drivers.codecs.itemcodes.parse_item`` / ``parse_scan``) cut to
``{"scheme", "id", "level"}`` (:func:`item_of`); :func:`take` decides whether it joins the
record being made (a tag seen again, or a code scanned twice, counts once per record).
A record holds at most :data:`MAX_READS` reads; the quantity is the product's ``amount``
per read.
"""

from wire.goods import DISPATCH_REASONS

_TYPING = False
if _TYPING:
    from typing import Any

# what the dangerous-chemicals rule (art. 41) asks of a dispatch (docs/warehouse.md)
ART41 = ("licence", "use", "party_address", "handler", "handler_id")
MAX_READS = 12

NONE = 0
RECEIVE = 1
DISPATCH = 2
COUNT = 3
PACK = 4
UNPACK = 5
MODES = ("", "receive", "dispatch", "stocktake", "pack", "unpack")
KINDS = ("", "goods.in", "goods.out", "goods.count", "goods.pack", "goods.pack")

# what :func:`take` did with a read
ADDED = 0
PARENT = 1
SAME = 2
FULL = 3


def item_of(parsed: "dict[str, Any]") -> "dict[str, Any]":
    return {"scheme": parsed["scheme"], "id": parsed["id"], "level": parsed["level"]}


def take(
    mode: int,
    reads: "list[dict[str, Any]]",
    it: "dict[str, Any]",
    parent: "dict[str, Any] | None",
    counted: "list[str]",
) -> int:
    """Whether ``it`` joins ``reads`` (appended when :data:`ADDED`): in pack/unpack the
    first read is the outer package (:data:`PARENT`, the caller keeps it); an item already
    read in this record (or in this stocktake) is :data:`SAME`; a full record :data:`FULL`."""
    if mode in (PACK, UNPACK) and parent is None:
        return PARENT
    if mode == COUNT and it["id"] in counted:
        return SAME
    for r in reads:
        if r["id"] == it["id"]:
            return SAME
    if parent is not None and it["id"] == parent["id"]:
        return SAME
    if len(reads) >= MAX_READS:
        return FULL
    reads.append(it)
    if mode == COUNT:
        counted.append(it["id"])
    return ADDED


def goods_body(
    site: str, operator: str, product: "dict[str, Any]", reads: "list[dict[str, Any]]"
) -> "dict[str, Any]":
    """What ``goods.in`` and ``goods.out`` share: the product (name, code, class, lot), the
    items read and their quantity."""
    p = product
    prod = {"name": p["name"]}
    if p.get("code"):
        prod["code"] = p["code"]
    body = {
        "site": site,
        "operator": operator,
        "product_class": p["class"],
        "product": prod,
        "items": list(reads),
        "quantity": int(p.get("amount", 1)) * len(reads),
        "unit": p["unit"],
    }
    if p.get("lot"):
        body["lot"] = p["lot"]
    return body


def in_body(
    site: str,
    operator: str,
    product: "dict[str, Any]",
    reads: "list[dict[str, Any]]",
    party: "dict[str, Any] | None",
) -> "dict[str, Any]":
    """A ``goods.in`` body; the supplier (``party``) is optional."""
    body = goods_body(site, operator, product, reads)
    if party is not None:
        for k in ("party", "party_address", "licence"):
            if party.get(k):
                body[k] = party[k]
    return body


def out_body(
    site: str,
    operator: str,
    product: "dict[str, Any]",
    reads: "list[dict[str, Any]]",
    party: "dict[str, Any]",
    licensed: "list[str]",
) -> "tuple[dict[str, Any], list[str]]":
    """A ``goods.out`` body (without ``gate_seq``) and the art. 41 fields the buyer lacks
    (a non-empty list: the class is in ``licensed`` and nothing may leave)."""
    body = goods_body(site, operator, product, reads)
    body["party"] = party["party"]
    for k in ART41:
        if party.get(k):
            body[k] = party[k]
    if body["product_class"] not in licensed:
        return body, []
    return body, [k for k in ART41 if k not in body]


def dispatch_fields(operator: str, body: "dict[str, Any]") -> "dict[str, Any]":
    """The dispatch gate's request (``wire.auth.dispatch_request`` adds id, nonce, seal)."""
    req = {
        "operator": operator,
        "product_class": body["product_class"],
        "items": [r["id"] for r in body["items"]],
        "quantity": body["quantity"],
        "unit": body["unit"],
        "party": body["party"],
    }
    for k in ("lot", "licence"):
        if k in body:
            req[k] = body[k]
    return req


def allowed(body: "dict[str, Any]", answer: "dict[str, Any]") -> "dict[str, Any] | None":
    """``body`` with the gate's ``gate_seq`` when ``answer`` (verified) allows, else None."""
    if answer.get("decision") != "allow":
        return None
    seq = answer.get("seq")
    if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1:
        body["gate_seq"] = seq
    return body


def refusal(answer: "dict[str, Any]") -> str:
    """What to show for a refused dispatch: every known reason, else the gate's error."""
    raw = answer.get("reasons")
    reasons = [x for x in (raw if isinstance(raw, list) else []) if x in DISPATCH_REASONS]
    if reasons:
        return "REFUSED: " + ", ".join(reasons)
    return "REFUSED: %s" % (answer.get("error") or "no reason given",)


def pack_body(
    site: str,
    operator: str,
    mode: int,
    parent: "dict[str, Any]",
    reads: "list[dict[str, Any]]",
) -> "dict[str, Any]":
    """A ``goods.pack`` body: the outer package and the inner ones' ids."""
    return {
        "site": site,
        "operator": operator,
        "action": "pack" if mode == PACK else "unpack",
        "parent": parent,
        "children": [r["id"] for r in reads],
    }


def count_id(boot: int, n: int) -> str:
    """The stocktake's id: unique on this terminal across reboots."""
    return "CNT-%d-%d" % (boot, n)


def count_body(
    site: str, operator: str, cid: str, part: int, last: bool, reads: "list[dict[str, Any]]"
) -> "dict[str, Any]":
    """One part of stocktake ``cid`` (a part every :data:`MAX_READS` reads, the last on
    closing)."""
    return {
        "site": site,
        "operator": operator,
        "count_id": cid,
        "part": part,
        "last": last,
        "items": list(reads),
    }
