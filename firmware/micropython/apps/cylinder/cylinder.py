"""Cylinder reader at a filling line: identify, ask permission, fill, re-weigh, record.

GB/T 38059 interlock: the valve output (``hw.pins.valve``) is driven only after the edge
agent allowed *this* cylinder (request on ``t/{dev}/gate``). No answer within
``gate_timeout_ms`` means no filling, and no record (nothing was decided).

Cycle (operator panel: ``ok``, ``reject``, ``start`` buttons; ``residual`` pressure on an
ADC; filling scale on MT-SICS; reader UHF (Chafon, code in user memory) or HF (MFRC522
UID mapped by ``tag_map``)):

1. tag read -> stable tare from the scale, appearance (``ok`` / ``reject``), residual
   pressure -> gate request ``stage: pre``.
2. answer -> ``cylinder.check`` (pre, the agent's decision, reasons, registry version);
   refused -> done. Allowed -> ``start`` opens the valve; it closes at
   ``target_net_g - preact_g`` net, after ``max_fill_ms``, on scale loss or tag loss.
3. stable re-weigh, leak check (``ok`` / ``reject``) -> gate request ``stage: post``
   (over-fill and leak are the agent's to judge) -> ``cylinder.fill`` (always: the gas is
   in the cylinder) and, if answered, ``cylinder.check`` (post).
4. the tag must leave the field before the next cycle.
"""

from te.debounce import Button
from te.gate import ANSWERED, TIMED_OUT
from te.recorder import Refused
from te.runtime import App as _App
from te.sics_scale import SicsScale
from te.uhf import UhfReader

_TYPING = False
if _TYPING:
    from typing import Any

    from te.config import Section
    from te.gate import GateRequest
    from te.runtime import Runtime

REASONS = ("unregistered", "registration_mismatch", "inspection_overdue", "scrapped",
           "design_life_exceeded", "not_this_station", "wrong_medium", "no_residual_pressure",
           "damaged", "overfilled", "leaking")
MEDIA = ("lpg", "cng", "o2", "n2", "ar", "co2", "c2h2", "other")
_CODE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"

IDLE = 0
PRE = 1
WAIT_PRE = 2
READY = 3
FILLING = 4
SETTLE = 5
POST = 6
WAIT_POST = 7
DONE = 8


def valid_code(code: str) -> bool:
    if not 4 <= len(code) <= 32 or code[0] == "-":
        return False
    for ch in code:
        if ch not in _CODE:
            return False
    return True


