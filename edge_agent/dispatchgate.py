"""The warehouse dispatch gate: may these items leave this store, now, to this buyer?

Pure: :func:`decide` takes the request, what the agent holds (the licence pushed down for
this site, what this licence already let leave here, the site's stock and dispatched items,
the recalled lots) and today's date, and returns *every* reason that applies with the item
ids concerned; no reason allows the dispatch. docs/warehouse.md has the protocol.

Request, terminal → agent on ``t/{dev}/dispatch``, sealed with the terminal's key
(:func:`wire.auth.dispatch_request` adds ``t``, ``dev`` and ``mac``; ``n``: a fresh random
nonce per request, 16..64 hex digits; ``items``: ids from
:func:`drivers.codecs.itemcodes.parse_item`, an outer package's id standing for the inner
ones it holds)::

    {"t": "dispatch", "dev": "WHS-S1-0001", "mac": "<64 hex>",
     "id": 7, "n": "9f2c41d07be85a13c4e6f0b2a7d95e31", "operator": "OP-02",
     "product_class": "chemical_toxic", "items": ["https://id.gs1.org/00/1693…"],
     "quantity": 50000, "unit": "g", "lot": "L20251101", "licence": "JD-330200-2025-0042",
     "party": "宁波港华电镀厂"}

Answer, agent → terminal on ``t/{dev}/cmd``: :func:`wire.auth.gate_answer` (the fill gate's
sealed answer: ``decision``, ``reasons``, ``reg_ver`` = the licence registry version, ``seq``
of the ``goods.dispatch`` record), sealed with the device's key and echoing the nonce.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from edge_agent.fillgate import GateRequestError, NonceError, request_nonce
from wire.goods import CONTROLLED_CLASSES, DISPATCH_REASONS, PRODUCT_CLASSES, UNITS

REASONS = DISPATCH_REASONS
CLASSES = PRODUCT_CLASSES
# Classes that may leave only against a licence on file (危险化学品安全管理条例 art. 38-41);
# the agent's [agent] licence_classes may change them (docs/warehouse.md).
LICENSED_CLASSES = CONTROLLED_CLASSES
MAX_ITEMS = 12
MAX_QUANTITY = 1_000_000_000
MAX_REQUEST_BYTES = 4096
_PRINTABLE = frozenset(chr(c) for c in range(0x21, 0x7F))


@dataclass(frozen=True)
class DispatchRequest:
    id: int
    nonce: str
    operator: str
    product_class: str
    items: tuple[str, ...]
    quantity: int
    unit: str
    lot: str | None
    licence: str | None
    party: str | None


def _token(v: object, lo: int, hi: int) -> bool:
    return isinstance(v, str) and lo <= len(v) <= hi and all(c in _PRINTABLE for c in v)


def _code(v: object) -> bool:
    return (
        isinstance(v, str)
        and 1 <= len(v) <= 32
        and v[0].isascii()
        and v[0].isalnum()
        and all(c.isascii() and (c.isalnum() or c in "_.-") for c in v)
    )


def parse_request(obj: object) -> DispatchRequest:
    """A request from its parsed JSON; :class:`GateRequestError` (:class:`NonceError` for a
    missing or malformed nonce) for anything else. Total: any JSON value in, one of the two
    out."""
    if not isinstance(obj, dict):
        raise GateRequestError("request is not a JSON object")
    rid = obj.get("id")
    if not isinstance(rid, int) or isinstance(rid, bool) or not 0 <= rid <= 2**53:
        raise GateRequestError("id must be an integer in 0..2^53")
    nonce = request_nonce(obj)
    if nonce is None:
        raise NonceError("n must be a fresh nonce of 16..64 hex digits")
    if not _code(obj.get("operator")):
        raise GateRequestError("operator is required (1..32 of 0-9 A-Z a-z _ . -)")
    cls = obj.get("product_class")
    if cls not in CLASSES:
        raise GateRequestError(f"product_class must be one of {', '.join(CLASSES)}")
    items = obj.get("items")
    if (
        not isinstance(items, list)
        or not 1 <= len(items) <= MAX_ITEMS
        or not all(_token(i, 4, 120) for i in items)
    ):
        raise GateRequestError(f"items must be 1..{MAX_ITEMS} item ids (parse_item)")
    if len(set(items)) != len(items):
        raise GateRequestError("items must not repeat an id")
    q = obj.get("quantity")
    if not isinstance(q, int) or isinstance(q, bool) or not 1 <= q <= MAX_QUANTITY:
        raise GateRequestError(f"quantity must be an integer in 1..{MAX_QUANTITY}")
    unit = obj.get("unit")
    if unit not in UNITS:
        raise GateRequestError(f"unit must be one of {', '.join(UNITS)}")
    opt: dict[str, str | None] = {}
    for key, hi in (("lot", 40), ("licence", 40)):
        v = obj.get(key)
        if v is not None and not _token(v, 1, hi):
            raise GateRequestError(f"{key} must be 1..{hi} printable ASCII characters")
        opt[key] = v
    party = obj.get("party")
    if party is not None and (not isinstance(party, str) or not 1 <= len(party) <= 64):
        raise GateRequestError("party must be a name of 1..64 characters")
    return DispatchRequest(
        rid,
        nonce,
        str(obj["operator"]),
        str(cls),
        tuple(str(i) for i in items),
        q,
        str(unit),
        opt["lot"],
        opt["licence"],
        party,
    )


@dataclass(frozen=True)
class Stock:
    """What the agent knows of the site's items: ``in_stock`` (received, not left),
    ``dispatched`` (left), ``inner`` (an outer package's inner ids) and ``lots`` (an item's
    lot as received)."""

    in_stock: Collection[str]
    dispatched: Collection[str]
    inner: Mapping[str, Collection[str]]
    lots: Mapping[str, str]


@dataclass(frozen=True)
class Decision:
    reasons: list[str]
    detail: list[str]  # item ids not in stock or already dispatched

    @property
    def allowed(self) -> bool:
        return not self.reasons


def decide(
    req: DispatchRequest,
    licence: Mapping[str, Any] | None,
    used: int,
    stock: Stock,
    recalled: Collection[str],
    today: str,
    licensed_classes: Collection[str] = LICENSED_CLASSES,
    used_elsewhere: int = 0,
) -> Decision:
    """Every reason these items may not leave. ``licence``: the entry of ``req.licence`` held
    for this site (None: not on file); ``used``: what it already let leave here, in its
    unit; ``used_elsewhere``: what it let leave at its other sites, as the centre last said
    (:mod:`collector.licence_use`). The licence's quantity bounds the sum of the three."""
    reasons: list[str] = []
    detail: list[str] = []
    if req.licence is None or licence is None:
        # a licence named but not on file is no licence, whatever the class
        if req.product_class in licensed_classes or req.licence is not None:
            reasons.append("no_licence")
    else:
        if (
            not str(licence.get("valid_from", "9999"))
            <= today
            <= str(licence.get("valid_until", ""))
        ):
            reasons.append("licence_expired")
        if req.product_class not in licence.get("classes", ()):
            reasons.append("licence_not_for_class")
        limit = licence.get("quantity")
        if (
            licence.get("unit") != req.unit
            or not isinstance(limit, int)
            or used + max(used_elsewhere, 0) + req.quantity > limit
        ):
            reasons.append("over_licence_quantity")
    leaving: list[str] = []
    for item in req.items:
        leaving.append(item)
        leaving.extend(i for i in stock.inner.get(item, ()) if i not in leaving)
    gone = [i for i in leaving if i in stock.dispatched]
    missing = [i for i in req.items if i not in stock.in_stock and i not in stock.dispatched]
    if missing:
        reasons.append("not_in_stock")
    if gone:
        reasons.append("already_dispatched")
    detail = [i for i in leaving if i in missing or i in gone][:MAX_ITEMS]
    lots = {req.lot} if req.lot else set()
    lots.update(stock.lots[i] for i in leaving if i in stock.lots)
    if lots & set(recalled):
        reasons.append("recalled_lot")
    return Decision(reasons, detail)


def dispatch_body(
    req: DispatchRequest,
    site: str,
    terminal: str,
    decision: Decision,
    reg_ver: int,
    recall_ver: int,
    use: tuple[int, int, int] | None = None,
) -> dict[str, object]:
    """The ``goods.dispatch`` body recording this decision; ``use``: ``(used here, used
    elsewhere, version of the use-elsewhere push)`` of the licence named, when on file."""
    body: dict[str, object] = {
        "site": site,
        "terminal": terminal,
        "operator": req.operator,
        "product_class": req.product_class,
        "items": list(req.items),
        "quantity": req.quantity,
        "unit": req.unit,
    }
    for key in ("lot", "licence", "party"):
        v = getattr(req, key)
        if v is not None:
            body[key] = v
    body["decision"] = "allow" if decision.allowed else "deny"
    body["reasons"] = list(decision.reasons)
    if decision.detail:
        body["detail"] = list(decision.detail)
    body["reg_ver"] = reg_ver
    body["recall_ver"] = recall_ver
    if use is not None:
        body["used_here"], body["used_elsewhere"], body["use_ver"] = use
    return body
