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

Codes (``wire/tracecode.py`` and ``wire/checkdigit.py``, the same files the collector uses):
``trace_id`` = 8 + market number + local date + terminal number + the day's serial +
check digit; ``tran_id`` = region + date + terminal + serial (5) + check digit. The
serial is saved *before* the record is made, so a power cut can skip one, never repeat.
"""

from te.cas_scale import CasScale
from te.keypad import Keypad
from te.mfrc522 import CardWatch, Mfrc522
from te.receipt import escpos, receipt
from te.recorder import Refused
from te.runtime import App as _App
from te.scale import fen, grams
from te.state import StateFile
from wire.auth import open_stop_list
from wire.checkdigit import with_check_digit
from wire.envelope import WireError
from wire.tracecode import CST_OFFSET_MIN, local_date, make_trace_code

_TYPING = False
if _TYPING:
    from typing import Any

    from te.config import Section
    from te.runtime import Runtime

PAY = ("cash", "card", "wechat", "alipay", "unionpay", "credit", "other")
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
        ver = sl["version"]
        batches = sl["batches"]
        if not isinstance(ver, int) or not isinstance(batches, list) or ver <= self.stop_ver:
            self.stop_lists_refused += 1
            return
        ids = [x["batch_id"] for x in batches
               if isinstance(x, dict) and isinstance(x.get("batch_id"), str)]
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
            g = self.item
            price = int(g["price_fen_per_piece"])
            self._add({"batch_id": g["batch_id"], "goods_code": g["goods_code"],
                       "goods_name": g["goods_name"], "mode": "counted", "pieces": n,
                       "price_fen_per_piece": price, "amount_fen": n * price})
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
            line = {"batch_id": g["batch_id"], "goods_code": g["goods_code"],
                    "goods_name": g["goods_name"], "mode": "weighed",
                    "weight_g": grams(r.weight), "price_fen_per_kg": fen(r.unit_price),
                    "amount_fen": fen(r.total)}
        except ValueError as exc:
            self.rt.say("scale figures not exact: %s" % exc)
            return
        self._add(line)

    def _add(self, line: "dict[str, Any]") -> None:
        if len(self.lines) >= 20:
            self.rt.say("20 lines at most")
            return
        self.lines.append(line)
        self.item = None
        self.rt.say("%s %d fen" % (line["goods_name"], line["amount_fen"]))

    def _next_serial(self, date: str) -> int:
        d = self.serials.load() or {}
        serial = int(d.get("serial", 0)) + 1 if d.get("date") == date else 1
        if serial > 9999:
            raise Refused("10000 sales today: the trace code has no room")
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
            body: "dict[str, Any]" = {
                "market": self.market, "terminal": self.terminal, "scale_sw": self.scale_sw,
                "tran_id": with_check_digit("%s%s%02d%05d" % (self.region, date,
                                                              self.terminal_no, serial)),
                "trace_id": make_trace_code(self.market_no, date, self.terminal_no, serial),
                "seller": self.seller, "seller_card": self.seller_card,
                "lines": self.lines, "total_fen": sum(x["amount_fen"] for x in self.lines)}
            if self.buyer:
                body["buyer"] = self.buyer
                body["buyer_card"] = self.buyer_card
            if self.pay:
                body["pay"] = self.pay
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
