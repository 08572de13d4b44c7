"""Warehouse in/out record bodies (``goods.*``) for the simulators and the tests.

Three kinds of site, chosen from the site's name: a dangerous-chemicals store (GS1 codes
on drums and cartons, highly toxic and precursor chemicals that need a licence to leave),
an agricultural-inputs dealer (pesticide 32-digit unit codes, seed label QRs, fertiliser
and feed by GTIN) and a pharmacy or drug wholesaler (20-digit drug traceability codes).
Every item is what :func:`drivers.codecs.itemcodes.parse_item` makes of a code the
simulator prints, so item ids are exactly what a terminal would send.
"""

from __future__ import annotations

import random
import zlib

from drivers.codecs.itemcodes import drug_code, parse_item, pesticide_code, seed_qr
from wire.checkdigit import with_check_digit

STORES = ("chemicals", "agri", "pharmacy")

# class, product name, product code, unit, quantity per unit package
_PRODUCTS: dict[str, tuple[tuple[str, str, str, str, int], ...]] = {
    "chemicals": (
        ("chemical_toxic", "氰化钠", "UN1689", "g", 50_000),
        ("chemical_precursor", "硝酸铵", "UN1942", "g", 25_000),
        ("chemical_precursor", "高锰酸钾", "UN1490", "g", 500),
        ("chemical", "乙醇", "UN1170", "ml", 2_500),
    ),
    "agri": (
        ("pesticide", "吡虫啉可湿性粉剂", "PD20080385", "g", 100),
        ("seed", "郑单958", "GS2006002", "g", 2_000),
        ("fertiliser", "复合肥15-15-15", "FERT-40", "g", 40_000),
        ("feed", "猪配合饲料", "FEED-20", "g", 20_000),
    ),
    "pharmacy": (
        ("drug", "阿莫西林胶囊", "H44021351", "piece", 1),
        ("drug", "布洛芬缓释胶囊", "H10900089", "piece", 1),
    ),
}
_USES = ("电镀", "实验室分析", "采矿爆破", "水处理", "金属热处理")
_BUYERS = (
    ("杭州新材化工有限公司", "杭州市余杭区良渚街道1号", "王强", "330106198001011234"),
    ("宁波港华电镀厂", "宁波市北仑区新碶街道8号", "李敏", "330206197512124321"),
    ("嘉兴市水务集团", "嘉兴市南湖区中环南路2号", "陈伟", "33040219830303567X"),
)


def store_of(site: str) -> str:
    """Which kind of store ``site`` is (stable per name)."""
    return STORES[zlib.crc32(("store:" + site).encode()) % len(STORES)]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def item_code(cls: str, rng: random.Random, case: bool = False) -> str:
    """A printed code (scan text with its AIM identifier where a scanner sends one)."""
    if cls == "pesticide" and not case:
        return "]Q1" + pesticide_code(
            {
                "category": "1",
                "registration_tail": "080385",
                "production_type": "1",
                "spec": "010",
                "random": _digits(rng, 21),
            }
        )
    if cls == "seed" and not case:
        return seed_qr("郑单958", "河南秋乐种业", "4101" + _digits(rng, 12), "https://zz.example/s")
    if cls == "drug":
        return drug_code("8" + _digits(rng, 6), _digits(rng, 9), _digits(rng, 4))
    if case:
        return "]C100" + with_check_digit("1693" + _digits(rng, 13))
    gtin = with_check_digit("0693" + _digits(rng, 9))
    return f"]C101{gtin}21{_digits(rng, 8)}"


def item(cls: str, rng: random.Random, case: bool = False) -> dict[str, object]:
    """``{"scheme", "id", "level"}`` of a fresh item of ``cls``, as the terminal records it."""
    level = "case" if case else ("unit" if cls in ("pesticide", "seed", "drug") else "")
    got = parse_item(item_code(cls, rng, case), level=level)
    return {"scheme": got["scheme"], "id": got["id"], "level": got["level"]}


def _product(site: str, rng: random.Random) -> tuple[str, str, str, str, int]:
    return rng.choice(_PRODUCTS[store_of(site)])


def _items(cls: str, rng: random.Random) -> list[dict[str, object]]:
    if rng.random() < 0.3:  # an outer package with the inner ones it holds
        outer = item(cls, rng, case=True)
        outer["inner"] = [str(item(cls, rng)["id"]) for _ in range(rng.randint(1, 4))]
        return [outer]
    return [item(cls, rng) for _ in range(rng.randint(1, 4))]


def _units(items: list[dict[str, object]]) -> int:
    """How many unit packages ``items`` are (an outer package counts its inner ones)."""
    n = 0
    for i in items:
        inner = i.get("inner")
        n += len(inner) if isinstance(inner, list) else 1
    return n


def _operator(site: str, rng: random.Random) -> str:
    return f"OP-{rng.randint(1, 4):02d}"


def _site_code(site: str) -> str:
    return site if site[:1].isalnum() else "S" + site


def _party(rng: random.Random, full: bool) -> dict[str, object]:
    """The counter-party fields (personal data); ``full``: all the chemicals rule asks."""
    name, address, handler, hid = rng.choice(_BUYERS)
    p: dict[str, object] = {"party": name}
    if full or rng.random() < 0.5:
        p["party_address"] = address
    if full or rng.random() < 0.5:
        p["handler"] = handler
        p["handler_id"] = hid
    return p