class App(_App):
    name = "cylinder"

    def __init__(self, rt: "Runtime", cfg: "Section") -> None:
        super().__init__(rt, cfg)
        b = rt.board
        c = rt.clock
        self.station = cfg.text("station", hi=32)
        self.operator = cfg.text("operator", hi=32)
        self.checker = cfg.text("checker", self.operator, hi=32)
        self.medium = cfg.choice("medium", MEDIA)
        self.target = cfg.num("target_net_g", lo=1, hi=2000000)
        self.preact = cfg.num("preact_g", 0, 0, 100000)
        self.scale_code = cfg.text("scale", hi=32)
        self.gate_ms = cfg.num("gate_timeout_ms", 3000, 100, 60000)
        self.max_fill_ms = cfg.num("max_fill_ms", 900000, 1000, 7200000)
        self.sample_ms = cfg.num("sample_ms", 100, 20, 5000)
        self.kind = cfg.choice("reader", ("uhf", "hf"), "uhf")
        self.uhf: "UhfReader | None" = None
        self.cards: "Any" = None
        if self.kind == "uhf":
            self.uhf = UhfReader(b.uart("reader"), c)
        else:
            from te.mfrc522 import CardWatch, Mfrc522

            spi, cs, rst = b.spi("rfid")
            m = Mfrc522(spi, cs, rst)
            m.init()
            self.cards = CardWatch(m, c)
            self.tag_map = cfg.obj("tag_map")
        self.scale = SicsScale(b.uart("scale"), c)
        self.valve = b.output("valve")
        self.ok = Button(b.input("ok"), c)
        self.reject = Button(b.input("reject"), c)
        self.start = Button(b.input("start"), c)
        self.residual = b.analog("residual")
        self.state = IDLE
        self.t = 0
        self.fails = 0
        self.cycles = 0
        self._reset()

    def _reset(self) -> None:
        self.cyl = ""
        self.tag = ""
        self.tare: "int | None" = None
        self.appearance: "bool | None" = None
        self.pre: "dict[str, Any]" = {}
        self.req: "GateRequest | None" = None
        self.gross = 0
        self.start_ts = 0
        self.end_ts = 0
        self.leak: "bool | None" = None

    # -- helpers --------------------------------------------------------------------
    def _go(self, state: int, now: int) -> None:
        self.state = state
        self.t = now
        self.fails = 0

    def _present(self, now: int) -> bool:
        if self.uhf is not None:
            return self.uhf.current(now) is not None
        return True  # an HF tag is read once per tap: the cycle owns it until done

    def _valve(self, on: bool) -> None:
        if on != self.valve.state:
            self.valve.set(on)
            self.rt.say("valve " + ("OPEN" if on else "closed"))

    def _ask(self, stage: str, extra: "dict[str, Any]") -> None:
        body: "dict[str, Any]" = {"stage": stage, "cyl": self.cyl, "operator": self.operator,
                                  "station": self.station, "medium": self.medium}
        if self.tag:
            body["tag"] = self.tag
        body.update(extra)
        self.req = self.rt.gate.ask(body, self.gate_ms)

    def _answer(self) -> "tuple[str, list[str], int] | None":
        """The gate's (decision, reasons, registry version) if usable for a record."""
        r = self.req
        if r is None or r.state != ANSWERED or r.answer is None:
            return None
        a = r.answer
        reasons = [x for x in a.get("reasons", []) if x in REASONS]
        ver = a.get("reg_ver", 0)
        if a.get("decision") == "deny" and not reasons:
            self.rt.say("gate error: %s" % a.get("error", "refused without a reason"))
            return None
        if not isinstance(ver, int) or ver < 0:
            ver = 0
        return ("allow" if a.get("decision") == "allow" else "deny"), reasons, ver

    def _check(self, stage: str, answer: "tuple[str, list[str], int]",
               part: "dict[str, Any]") -> None:
        decision, reasons, ver = answer
        body: "dict[str, Any]" = {"cyl": self.cyl, "station": self.station,
                                  "operator": self.operator, "medium": self.medium,
                                  "stage": stage, "decision": decision,
                                  "reasons": reasons, "reg_ver": ver, stage: part}
        if self.tag:
            body["tag"] = self.tag
        self.rt.rec.record("cylinder.check", body)

    # -- the cycle --------------------------------------------------------------------
    def poll(self, now: int) -> None:
        if self.uhf is not None:
            self.uhf.poll(now)
        s = self.state
        if s == IDLE:
            self._idle(now)
        elif s == PRE:
            self._pre(now)
        elif s == WAIT_PRE:
            self._wait_pre(now)
        elif s == READY:
            if self.start.poll(now):
                self.start_ts = self.rt.time.now()[0]
                self._valve(True)
                self.scale.ask(False, now)
                self._go(FILLING, now)
            elif self.reject.poll(now) or not self._present(now):
                self.rt.say("filling cancelled")
                self._go(DONE, now)
        elif s == FILLING:
            self._filling(now)
        elif s == SETTLE:
            self._settle(now)
        elif s == POST:
            if self.ok.poll(now):
                self.leak = True
            elif self.reject.poll(now):
                self.leak = False
            if self.leak is not None:
                self._ask("post", {"post": self._post()})
                self._go(WAIT_POST, now)
        elif s == WAIT_POST:
            self._wait_post(now)
        elif s == DONE:
            if not self._present(now):
                self._reset()
                self._go(IDLE, now)

    def _idle(self, now: int) -> None:
        tag = ""
        code = ""
        if self.uhf is not None:
            cur = self.uhf.current(now)
            if cur is None:
                return
            tag, code = cur
        else:
            uid = self.cards.poll(now)
            if uid is None:
                return
            tag = uid
            code = str(self.tag_map.get(uid, ""))
        self.cycles += 1
        self.tag = tag if len(tag) >= 8 else ""
        if not valid_code(code):
            self.rt.say("tag %s carries no valid cylinder code" % tag)
            self._go(DONE, now)
            return
        self.cyl = code
        self.rt.say("cylinder %s: check appearance, OK or REJECT" % code)
        self.scale.ask(True, now)
        self._go(PRE, now)

    def _pre(self, now: int) -> None:
        if not self._present(now):
            self.rt.say("tag left the field: cycle aborted")
            self._reset()
            self._go(IDLE, now)
            return
        if self.tare is None:
            if self.scale.poll(now):
                if not self.scale.failed and self.scale.stable and self.scale.gross_g is not None:
                    self.tare = self.scale.gross_g
                else:
                    self.scale.ask(True, now)
        if self.ok.poll(now):
            self.appearance = True
        elif self.reject.poll(now):
            self.appearance = False
        if self.tare is not None and self.appearance is not None:
            self.pre = {"appearance_ok": self.appearance,
                        "residual_kpa": self.residual.read(), "tare_g": self.tare}
            self._ask("pre", {"pre": self.pre})
            self._go(WAIT_PRE, now)

    def _wait_pre(self, now: int) -> None:
        r = self.req
        if r is None:
            return
        if r.state == TIMED_OUT:
            self.rt.say("no answer from the gateway: NOT filled")
            self._go(DONE, now)
            return
        if r.state != ANSWERED:
            return
        ans = self._answer()
        if ans is None:
            self.rt.say("NOT filled")
            self._go(DONE, now)
            return
        try:
            self._check("pre", ans, self.pre)
        except Refused as exc:
            self.rt.say("cannot record the check (%s): NOT filled" % exc)
            self._go(DONE, now)
            return
        if ans[0] == "allow":
            self.rt.say("allowed: press START to fill")
            self._go(READY, now)
        else:
            self.rt.say("REFUSED: " + ", ".join(ans[1]))
            self._go(DONE, now)

    def _filling(self, now: int) -> None:
        sc = self.scale
        stop = ""
        if sc.poll(now):
            if sc.failed:
                self.fails += 1
                if self.fails >= 3:
                    stop = "scale not answering"
            else:
                self.fails = 0
                assert self.tare is not None and sc.gross_g is not None
                if sc.gross_g - self.tare >= self.target - self.preact:
                    stop = "target reached"
        if not stop and self.rt.clock.diff(now, self.t) >= self.max_fill_ms:
            stop = "filling took too long"
        if not stop and not self._present(now):
            stop = "tag left the field"
        if stop:
            self._valve(False)
            self.rt.say("filling stopped: " + stop)
            sc.waiting = False
            sc.ask(True, now)
            self._go(SETTLE, now)
        elif not sc.waiting and self.rt.clock.diff(now, sc.sent) >= self.sample_ms:
            sc.ask(False, now)

    def _settle(self, now: int) -> None:
        sc = self.scale
        if not sc.poll(now):
            return
        if sc.failed or not sc.stable or sc.gross_g is None:
            sc.ask(True, now)
            return
        self.gross = sc.gross_g
        self.end_ts = self.rt.time.now()[0]
        self.rt.say("re-weighed %d g: leak check, OK or REJECT" % self.gross)
        self._go(POST, now)

    def _post(self) -> "dict[str, Any]":
        return {"reweigh_g": self.gross, "leak_ok": bool(self.leak), "checker": self.checker}

    def _wait_post(self, now: int) -> None:
        r = self.req
        if r is None or r.state not in (ANSWERED, TIMED_OUT):
            return
        assert self.tare is not None
        body: "dict[str, Any]" = {
            "cyl": self.cyl, "station": self.station, "operator": self.operator,
            "medium": self.medium, "target_net_g": self.target,
            "actual_net_g": max(self.gross - self.tare, 0),
            "start_ts": self.start_ts, "end_ts": self.end_ts, "pre": self.pre,
            "post": self._post(), "scale": self.scale_code}
        if self.tag:
            body["tag"] = self.tag
        try:
            self.rt.rec.record("cylinder.fill", body)
            ans = self._answer()
            if ans is not None:
                self._check("post", ans, self._post())
                self.rt.say("post check: " + (ans[0] if ans[0] == "allow" else
                                              "HOLD CYLINDER: " + ", ".join(ans[1])))
            else:
                self.rt.say("post check not confirmed: HOLD CYLINDER")
        except Refused as exc:
            self.rt.say("cannot record the fill (%s)" % exc)
        self._go(DONE, now)

    def healthy(self) -> bool:
        # the valve may be open only while filling
        return self.state == FILLING or not self.valve.state
