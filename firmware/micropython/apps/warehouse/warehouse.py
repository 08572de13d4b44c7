"""Warehouse in/out handheld (issue 14): receive, dispatch, stocktake, pack, by tag or scan.

A handheld at a dangerous-chemicals store, an agricultural-inputs dealer or a pharmacy.
Items are read by UHF tag (``hw.uart.reader``; ``reader``: ``chafon`` or ``r2000``, the
EPC is the item) or by a
barcode/QR scanner on ``hw.uart.scanner`` (lines, ``drivers.codecs.barcode``; the lines of a
multi-line QR, a seed label's four, joined again unless ``scan_join_ms`` (150) pass between
them without a byte: ``barcode.ScanJoiner``); every read
becomes an item with ``drivers.codecs.itemcodes.parse_item`` (docs/itemcodes.md), cut to
``{"scheme", "id", "level"}``. 4 x 4 keypad (``hw.pins.r1..r4``, ``c1..c4``):

* ``<m> B`` mode: 1 receive (``goods.in``), 2 dispatch (``goods.out``), 3 stocktake
  (``goods.count``), 4 pack, 5 unpack (``goods.pack``);
* ``<n> A`` product ``n`` of ``products`` (name, code, class, amount per item, unit, lot);
* ``<n> C`` party ``n`` of ``parties`` (the regular buyers / suppliers on file, with their
  licence, use, address, handler and ID number); ``C`` alone drops the last read;
* ``#`` records (a dispatch asks the agent first), ``*`` cancels.

A record holds at most 12 reads; the quantity is the product's ``amount`` per item read.
The bodies, the read rules and the dispatch request are ``wire/goods_records.py``, shared
with the Linux warehouse terminal (``traceedge terminal run --app warehouse``).
Dispatch: the request (``wire.auth.dispatch_request``, sealed with the device key) goes on
``t/{dev}/dispatch`` (wired: a ``DISPATCH`` frame of the serial link, ``te.slink``); only a
sealed answer for this request's nonce counts (``te.gate``). ``allow`` -> ``goods.out`` with
``gate_seq``; ``deny`` -> the reasons are shown and nothing is recorded (the agent keeps its
``goods.dispatch``); no answer within ``gate_timeout_ms`` -> nothing leaves.
A stocktake writes a part every 12 reads and the last part on ``#``.
"""

from drivers.codecs import barcode
from drivers.codecs.errors import CodecError
from drivers.codecs.itemcodes import parse_item, parse_scan
from te.gate import ANSWERED, TIMED_OUT
from te.keypad import Keypad
from te.recorder import Refused
from te.runtime import App as _App
from te.r2000 import R2000Reader
from te.uhf import UhfReader
from wire import goods_records as gr
from wire.goods import PRODUCT_CLASSES as CLASSES
from wire.goods import UNITS
from wire.goods_records import COUNT, DISPATCH, MAX_READS, MODES, NONE, PACK, RECEIVE, UNPACK

_TYPING = False
if _TYPING:
    from typing import Any

    from te.config import Section
    from te.gate import GateRequest
    from te.runtime import Runtime

item_of = gr.item_of

