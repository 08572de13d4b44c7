"""Settlement scale terminal at a market stall (卡单同行): cards, goods, scale, receipt.

Hardware: the price-computing scale on ``hw.uart.scale`` (CAS ECR: ``DC2`` gives weight,
unit price and total as the scale computed them; the record reproduces those figures),
card reader ``hw.spi.rfid`` (MFRC522), 4 x 4 keypad (``hw.pins.r1..r4``, ``c1..c4``),
receipt printer on ``hw.uart.printer`` (ESC/POS).

A sale: the seller taps the trader card (``traders``: card UID -> trader id); for each
line the seller keys the goods number and ``A`` (``goods``: the seller's entry batches;
weighed goods take the scale's stable DC2 reading, counted goods then take
``<pieces> B``); the buyer may tap a card (``buyers``); ``<n> D`` sets the payment
(1 cash, 2 card, 3 wechat, 4 alipay, 5 unionpay, 6 credit, 7 other); ``#`` settles,
``*`` cancels, ``C`` clears the number or drops the last line. A batch on the stop list
cannot be sold: the agent relays it on ``t/{dev}/cmd`` sealed with the device key
(``wire.auth.stop_list``); the terminal takes a list only when it verifies under the
newest two keys and its ``version`` is above the one held (kept in flash with the list).
A newer list replaces the old one, which is how a stop is lifted; anything else is
ignored and counted (``stop_lists_refused``).

Lines, codes, the body and the stop-list check are ``wire/settlement.py`` and the receipt
``drivers/codecs/receipt.py``: the same files the Linux stall terminal
(``edge_agent/terminal``) uses, so both make the same records and receipts. The serial is
saved *before* the record is made, so a power cut can skip one, never repeat.
"""

from te.cas_scale import CasScale
from te.keypad import Keypad
from te.mfrc522 import CardWatch, Mfrc522
from te.recorder import Refused
from drivers.codecs.receipt import escpos, receipt
from te.runtime import App as _App
from te.scale import fen, grams
from te.state import StateFile
from wire.auth import open_stop_list
from wire import settlement as sale
from wire.envelope import WireError
from wire.tracecode import CST_OFFSET_MIN, local_date

_TYPING = False
if _TYPING:
    from typing import Any

    from te.config import Section
    from te.runtime import Runtime

PAY = sale.PAY
IDLE = 0
SESSION = 1
WEIGH = 2


