"""A multi-hop market day (卡单同行): a wholesale market feeding two retail markets.

:func:`chain_day` makes the records of one day, in the order they happen, for any
transport (the fleet simulator's terminals, the demo, tests):

1. the wholesale market's gate registers one batch per lot (entry against the slaughterhouse's
   quarantine certificate or the farm's origin certificate);
2. its scale sells part of each lot to a trader of each retail market (the buyer is that
   trader: their id and service card), one receipt per buyer;
3. each retail market's gate registers what its trader bought as a new batch whose ``source``
   is the wholesale receipt's trace code (scanned off its QR code) or voucher number (keyed);
4. each retail market's scale sells to shoppers from that batch (some shoppers named, most
   walk-ins).

Codes follow :mod:`simulators.records`: batch = market number + yymmdd + serial + check,
trace code = :func:`wire.tracecode.make_trace_code`, voucher = region + yymmdd + terminal +
serial + check. Deterministic given ``seed``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from wire import settlement
from wire.checkdigit import with_check_digit
from wire.tracecode import local_date, make_trace_code


@dataclass(frozen=True)
class ChainMarket:
    code: str  # market code (M + region + number)
    number: str  # 6 digits: in batch ids and trace codes
    region: str  # 6 digits
    gate: str  # the entry terminal's device id
    scale: str  # the scale's device id
    term_no: int  # the scale's terminal number within the market
    traders: tuple[tuple[str, str], ...]  # (trader id, card uid)


@dataclass(frozen=True)
class ChainRecord:
    site: str
    dev: str
    kind: str
    ts: int
    body: dict[str, Any]


@dataclass
class ChainDay:
    wholesale: ChainMarket
    retail: tuple[ChainMarket, ...]
    records: list[ChainRecord] = field(default_factory=list)
    wholesale_batches: list[str] = field(default_factory=list)
    retail_batches: list[str] = field(default_factory=list)  # entered from wholesale sales
    shopper_codes: list[str] = field(default_factory=list)  # the retail receipts' trace codes
    sites: dict[str, str] = field(default_factory=dict)  # market code → site


# goods code, name, price fen/kg at wholesale, at retail, origin, certificate prefix
_LOTS = (
    ("10010001", "白条猪", 2400, 3480, "浙江省嘉兴市 定点屠宰厂 A3307", "33"),
    ("20010003", "大白菜", 120, 260, "山东省寿光市", "HG370783"),
)


def _market(code_no: int, region: str, site: str, number: str) -> ChainMarket:
    code = f"M{region}{code_no:03d}"
    traders = tuple(
        (f"T{region}{n + 1:04d}", f"{(code_no * 7919 + n * 104729) & 0xFFFFFFFF:08X}")
        for n in range(4)
    )
    return ChainMarket(
        code=code,
        number=number,
        region=region,
        gate=f"{site}-GATE",
        scale=f"{site}-SCALE",
        term_no=1,
        traders=traders,
    )


def chain_day(
    now_ms: int,
    *,
    sites: tuple[str, str, str] = ("WHS01", "RTL01", "RTL02"),
    seed: int = 1,
    shoppers_per_batch: int = 3,
    step_ms: int = 60_000,
) -> ChainDay:
    """The day's records from ``now_ms`` on (``step_ms`` apart): wholesale at ``sites[0]``,
    retail at ``sites[1]`` and ``sites[2]``."""
    rng = random.Random(seed)
    date = local_date(now_ms)
    whs = _market(1, "330100", sites[0], "330101")
    rtl = (_market(12, "330106", sites[1], "330612"), _market(13, "330108", sites[2], "330813"))
    day = ChainDay(wholesale=whs, retail=rtl)
    day.sites = {whs.code: sites[0], rtl[0].code: sites[1], rtl[1].code: sites[2]}
    ts = now_ms
    serials: dict[str, int] = {}

    def add(site: str, dev: str, kind: str, body: dict[str, Any]) -> None:
        nonlocal ts
        ts += step_ms
        day.records.append(ChainRecord(site, dev, kind, ts, body))

    def sale(
        m: ChainMarket, seller: int, lines: list[dict[str, Any]], buyer: tuple[str, str] | None
    ) -> dict[str, Any]:
        n = serials[m.code] = serials.get(m.code, 0) + 1
        body: dict[str, Any] = {
            "market": m.code,
            "terminal": f"{m.code}-{m.term_no:03d}",
            "scale_sw": "ACS-15RT V3.0.7",
            "tran_id": with_check_digit(f"{m.region}{date}{m.term_no:02d}{n:05d}"),
            "trace_id": make_trace_code(m.number, date, m.term_no, n),
            "seller": m.traders[seller][0],
            "seller_card": m.traders[seller][1],
            "lines": lines,
            "total_fen": sum(int(x["amount_fen"]) for x in lines),
            "pay": "credit" if buyer is not None and buyer[0].startswith("T") else "wechat",
        }
        if buyer is not None:
            body["buyer"], body["buyer_card"] = buyer
        return body

    for i, (code, name, w_price, r_price, origin, cert) in enumerate(_LOTS):
        batch = with_check_digit(f"{whs.number}{date}{i + 1:07d}")
        day.wholesale_batches.append(batch)
        qty = rng.randint(300, 600) * 1000
        add(
            sites[0],
            whs.gate,
            "market.entry",
            {
                "market": whs.code,
                "trader": whs.traders[i][0],
                "card": whs.traders[i][1],
                "batch_id": batch,
                "cert_no": f"{cert}{rng.randrange(10**8):08d}",
                "origin": origin,
                "goods_code": code,
                "goods_name": name,
                "quantity_g": qty,
            },
        )
        for k, r in enumerate(rtl):
            grams = rng.randint(40, 90) * 1000
            goods = {"batch_id": batch, "goods_code": code, "goods_name": name}
            due = settlement.priced(grams, w_price)
            w_sale = sale(
                whs, i, [settlement.weighed_line(goods, grams, w_price, due)], r.traders[i]
            )
            add(sites[0], whs.scale, "market.settlement", w_sale)
            r_batch = with_check_digit(f"{r.number}{date}{i + 1:07d}")
            day.retail_batches.append(r_batch)
            source = (
                {"trace_id": w_sale["trace_id"], "via": "qr"}
                if k == 0
                else {"tran_id": w_sale["tran_id"], "via": "keyed"}
            )
            add(
                sites[1 + k],
                r.gate,
                "market.entry",
                {
                    "market": r.code,
                    "trader": r.traders[i][0],
                    "card": r.traders[i][1],
                    "batch_id": r_batch,
                    "cert_no": f"{cert}{rng.randrange(10**8):08d}",
                    "origin": f"{origin}（经{whs.code}批发）",
                    "goods_code": code,
                    "goods_name": name,
                    "quantity_g": grams,
                    "source": source,
                },
            )
            for s in range(shoppers_per_batch):
                g = rng.randint(300, 3000) // 5 * 5
                goods = {"batch_id": r_batch, "goods_code": code, "goods_name": name}
                line = settlement.weighed_line(goods, g, r_price, settlement.priced(g, r_price))
                shopper = (f"B{r.region}{s + 1:05d}", f"{0xB7C10000 + s:08X}") if s == 0 else None
                body = sale(r, i, [line], shopper)
                day.shopper_codes.append(body["trace_id"])
                add(sites[1 + k], r.scale, "market.settlement", body)
    return day
