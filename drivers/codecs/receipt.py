"""The sale receipt: a payload (text lines and the QR content) and its ESC/POS bytes.

One layout for both settlement terminals: the MCU app (``apps/settlement``, copied onto
the board by its manifest) and the Linux stall terminal (``edge_agent/terminal``) print
the same receipt from the same ``market.settlement`` body, byte for byte. MicroPython
subset: no annotations evaluated, ``struct`` only.

The QR holds ``trace_url + trace_id``: a consumer scanning it reaches the chain behind the
sale (collector query API ``/trace/{code}``). Text is UTF-8: set the printer's code page
to UTF-8 (most Chinese thermal printers have the setting).
"""

import struct

from wire.tracecode import CST_OFFSET_MIN, local_datetime

_TYPING = False
if _TYPING:
    from typing import Any

WIDTH = 32


def money(fen: int) -> str:
    return "%d.%02d" % (fen // 100, fen % 100)


def kilos(g: int) -> str:
    return "%d.%03d" % (g // 1000, g % 1000)


def _pair(left: str, right: str) -> str:
    gap = WIDTH - len(left) - len(right)
    return left + " " * (gap if gap > 1 else 1) + right


def receipt(
    body: "dict[str, Any]", ts_ms: int, title: str, trace_url: str, offset_min: int = CST_OFFSET_MIN
) -> "dict[str, Any]":
    """``{"lines": [...], "qr": url}`` for a ``market.settlement`` body made at ``ts_ms``,
    its time printed at ``offset_min`` minutes east of UTC (the terminal's, as in its codes)."""
    lines = [
        title,
        _pair("No. " + body["terminal"], body["scale_sw"]),
        local_datetime(ts_ms, offset_min),
        "Voucher " + body["tran_id"],
        "Seller " + body["seller"],
    ]
    if "buyer" in body:
        lines.append("Buyer " + body["buyer"])
    lines.append("-" * WIDTH)
    for ln in body["lines"]:
        lines.append(ln["goods_name"] + " (" + ln["batch_id"][-6:] + ")")
        if ln["mode"] == "weighed":
            qty = "%s kg x %s" % (kilos(ln["weight_g"]), money(ln["price_fen_per_kg"]))
        else:
            qty = "%d x %s" % (ln["pieces"], money(ln["price_fen_per_piece"]))
        lines.append(_pair("  " + qty, money(ln["amount_fen"])))
    lines.append("-" * WIDTH)
    lines.append(_pair("TOTAL", money(body["total_fen"])))
    if "pay" in body:
        lines.append("Paid by " + body["pay"])
    lines.append("Trace " + body["trace_id"])
    return {"lines": lines, "qr": trace_url + body["trace_id"]}


def _qr(data: bytes) -> bytes:
    n = len(data) + 3
    return (
        b"\x1d(k\x04\x001A2\x00"  # model 2
        + b"\x1d(k\x03\x001C\x06"  # module size 6
        + b"\x1d(k\x03\x001E1"  # error correction M
        + b"\x1d(k"
        + struct.pack("<H", n)
        + b"1P0"
        + data
        + b"\x1d(k\x03\x001Q0"  # print
    )


def escpos(r: "dict[str, Any]") -> bytes:
    out = b"\x1b@"
    for line in r["lines"]:
        out += line.encode() + b"\n"
    out += b"\x1ba\x01" + _qr(r["qr"].encode()) + b"\n\x1ba\x00\n\n\x1dVB\x00"
    return out
