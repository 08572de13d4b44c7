"""The markets' trader registry (实名登记): who may sell, at which stall, with which IC card.

Rows come from the market operator (``traceedge collector import-traders``); the readers
look traders up to say whether the seller of an entry or a sale is registered and whether
the card read matches the one on file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hostlib.db import Db
from hostlib.sqlite import write_tx

_HEX = frozenset("0123456789ABCDEF")


def _optional(row: Mapping[str, object], key: str, max_len: int) -> str | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise ValueError(f"{key} must be text of at most {max_len} characters")
    return value


def _required(row: Mapping[str, object], key: str, max_len: int) -> str:
    value = _optional(row, key, max_len)
    if value is None:
        raise ValueError(f"{key} is required")
    return value


def _check(row: object) -> tuple[str, str, str | None, str, str | None]:
    """``(trader, name, card_uid, market, stall)`` of a row; ``ValueError`` names the field."""
    if not isinstance(row, Mapping):
        raise ValueError("not an object")
    trader = _required(row, "trader", 32)
    name = _required(row, "name", 64)
    market = _required(row, "market", 32)
    card = _optional(row, "card_uid", 20)
    stall = _optional(row, "stall", 32)
    if card is not None and (len(card) < 8 or not set(card) <= _HEX):
        raise ValueError("card_uid must be 8-20 upper-case hex digits")
    return trader, name, card, market, stall


def import_traders(db: Db, rows: Iterable[object]) -> int:
    """Insert or replace traders; returns how many rows were imported.

    Each row is an object with ``trader`` (at most 32 characters), ``name`` (64), ``market``
    (32), all required, and optionally ``card_uid`` (IC card UID, 8-20 upper-case hex
    digits) and ``stall`` (32). A trader is known by ``(market, trader)``; importing one
    again replaces its name, card and stall. All or nothing: a bad row raises ``ValueError``
    naming its index and field, and nothing is imported.
    """
    clean = []
    for i, row in enumerate(rows):
        try:
            clean.append(_check(row))
        except ValueError as exc:
            raise ValueError(f"trader row {i}: {exc}") from exc
    with write_tx(db):
        db.executemany(
            "INSERT INTO traders(trader, name, card_uid, market, stall) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(market, trader) DO UPDATE SET name = excluded.name, "
            "card_uid = excluded.card_uid, stall = excluded.stall",
            clean,
        )
    return len(clean)
