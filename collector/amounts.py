"""Money and weight as people read them: fen as yuan (``12.30``), grams as kilograms
(``1.250``), exact integer arithmetic, no float rounding. The shopper's page, the console
and the recall export all show amounts this way."""

from __future__ import annotations


def yuan(fen: int | None, none: str = "") -> str:
    """``fen`` as yuan with two decimals; ``none`` for a missing amount."""
    if fen is None:
        return none
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def kg(grams: int | None, none: str = "") -> str:
    """``grams`` as kilograms with three decimals; ``none`` for a missing weight."""
    if grams is None:
        return none
    sign = "-" if grams < 0 else ""
    grams = abs(grams)
    return f"{sign}{grams // 1000}.{grams % 1000:03d}"
