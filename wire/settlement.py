"""A market sale (卡单同行) as every settlement terminal makes it: lines, codes, body.

One file for the MCU settlement app (``firmware/micropython/apps/settlement``, copied onto
the board by its manifest) and the Linux stall terminal (``edge_agent/terminal``), so both
make the same ``market.settlement`` body (``config/schemas/market.settlement.json``) from
the same sale. MicroPython subset: annotations never evaluated, no ``from __future__``.

Codes (``wire/tracecode.py``, ``wire/checkdigit.py``):

* ``trace_id`` = 8 + market number + local date + terminal number + the day's serial +
  check digit (printed on the receipt and in its QR);
* ``tran_id``  = region + local date + terminal number + serial (5) + check digit.

The day's serial comes from :func:`next_serial` and is saved by the caller *before* the
record is made, so a power cut can skip a serial, never repeat one.

A weighed line carries the scale's own figures when the scale computes prices (CAS ECR
``DC2``: weight, unit price, total); a scale that only weighs (SICS, Toledo) is priced by
the terminal from the goods' configured price with :func:`priced` (half up to the fen).
"""

from wire.checkdigit import with_check_digit
from wire.tracecode import make_trace_code

_TYPING = False
if _TYPING:
    from typing import Any

PAY = ("cash", "card", "wechat", "alipay", "unionpay", "credit", "other")
MAX_LINES = 20
MAX_SERIAL = 9999  # four digits in the trace code


def priced(weight_g: int, price_fen_per_kg: int) -> int:
    """The amount in fen of ``weight_g`` grams at ``price_fen_per_kg``, half up."""
    return (weight_g * price_fen_per_kg + 500) // 1000


def weighed_line(
    goods: "dict[str, Any]", weight_g: int, price_fen_per_kg: int, amount_fen: int
) -> "dict[str, Any]":
    return {
        "batch_id": goods["batch_id"],
        "goods_code": goods["goods_code"],
        "goods_name": goods["goods_name"],
        "mode": "weighed",
        "weight_g": weight_g,
        "price_fen_per_kg": price_fen_per_kg,
        "amount_fen": amount_fen,
    }


def counted_line(goods: "dict[str, Any]", pieces: int) -> "dict[str, Any]":
    price = int(goods["price_fen_per_piece"])
    return {
        "batch_id": goods["batch_id"],
        "goods_code": goods["goods_code"],
        "goods_name": goods["goods_name"],
        "mode": "counted",
        "pieces": pieces,
        "price_fen_per_piece": price,
        "amount_fen": pieces * price,
    }


def next_serial(saved: "dict[str, Any] | None", date: str) -> int:
    """The sale serial after ``saved`` (``{"date", "serial"}`` or None) on local ``date``;
    ``ValueError`` past 9999 (the trace code has no room)."""
    d = saved or {}
    serial = int(d.get("serial", 0)) + 1 if d.get("date") == date else 1
    if serial > MAX_SERIAL:
        raise ValueError("10000 sales today: the trace code has no room")
    return serial


def codes(
    region: str, market_no: str, date: str, terminal_no: int, serial: int
) -> "tuple[str, str]":
    """``(tran_id, trace_id)`` of the sale numbered ``serial`` on ``date`` (yymmdd)."""
    tran = with_check_digit("%s%s%02d%05d" % (region, date, terminal_no, serial))
    return tran, make_trace_code(market_no, date, terminal_no, serial)


def body(
    market: str,
    terminal: str,
    scale_sw: str,
    tran_id: str,
    trace_id: str,
    seller: str,
    seller_card: str,
    lines: "list[dict[str, Any]]",
    buyer: str = "",
    buyer_card: str = "",
    pay: str = "",
) -> "dict[str, Any]":
    """The ``market.settlement`` record body; ``ValueError`` for a sale without lines, with
    more than :data:`MAX_LINES`, or an unknown payment."""
    if not lines or len(lines) > MAX_LINES:
        raise ValueError("a sale has 1..%d lines, not %d" % (MAX_LINES, len(lines)))
    if pay and pay not in PAY:
        raise ValueError("unknown payment %r" % pay)
    total = 0
    for ln in lines:
        total += ln["amount_fen"]
    out = {
        "market": market,
        "terminal": terminal,
        "scale_sw": scale_sw,
        "tran_id": tran_id,
        "trace_id": trace_id,
        "seller": seller,
        "seller_card": seller_card,
        "lines": list(lines),
        "total_fen": total,
    }
    if buyer:
        out["buyer"] = buyer
        out["buyer_card"] = buyer_card
    if pay:
        out["pay"] = pay
    return out


def stopped_batches(sl: "dict[str, object]", held_version: int) -> "list[str] | None":
    """The batch ids of an opened stop list (``wire.auth.open_stop_list``) newer than the
    held ``held_version``; None when it is not newer or not well formed (ignore, count)."""
    ver = sl.get("version")
    batches = sl.get("batches")
    if not isinstance(ver, int) or not isinstance(batches, list) or ver <= held_version:
        return None
    ids: list[str] = []
    for x in batches:
        if isinstance(x, dict) and isinstance(x.get("batch_id"), str):
            ids.append(x["batch_id"])
    return ids
