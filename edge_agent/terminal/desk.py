"""What the operator is doing at a warehouse terminal: mode, product, party, reads.

The handheld's app (``firmware/micropython/apps/warehouse``) without its keypad: every
body comes from ``wire/goods_records.py``, so a record made here is the record the
handheld makes from the same reads. No I/O: records go through ``record(kind, body)``
(True when stored), answers are lines to show.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edge_agent.terminal.whsettings import WarehouseSettings
from wire import goods_records as gr
from wire.goods_records import COUNT, DISPATCH, MAX_READS, MODES, NONE, PACK, RECEIVE, UNPACK

Record = Callable[[str, dict[str, Any]], bool]


class Desk:
    def __init__(self, s: WarehouseSettings, boot: int) -> None:
        self.s = s
        self.boot = boot
        self.mode = NONE
        self.counts = 0
        self.clear()

    def clear(self) -> None:
        self.product: dict[str, Any] | None = None
        self.party: dict[str, Any] | None = None
        self.reads: list[dict[str, Any]] = []
        self.parent: dict[str, Any] | None = None
        self.count_id = ""
        self.part = 0
        self.counted: list[str] = []
        self.out: dict[str, Any] | None = None  # a dispatch waiting for the gate

    def describe(self) -> str:
        if self.mode == NONE:
            return "no mode chosen"
        parts = [MODES[self.mode]]
        if self.product is not None:
            parts.append(f"product {self.product['name']}")
        if self.party is not None:
            parts.append(f"party {self.party['party']}")
        if self.parent is not None:
            parts.append(f"outer {self.parent['id']}")
        if self.mode == COUNT:
            parts.append(f"{self.count_id} {len(self.counted)} counted")
        else:
            parts.append(f"{len(self.reads)} read")
        return ", ".join(parts)

    # -- choices -----------------------------------------------------------------------
    def set_mode(self, mode: int) -> list[str]:
        self.clear()
        self.mode = mode
        if mode == COUNT:
            self.counts += 1
            self.count_id = gr.count_id(self.boot, self.counts)
            return [f"mode: {MODES[mode]} {self.count_id}"]
        return [f"mode: {MODES[mode]}"]

    def choose_product(self, n: int) -> list[str]:
        p = self.s.products.get(n)
        if p is None:
            return [f"no product {n} (type products)"]
        self.product = p
        return [f"product: {p['name']}"]

    def choose_party(self, n: int) -> list[str]:
        p = self.s.parties.get(n)
        if p is None:
            return [f"no party {n} (type parties)"]
        self.party = p
        return [f"party: {p['party']}"]

    def drop(self) -> list[str]:
        if not self.reads:
            return ["nothing to drop"]
        it = self.reads.pop()
        if self.mode == COUNT and it["id"] in self.counted:
            self.counted.remove(it["id"])
        return [f"dropped {it['id']}"]

    def cancel(self) -> list[str]:
        mode = self.mode
        self.clear()
        if mode == COUNT:
            self.mode = NONE
        return ["cancelled"]

    # -- reads -------------------------------------------------------------------------
    def read(self, parsed: dict[str, Any], record: Record) -> list[str]:
        """One item read (already parsed); a tag or code read again counts once."""
        it = gr.item_of(parsed)
        if self.mode == NONE:
            return [f"{it['id']}: choose a mode first (receive, dispatch, stocktake, pack)"]
        if self.out is not None:
            return [f"{it['id']}: a dispatch is being decided, read ignored"]
        got = gr.take(self.mode, self.reads, it, self.parent, self.counted)
        if got == gr.PARENT:
            self.parent = it
            return [f"outer package {it['id']}: read the inner ones"]
        if got == gr.FULL:
            return [f"{MAX_READS} reads: type record to record them"]
        if got != gr.ADDED:
            return [f"{it['id']}: already read"]
        out = [f"{len(self.reads)}: {it['scheme']} {it['id']}"]
        if len(self.reads) == MAX_READS:
            if self.mode == COUNT:
                out += self._count_part(False, record)
            else:
                out.append(f"{MAX_READS} reads: type record to record them")
        return out

    # -- records -----------------------------------------------------------------------
    def _product(self) -> tuple[dict[str, Any] | None, list[str]]:
        if self.product is None:
            return None, ["choose a product (product N)"]
        if not self.reads:
            return None, ["nothing read"]
        return self.product, []

    def commit(self, record: Record) -> list[str]:
        """``record`` in receive, stocktake, pack and unpack (dispatch: :meth:`dispatch`)."""
        m, s = self.mode, self.s
        if m == RECEIVE:
            p, why = self._product()
            if p is None:
                return why
            body = gr.in_body(s.site, s.operator, p, self.reads, self.party)
            if not record("goods.in", body):
                return []
            n, self.reads = len(self.reads), []
            return [f"received {n}"]
        if m == COUNT:
            out = self._count_part(True, record)
            out.append(f"stocktake {self.count_id} closed: {len(self.counted)} items")
            self.clear()
            self.mode = NONE
            return out
        if m in (PACK, UNPACK):
            if self.parent is None or not self.reads:
                return ["read the outer package, then the inner ones"]
            body = gr.pack_body(s.site, s.operator, m, self.parent, self.reads)
            if not record("goods.pack", body):
                return []
            n = len(self.reads)
            self.parent, self.reads = None, []
            return [f"{body['action']}: {n} inner"]
        if m == DISPATCH:
            return ["a dispatch asks the gateway: use dispatch's record"]
        return ["choose a mode first"]

    def _count_part(self, last: bool, record: Record) -> list[str]:
        s = self.s
        self.part += 1
        body = gr.count_body(s.site, s.operator, self.count_id, self.part, last, self.reads)
        if not record("goods.count", body):
            return []
        self.reads = []
        return [f"stocktake {self.count_id} part {self.part} recorded"]

    def dispatch_request(self) -> tuple[dict[str, Any] | None, list[str]]:
        """The gate request's fields for the dispatch being made (the body is kept until
        :meth:`answered`), or None and why not."""
        if self.mode != DISPATCH:
            return None, ["not in dispatch mode"]
        p, why = self._product()
        if p is None:
            return None, why
        party = self.party
        if party is None:
            return None, ["choose the buyer (party N)"]
        s = self.s
        body, missing = gr.out_body(
            s.site, s.operator, p, self.reads, party, list(s.licence_classes)
        )
        if missing:
            return None, [f"buyer {party['party']} lacks {', '.join(missing)}: NOT dispatched"]
        self.out = body
        return gr.dispatch_fields(s.operator, body), []

    def answered(self, answer: dict[str, Any] | None, record: Record) -> list[str]:
        """The gate's verified answer (None: none in time) to the pending dispatch."""
        body, self.out = self.out, None
        if body is None:
            return []
        if answer is None:
            return ["no answer from the gateway: NOT dispatched"]
        out = gr.allowed(body, answer)
        if out is None:
            return [gr.refusal(answer) + ": NOT dispatched"]
        if not record("goods.out", out):
            return []
        n, self.reads = len(self.reads), []
        seq = out.get("gate_seq")
        return [f"dispatched {n}" + (f" (gate seq {seq})" if seq else "")]