class App(_App):
    name = "warehouse"

    def __init__(self, rt: "Runtime", cfg: "Section") -> None:
        super().__init__(rt, cfg)
        b = rt.board
        c = rt.clock
        self.site = cfg.text("site", hi=32)
        self.operator = cfg.text("operator", hi=32)
        self.gate_ms = cfg.num("gate_timeout_ms", 5000, 100, 60000)
        self.licensed = cfg.seq("licence_classes", ["chemical_toxic", "chemical_precursor"])
        self.products: "dict[int, dict[str, Any]]" = {}
        for p in cfg.seq("products"):
            if p.get("class") not in CLASSES or p.get("unit") not in UNITS:
                raise ValueError("product %s: bad class or unit" % p.get("key"))
            self.products[int(p["key"])] = p
        self.parties: "dict[int, dict[str, Any]]" = {}
        for p in cfg.seq("parties", []):
            self.parties[int(p["key"])] = p
        self.uhf: "UhfReader | R2000Reader"
        if cfg.choice("reader", ("chafon", "r2000"), "chafon") == "r2000":
            self.uhf = R2000Reader(b.uart("reader"), c)
        else:
            self.uhf = UhfReader(b.uart("reader"), c, code_words=0)
        self.scanner = b.uart("scanner")
        self.dec = barcode.Decoder()
        # a multi-line QR (a seed label's four lines) arrives as lines: joined back here
        self.join = barcode.ScanJoiner(c, cfg.num("scan_join_ms", 150, 0, 2000))
        rows = [b.raw_pin(b.hw["pins"]["r%d" % i], True) for i in (1, 2, 3, 4)]
        cols = [b.raw_pin(b.hw["pins"]["c%d" % i], False, True) for i in (1, 2, 3, 4)]
        self.keys = Keypad(rows, cols, c)
        self.mode = NONE
        self.num = ""
        self.last_epc = ""
        self.req: "GateRequest | None" = None
        self.counts = 0
        self.bad_reads = 0
        self._clear()

    def _clear(self) -> None:
        self.product: "dict[str, Any] | None" = None
        self.party: "dict[str, Any] | None" = None
        self.reads: "list[dict[str, Any]]" = []
        self.parent: "dict[str, Any] | None" = None
        self.count_id = ""
        self.part = 0
        self.counted: "list[str]" = []
        self.req = None

    # -- reads ---------------------------------------------------------------------------
    def _read(self, parsed: "dict[str, Any]") -> None:
        it = item_of(parsed)
        if self.mode == NONE:
            self.rt.say("choose a mode first (1B in, 2B out, 3B count, 4B pack, 5B unpack)")
            return
        if self.req is not None:
            return  # a dispatch is being decided: the list is frozen
        got = gr.take(self.mode, self.reads, it, self.parent, self.counted)
        if got == gr.PARENT:
            self.parent = it
            self.rt.say("outer package %s: read the inner ones" % it["id"])
            return
        if got == gr.FULL:
            self.rt.say("12 reads: press # to record them")
            return
        if got != gr.ADDED:
            return  # read twice: once is enough
        if self.mode == COUNT:
            if len(self.reads) == MAX_READS:
                self._count_part(False)
            return
        self.rt.say("%d: %s" % (len(self.reads), it["id"]))
        if len(self.reads) == MAX_READS:
            self.rt.say("12 reads: press # to record them")

    def _reads(self, now: int) -> None:
        self.uhf.poll(now)
        cur = self.uhf.current(now)
        if cur is None:
            self.last_epc = ""
        elif cur[0] != self.last_epc:
            self.last_epc = cur[0]
            try:
                self._read(parse_item(cur[0], "epc"))
            except CodecError as exc:
                self.bad_reads += 1
                self.rt.say("tag not understood: %s" % exc)
        data = self.scanner.read()
        if data:
            for whole in self.join.heard(now):
                self._scan(whole)
            for s in self.dec.feed(data):
                if not isinstance(s, barcode.Scan):
                    self.bad_reads += 1
                    self.rt.say("scan not understood: rescan")
                    continue
                for whole in self.join.feed(s, now):
                    self._scan(whole)
        for whole in self.join.due(now):
            self._scan(whole)

    def _scan(self, s: "barcode.Scan") -> None:
        try:
            self._read(parse_scan(s))
        except CodecError as exc:
            self.bad_reads += 1
            self.rt.say("code not understood: %s" % exc)

    # -- keys ------------------------------------------------------------------------------
    def _key(self, k: str, now: int) -> None:
        if self.req is not None:
            return  # waiting for the dispatch gate
        if "0" <= k <= "9":
            if len(self.num) < 6:
                self.num += k
            return
        n = int(self.num) if self.num else 0
        self.num = ""
        if k == "B":
            if 1 <= n <= 5:
                self._clear()
                self.mode = n
                if n == COUNT:
                    self.counts += 1
                    self.count_id = gr.count_id(self.rt.rec.boot, self.counts)
                self.rt.say("mode: %s" % MODES[n])
            else:
                self.rt.say("no mode %d" % n)
        elif k == "A":
            p = self.products.get(n)
            if p is None:
                self.rt.say("no product %d" % n)
            else:
                self.product = p
                self.rt.say("product: %s" % p["name"])
        elif k == "C":
            if not n:
                if self.reads:
                    self.reads.pop()
                    self.rt.say("last read dropped")
                return
            p = self.parties.get(n)
            if p is None:
                self.rt.say("no party %d" % n)
            else:
                self.party = p
                self.rt.say("party: %s" % p["party"])
        elif k == "*":
            self._clear()
            self.rt.say("cancelled")
            if self.mode == COUNT:
                self.mode = NONE
        elif k == "#":
            self._commit(now)

    # -- records -------------------------------------------------------------------------
    def _product(self) -> "dict[str, Any] | None":
        """The product chosen, when there are reads to record with it."""
        p = self.product
        if p is None:
            self.rt.say("choose a product (<n> A)")
            return None
        if not self.reads:
            self.rt.say("nothing read")
            return None
        return p

    def _record(self, kind: str, body: "dict[str, Any]") -> bool:
        try:
            self.rt.rec.record(kind, body)
        except Refused as exc:
            self.rt.say("cannot record (%s): NOT done" % exc)
            return False
        return True

    def _commit(self, now: int) -> None:
        m = self.mode
        if m == RECEIVE:
            p = self._product()
            if p is None:
                return
            body = gr.in_body(self.site, self.operator, p, self.reads, self.party)
            if self._record("goods.in", body):
                self.rt.say("received %d" % len(self.reads))
                self.reads = []
        elif m == DISPATCH:
            self._ask(now)
        elif m == COUNT:
            self._count_part(True)
            self.rt.say("stocktake %s closed: %d items" % (self.count_id, len(self.counted)))
            self._clear()
            self.mode = NONE
        elif m in (PACK, UNPACK):
            if self.parent is None or not self.reads:
                self.rt.say("read the outer package, then the inner ones")
                return
            body = gr.pack_body(self.site, self.operator, m, self.parent, self.reads)
            if self._record("goods.pack", body):
                self.rt.say("%s: %d inner" % (body["action"], len(self.reads)))
                self.parent = None
                self.reads = []
        else:
            self.rt.say("choose a mode first")

    def _count_part(self, last: bool) -> None:
        self.part += 1
        body = gr.count_body(self.site, self.operator, self.count_id, self.part, last,
                             self.reads)
        if self._record("goods.count", body):
            self.reads = []

    def _out_body(self) -> "dict[str, Any] | None":
        p = self._product()
        if p is None:
            return None
        party = self.party
        if party is None:
            self.rt.say("choose the buyer (<n> C)")
            return None
        body, missing = gr.out_body(self.site, self.operator, p, self.reads,
                                    party, self.licensed)
        if missing:
            self.rt.say("buyer %s lacks %s: NOT dispatched" % (party["party"],
                                                               ", ".join(missing)))
            return None
        return body

    def _ask(self, now: int) -> None:
        body = self._out_body()
        if body is None:
            return
        self.out = body
        req = gr.dispatch_fields(self.operator, body)
        self.req = self.rt.gate.ask(req, self.gate_ms, True)
        self.rt.say("asking the gateway...")

    def _wait(self) -> None:
        r = self.req
        if r is None or r.state not in (ANSWERED, TIMED_OUT):
            return
        self.req = None
        if r.state == TIMED_OUT or r.answer is None:
            self.rt.say("no answer from the gateway: NOT dispatched")
            return
        body = gr.allowed(self.out, r.answer)
        if body is None:
            self.rt.say(gr.refusal(r.answer))
            return
        if self._record("goods.out", body):
            self.rt.say("dispatched %d" % len(self.reads))
            self.reads = []

    def poll(self, now: int) -> None:
        self._reads(now)
        k = self.keys.poll(now)
        if k is not None:
            self._key(k, now)
        self._wait()