class App(_App):
    name = "settlement"

    def __init__(self, rt: "Runtime", cfg: "Section") -> None:
        super().__init__(rt, cfg)
        b = rt.board
        c = rt.clock
        self.market = cfg.text("market", hi=32)
        self.market_no = cfg.text("market_no", lo=6, hi=6)
        self.region = cfg.text("region", lo=6, hi=6)
        self.terminal = cfg.text("terminal", hi=32)
        self.terminal_no = cfg.num("terminal_no", 0, 0, 99)
        self.scale_sw = cfg.text("scale_sw", hi=32)
        self.title = cfg.text("title", self.market, hi=64)
        self.trace_url = cfg.text("trace_url", "https://trace.example.cn/t/", hi=128)
        self.offset_min = cfg.num("utc_offset_min", CST_OFFSET_MIN, 0, 840)
        self.session_ms = cfg.num("session_ms", 180000, 1000, 3600000)
        self.weigh_ms = cfg.num("weigh_ms", 5000, 200, 60000)
        self.traders = cfg.obj("traders")
        self.buyers = cfg.obj("buyers", {})
        self.goods: "dict[int, dict[str, Any]]" = {}
        for g in cfg.seq("goods"):
            self.goods[int(g["key"])] = g
        self.scale = CasScale(b.uart("scale"), c)
        self.printer = b.uart("printer")
        spi, cs, rst = b.spi("rfid")
        reader = Mfrc522(spi, cs, rst)
        reader.init()
        self.cards = CardWatch(reader, c)
        rows = [b.raw_pin(b.hw["pins"]["r%d" % i], True) for i in (1, 2, 3, 4)]
        cols = [b.raw_pin(b.hw["pins"]["c%d" % i], False, True) for i in (1, 2, 3, 4)]
        self.keys = Keypad(rows, cols, c)
        self.serials = StateFile(rt.fs, rt.state_dir + "/serial.json")
        self.stops = StateFile(rt.fs, rt.state_dir + "/stoplist.json")
        sl = self.stops.load() or {}
        self.stop_ver = int(sl.get("version", 0))
        self.stopped: "list[str]" = list(sl.get("batches", []))
        self.stop_lists_refused = 0
        self.last_receipt: "dict[str, Any] | None" = None
        self.sales = 0
        self._clear()

    def _clear(self) -> None:
        self.state = IDLE
        self.seller = ""
        self.seller_card = ""
        self.buyer = ""
        self.buyer_card = ""
        self.pay = ""
        self.lines: "list[dict[str, Any]]" = []
        self.num = ""
        self.item: "dict[str, Any] | None" = None
        self.t = 0

    def on_cmd(self, msg: "dict[str, Any]", payload: bytes) -> None:
        ident = self.rt.ident
        try:
            sl = open_stop_list(payload, ident.dev, ident.keys.recent)
        except WireError:
            self.stop_lists_refused += 1
            return
        ids = sale.stopped_batches(sl, self.stop_ver)
        if ids is None:
            self.stop_lists_refused += 1
            return
        ver = sl["version"]
        assert isinstance(ver, int)
        self.stops.save({"version": ver, "batches": ids})
        self.stop_ver = ver
        self.stopped = ids
        self.rt.say("stop list v%d: %d batches stopped" % (ver, len(ids)))

    def poll(self, now: int) -> None:
        c = self.rt.clock
        uid = self.cards.poll(now)
        if uid is not None:
            self._card(uid, now)
        if self.state == WEIGH:
            self._weigh(now)
            return
        k = self.keys.poll(now)
        if k is not None and self.state == SESSION:
            self.t = now
            self._key(k, now)
        if self.state == SESSION and c.diff(now, self.t) > self.session_ms:
            self.rt.say("session timed out")
            self._clear()

    def _card(self, uid: str, now: int) -> None:
        if self.state == IDLE:
            seller = self.traders.get(uid)
            if seller is None:
                self.rt.say("card %s is not a trader card" % uid)
                return
            self._clear()
            self.state = SESSION
            self.t = now
            self.seller = str(seller)
            self.seller_card = uid
            self.rt.say("seller %s" % seller)
        elif uid in self.buyers and uid != self.seller_card:
            self.buyer = str(self.buyers[uid])
            self.buyer_card = uid
            self.rt.say("buyer %s" % self.buyer)

    def _key(self, k: str, now: int) -> None:
        if k in "0123456789":
            if len(self.num) < 5:
                self.num += k
            return
        n = int(self.num) if self.num else -1
        self.num = ""
        if k == "A":
            self._select(n, now)
        elif k == "B" and self.item is not None and n > 0:
            self._add(sale.counted_line(self.item, n))
        elif k == "C":
            if n < 0 and self.lines:
                self.lines.pop()
                self.rt.say("last line removed")
        elif k == "D" and 1 <= n <= len(PAY):
            self.pay = PAY[n - 1]
        elif k == "*":
            self.rt.say("sale cancelled")
            self._clear()
        elif k == "#":
            self._settle()

    def _select(self, n: int, now: int) -> None:
        g = self.goods.get(n)
        if g is None or g.get("seller", self.seller) != self.seller:
            self.rt.say("no goods %d for this seller" % n)
            return
        if g["batch_id"] in self.stopped:
            self.rt.say("batch %s is STOPPED: not for sale" % g["batch_id"])
            return
        self.item = g
        if g.get("mode", "weighed") == "counted":
            self.rt.say("%s: key pieces, then B" % g["goods_name"])
            return
        self.scale.ask(now)
        self.state = WEIGH
        self.t = now

    def _weigh(self, now: int) -> None:
        sc = self.scale
        if not sc.poll(now):
            return
        r = sc.reading
        g = self.item
        ok = (r is not None and r.stable and r.weight is not None and r.weight.value > 0
              and r.unit_price is not None and r.total is not None and r.weight.unit == "kg")
        if not ok or g is None:
            if self.rt.clock.diff(now, self.t) < self.weigh_ms:
                sc.ask(now)
            else:
                self.rt.say("scale reading not stable: line not added")
                self.state = SESSION
            return
        assert r is not None and r.weight is not None
        assert r.unit_price is not None and r.total is not None
        self.state = SESSION
        try:
            line = sale.weighed_line(g, grams(r.weight), fen(r.unit_price), fen(r.total))
        except ValueError as exc:
            self.rt.say("scale figures not exact: %s" % exc)
            return
        self._add(line)

    def _add(self, line: "dict[str, Any]") -> None:
        if len(self.lines) >= sale.MAX_LINES:
            self.rt.say("20 lines at most")
            return
        self.lines.append(line)
        self.item = None
        self.rt.say("%s %d fen" % (line["goods_name"], line["amount_fen"]))

    def _next_serial(self, date: str) -> int:
        serial = sale.next_serial(self.serials.load(), date)
        self.serials.save({"date": date, "serial": serial})
        return serial

    def _settle(self) -> None:
        if not self.lines:
            self.rt.say("nothing to settle")
            return
        at = self.rt.time.now()
        ts = at[0]
        try:
            date = local_date(ts, self.offset_min)
            serial = self._next_serial(date)
            tran, trace = sale.codes(self.region, self.market_no, date, self.terminal_no,
                                     serial)
            body: "dict[str, Any]" = sale.body(
                self.market, self.terminal, self.scale_sw, tran, trace, self.seller,
                self.seller_card, self.lines, self.buyer, self.buyer_card, self.pay)
            self.rt.rec.record("market.settlement", body, at)
        except (Refused, ValueError) as exc:
            self.rt.say("SALE NOT RECORDED: %s" % exc)
            return
        r = receipt(body, ts, self.title, self.trace_url, self.offset_min)
        self.printer.write(escpos(r))
        self.last_receipt = r
        self.sales += 1
        self.rt.say("settled %s, trace %s" % (body["tran_id"], body["trace_id"]))
        self._clear()