def _lot(rng: random.Random) -> str:
    return "L" + _digits(rng, 8)


def goods_in(rng: random.Random, dev: str, seq: int, site: str, now_ms: int) -> dict[str, object]:
    cls, name, code, unit, per = _product(site, rng)
    items = _items(cls, rng)
    n = _units(items)
    body: dict[str, object] = {
        "site": _site_code(site),
        "operator": _operator(site, rng),
        "product_class": cls,
        "product": {"name": name, "code": code} if rng.random() < 0.8 else {"name": name},
        "items": items,
        "quantity": n * per,
        "unit": unit,
    }
    if rng.random() < 0.8:
        body["lot"] = _lot(rng)
    if rng.random() < 0.7:
        p = _party(rng, False)
        body.update({k: v for k, v in p.items() if k in ("party", "party_address")})
    if rng.random() < 0.5:
        body["licence"] = "BL-" + _digits(rng, 8)
    if rng.random() < 0.6:
        body["doc"] = "PO" + _digits(rng, 10)
    return body


def goods_out(rng: random.Random, dev: str, seq: int, site: str, now_ms: int) -> dict[str, object]:
    cls, name, code, unit, per = _product(site, rng)
    items = _items(cls, rng)
    n = _units(items)
    controlled = cls in ("chemical_toxic", "chemical_precursor")
    body: dict[str, object] = {
        "site": _site_code(site),
        "operator": _operator(site, rng),
        "product_class": cls,
        "product": {"name": name, "code": code},
        "items": items,
        "quantity": n * per,
        "unit": unit,
        **_party(rng, controlled),
    }
    if rng.random() < 0.8:
        body["lot"] = _lot(rng)
    if controlled or rng.random() < 0.3:
        body["licence"] = "JD-" + _digits(rng, 8)
    if controlled or rng.random() < 0.3:
        body["use"] = rng.choice(_USES)
    if rng.random() < 0.7:
        body["doc"] = "SO" + _digits(rng, 10)
    if rng.random() < 0.9:
        body["gate_seq"] = seq
    return body


def goods_count(
    rng: random.Random, dev: str, seq: int, site: str, now_ms: int
) -> dict[str, object]:
    cls = _product(site, rng)[0]
    part = 1 + seq % 5
    body: dict[str, object] = {
        "site": _site_code(site),
        "operator": _operator(site, rng),
        "count_id": f"C{now_ms // 86_400_000}",
        "part": part,
        "last": part == 5,
        "items": [] if part == 5 else [item(cls, rng) for _ in range(rng.randint(1, 8))],
    }
    if rng.random() < 0.5:
        body["product_class"] = cls
    return body


def goods_pack(rng: random.Random, dev: str, seq: int, site: str, now_ms: int) -> dict[str, object]:
    cls = _product(site, rng)[0]
    return {
        "site": _site_code(site),
        "operator": _operator(site, rng),
        "action": "pack" if rng.random() < 0.6 else "unpack",
        "parent": item(cls, rng, case=True),
        "children": [str(item(cls, rng)["id"]) for _ in range(rng.randint(1, 6))],
    }


def goods_dispatch(
    rng: random.Random, dev: str, seq: int, site: str, now_ms: int
) -> dict[str, object]:
    cls, _, _, unit, per = _product(site, rng)
    ids = [str(item(cls, rng)["id"]) for _ in range(rng.randint(1, 3))]
    body: dict[str, object] = {
        "site": _site_code(site),
        "terminal": f"WHS-{_site_code(site)}-{rng.randint(1, 3):04d}",
        "operator": _operator(site, rng),
        "product_class": cls,
        "items": ids,
        "quantity": len(ids) * per,
        "unit": unit,
    }
    if rng.random() < 0.8:
        body["lot"] = _lot(rng)
    controlled = cls in ("chemical_toxic", "chemical_precursor")
    if controlled or rng.random() < 0.2:
        body["licence"] = "JD-" + _digits(rng, 8)
    if rng.random() < 0.7:
        body["party"] = rng.choice(_BUYERS)[0]
    reasons: list[str] = []
    if rng.random() < 0.15:
        pool = ["not_in_stock", "already_dispatched", "recalled_lot"]
        if controlled:
            pool += ["no_licence", "licence_expired", "over_licence_quantity"]
        reasons = sorted(set(rng.choices(pool, k=rng.choice((1, 1, 2)))))
        if {"not_in_stock", "already_dispatched"} & set(reasons):
            body["detail"] = ids[:1]
    body["decision"] = "deny" if reasons else "allow"
    body["reasons"] = reasons
    body["reg_ver"] = now_ms // 3_600_000
    if rng.random() < 0.5:
        body["recall_ver"] = now_ms // 86_400_000
    if "licence" in body and "no_licence" not in reasons:
        # the licence on file: what it let leave here and at its other sites (no draw from
        # rng, so the bodies generated before this field existed stay the same)
        q = len(ids) * per
        body["used_here"] = q * (len(ids) % 3)
        body["used_elsewhere"] = q * (now_ms // 1000 % 2)
        body["use_ver"] = now_ms
    return body


MAKERS = {
    "goods.in": goods_in,
    "goods.out": goods_out,
    "goods.count": goods_count,
    "goods.pack": goods_pack,
    "goods.dispatch": goods_dispatch,
}
