"""A sale in progress on the stall terminal: pure state, no devices, no clock of its own.

The same sale as the MCU settlement app (``apps/settlement/settlement.py``): the seller's
trader card opens it; each line takes goods (weighed: a stable scale reading; counted:
a number of pieces); a buyer card and a payment may be added; ``settle`` gives the lines
to :func:`wire.settlement.body`. Goods of a stopped batch cannot be taken, and a sale
holding a batch stopped while it was open cannot be settled. Every refusal is a
:class:`SaleError` whose message the operator reads.
"""

from __future__ import annotations

from typing import Any

from drivers.codecs.quantities import fen, grams
from drivers.transports.scales import ScaleReading
from edge_agent.terminal.settings import Goods, SaleSettings
from wire import settlement


class SaleError(Exception):
    """The operator's action cannot be taken; the message says why."""


class Sale:
    def __init__(self, cfg: SaleSettings) -> None:
        self.cfg = cfg
        self.clear()

    def clear(self) -> None:
        self.open = False
        self.seller = ""
        self.seller_card = ""
        self.buyer = ""
        self.buyer_card = ""
        self.pay = ""
        self.lines: list[dict[str, Any]] = []
        self.item: Goods | None = None
        self.last_action = 0.0

    # -- cards -------------------------------------------------------------------------
    def card(self, uid: str, now: float) -> str:
        if not self.open:
            seller = self.cfg.traders.get(uid)
            if seller is None:
                raise SaleError(f"card {uid} is not a trader card")
            self.clear()
            self.open, self.seller, self.seller_card = True, seller, uid
            self.last_action = now
            return f"seller {seller}: sale open"
        buyer = self.cfg.buyers.get(uid)
        if buyer is None or uid == self.seller_card:
            raise SaleError(f"card {uid} is not a buyer card")
        self.buyer, self.buyer_card = buyer, uid
        self.last_action = now
        return f"buyer {buyer}"

    def expired(self, now: float) -> bool:
        return self.open and now - self.last_action > self.cfg.session_s

    # -- lines -------------------------------------------------------------------------
    def _need_open(self, now: float) -> None:
        if not self.open:
            raise SaleError("no sale open: tap the trader card first")
        self.last_action = now

    def select(self, n: int, stopped: list[str], now: float) -> Goods:
        """Goods ``n`` for this seller, not stopped; the caller weighs it or waits for
        pieces (``goods.mode``)."""
        self._need_open(now)
        g = self.cfg.goods.get(n)
        if g is None or g.seller != self.seller:
            raise SaleError(f"no goods {n} for seller {self.seller}")
        if g.batch_id in stopped:
            raise SaleError(f"batch {g.batch_id} is STOPPED: not for sale")
        if len(self.lines) >= settlement.MAX_LINES:
            raise SaleError(f"{settlement.MAX_LINES} lines at most")
        self.item = g
        return g

    def weighed(self, g: Goods, r: ScaleReading, now: float) -> dict[str, Any]:
        """Add a weighed line from a stable reading: the scale's own unit price and total
        when it computes them (CAS ECR), else the goods' configured price per kg."""
        self._need_open(now)
        if not (r.stable and r.weight is not None and r.weight.value > 0):
            raise SaleError(f"scale reading not usable ({r}): line not added")
        try:
            weight_g = grams(r.weight)
            if r.unit_price is not None and r.total is not None:
                line = settlement.weighed_line(
                    g.as_dict(), weight_g, fen(r.unit_price), fen(r.total)
                )
            elif g.price_fen_per_kg is not None:
                amount = settlement.priced(weight_g, g.price_fen_per_kg)
                line = settlement.weighed_line(g.as_dict(), weight_g, g.price_fen_per_kg, amount)
            else:
                raise SaleError(f"goods {g.key} has no price_fen_per_kg and the scale gives none")
        except ValueError as exc:
            raise SaleError(f"scale figures not exact: {exc}") from None
        return self._add(line)

    def pieces(self, n: int, now: float) -> dict[str, Any]:
        self._need_open(now)
        g = self.item
        if g is None or g.mode != "counted":
            raise SaleError("take counted goods first (goods N), then pieces")
        return self._add(settlement.counted_line(g.as_dict(), n))

    def _add(self, line: dict[str, Any]) -> dict[str, Any]:
        self.lines.append(line)
        self.item = None
        return line

    def drop(self, now: float) -> dict[str, Any]:
        self._need_open(now)
        if not self.lines:
            raise SaleError("no line to drop")
        return self.lines.pop()

    def set_pay(self, method: str, now: float) -> None:
        self._need_open(now)
        if method not in settlement.PAY:
            raise SaleError(f"unknown payment {method!r}")
        self.pay = method

    # -- settling ----------------------------------------------------------------------
    def check_settle(self, stopped: list[str]) -> None:
        if not self.open:
            raise SaleError("no sale open: tap the trader card first")
        if not self.lines:
            raise SaleError("nothing to settle")
        for ln in self.lines:
            if ln["batch_id"] in stopped:
                raise SaleError(f"batch {ln['batch_id']} was STOPPED: drop that line")

    def body(self, tran_id: str, trace_id: str) -> dict[str, Any]:
        c = self.cfg
        return settlement.body(
            c.market,
            c.terminal,
            c.scale_sw,
            tran_id,
            trace_id,
            self.seller,
            self.seller_card,
            self.lines,
            self.buyer,
            self.buyer_card,
            self.pay,
        )

    def describe(self) -> str:
        if not self.open:
            return "idle: tap the trader card"
        total = sum(int(ln["amount_fen"]) for ln in self.lines)
        parts = [f"seller {self.seller}", f"{len(self.lines)} line(s)", f"total {total} fen"]
        if self.buyer:
            parts.append(f"buyer {self.buyer}")
        if self.pay:
            parts.append(f"pay {self.pay}")
        if self.item is not None:
            parts.append(f"waiting for pieces of goods {self.item.key}")
        return ", ".join(parts)
