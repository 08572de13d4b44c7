"""Elevator IoT sensor box: running state, faults raised and cleared, maintenance visits.

Inputs (``hw.pins``): ``door`` (on = closed), ``zone`` (on = car in a door zone),
``people`` (on = someone in the car), ``alarm`` (on = button pressed), ``mains`` (on =
power present), ``inspection`` (on = inspection mode), ``enc_a`` / ``enc_b`` (a rope
encoder: rising edges of A counted, B gives the direction); ``hw.spi.rfid`` reads the
technicians' cards.

Position = encoder pulses x ``mm_per_pulse``, snapped to the nearest floor level whenever
the car stands in a door zone; speed over ``speed_window_ms``; floor = nearest level.

Faults (``elevator.fault``, raised and cleared) and when a status sample is due are
decided by the rule set the gateway's Modbus elevator source shares,
:mod:`drivers.codecs.elevator_rules` (its docstring has the table; thresholds and delays
come from this app's config under the keys named there). This box has no inputs for the
safety / door-lock circuits or the door-operator faults, so those never raise here.
Inspection and maintenance modes suppress the trapped and stop-outside-zone faults (the
car is being worked on). ``elevator.status`` goes out on every change (at most every
``status_min_ms``) and every ``status_every_ms``. A technician's card signs in, the same
card signs out (``elevator.maintenance``); the session survives a reboot.
"""

from drivers.codecs.elevator_rules import (
    CLEAR_DEFAULT,
    CLEAR_KEY,
    LABELS,
    MAX_DELAY_MS,
    Condition,
    Limits,
    Rules,
    StatusTimer,
    checks,
    door_text,
    fault_body,
    status_body,
)
from te.mfrc522 import CardWatch, Mfrc522
from te.recorder import Refused
from te.runtime import App as _App
from te.state import StateFile

_TYPING = False
if _TYPING:
    from typing import Any

    from machine import Pin
    from te.config import Section
    from te.runtime import Runtime

__all__ = ["App", "LABELS"]


class App(_App):
    name = "elevator"

    def __init__(self, rt: "Runtime", cfg: "Section") -> None:
        super().__init__(rt, cfg)
        b = rt.board
        c = rt.clock
        self.reg = cfg.text("reg", lo=20, hi=20)
        self.company = cfg.text("company")
        levels = cfg.seq("floors")
        if len(levels) < 2:
            raise ValueError("elevator.floors needs at least two [floor, level_mm] pairs")
        self.floors = sorted([(int(x[1]), int(x[0])) for x in levels])  # (level mm, floor)
        self.rated = cfg.num("rated_mm_s", lo=100, hi=20000)
        self.mm_per_pulse = cfg.num("mm_per_pulse", 10, 1, 1000)
        self.move = cfg.num("move_mm_s", 50, 1, 1000)
        self.window = cfg.num("speed_window_ms", 500, 50, 5000)
        self.sample_ms = cfg.num("sample_ms", 50, 10, 1000)
        self.status_every = cfg.num("status_every_ms", 300000, 1000, 86400000)
        self.status_min = cfg.num("status_min_ms", 1000, 0, 600000)
        self.overtravel = cfg.num("overtravel_mm", 150, 10, 5000)
        self.over_pct = cfg.num("overspeed_pct", 115, 101, 200)
        self.workers = cfg.obj("workers", {})
        self.items = cfg.obj("items", {})
        clear = cfg.num(CLEAR_KEY, CLEAR_DEFAULT, 0, 600000)

        def delay(key: str, default: int) -> int:
            return cfg.num(key, default, 0, MAX_DELAY_MS)

        self.rules = Rules(c, delay, clear)
        self.limits = Limits(self.rated, self.over_pct, self.floors[-1][0], self.floors[0][0],
                             self.overtravel)
        self.door = b.input("door")
        self.zone = b.input("zone")
        self.people = b.input("people")
        self.alarm = b.input("alarm")
        self.mains = b.input("mains")
        self.inspection = b.input("inspection")
        self.enc_b = b.input("enc_b")
        enc_a = b.input("enc_a")
        self.pulses = 0
        enc_a.pin.irq(trigger=enc_a.pin.IRQ_RISING, handler=self._edge)
        spi, cs, rst = b.spi("rfid")
        reader = Mfrc522(spi, cs, rst)
        reader.init()
        self.cards = CardWatch(reader, c)
        self.store = StateFile(rt.fs, rt.state_dir + "/elevator.json")
        st = self.store.load() or {}
        home = cfg.num("home_floor", self.floors[0][1], -20, 300)
        self.offset = int(st.get("pos_mm", self._level(home)))
        self.runs = int(st.get("runs", 0))
        self.door_cycles = int(st.get("door_cycles", 0))
        self.run_ms = int(st.get("run_ms", 0))
        self.session: "dict[str, Any] | None" = st.get("session")
        self.last_sample = c.ticks_ms()
        self.last_speed_t = self.last_sample
        self.last_pulses = 0
        self.prev_pulses = 0
        self.speed = 0
        self.was_moving = False
        self.dir = "stopped"
        self.was_closed = self.door.on()
        self.timer = StatusTimer(c, self.status_every, self.status_min, self.last_sample)
        self.seen: "tuple[int, bool, bool, int]" = (0, True, False, 0)
        self.on_event = self._on_event  # bound once: no allocation per sample
        self.unknown_cards = 0

    def _edge(self, pin: "Pin") -> None:  # IRQ handler: no allocation
        if self.enc_b.pin.value():
            self.pulses += 1
        else:
            self.pulses -= 1

    def _level(self, floor: int) -> int:
        for lvl, f in self.floors:
            if f == floor:
                return lvl
        return self.floors[0][0]

    def position(self) -> int:
        return self.offset + self.pulses * self.mm_per_pulse

    def _nearest(self, pos: int) -> "tuple[int, int]":
        best = self.floors[0]
        for lf in self.floors:
            if abs(lf[0] - pos) < abs(best[0] - pos):
                best = lf
        return best

    def _save(self) -> None:
        self.store.save({"pos_mm": self.position(), "runs": self.runs,
                         "door_cycles": self.door_cycles, "run_ms": self.run_ms,
                         "session": self.session})

    def poll(self, now: int) -> None:
        c = self.rt.clock
        uid = self.cards.poll(now)
        if uid is not None:
            self._card(uid)
        if c.diff(now, self.last_sample) < self.sample_ms:
            return
        dt = c.diff(now, self.last_sample)
        self.last_sample = now
        wdt = c.diff(now, self.last_speed_t)
        if wdt >= self.window:
            p = self.pulses
            self.speed = (p - self.last_pulses) * self.mm_per_pulse * 1000 // wdt
            self.last_pulses = p
            self.last_speed_t = now
        dp = self.pulses - self.prev_pulses
        self.prev_pulses = self.pulses
        # the speed window lags: two pulses within one sample also start "moving" (one
        # pulse alone is rope stretch when someone steps in); any pulse keeps it going
        moving = (abs(self.speed) > self.move or dp >= 2 or dp <= -2
                  or (self.was_moving and dp != 0))
        closed = self.door.on()
        zone = self.zone.on()
        people = self.people.on()
        insp = self.inspection.on()
        pos = self.position()
        lvl, floor = self._nearest(pos)
        if not moving and dp == 0 and zone and pos != lvl:
            self.offset += lvl - pos  # re-sync on the door zone, only when standing still
            pos = lvl
        if moving:
            self.run_ms += dt
            if not self.was_moving:
                self.runs += 1
        elif self.was_moving:
            self._save()
        if closed and not self.was_closed:
            self.door_cycles += 1
        self.was_moving = moving
        self.was_closed = closed
        busy = insp or self.session is not None
        v = abs(self.speed)
        sample = checks(self.limits, moving, closed, zone, people, busy, v, pos,
                        self.mains.on(), self.alarm.on())
        self.seen = (floor, closed, people, v)  # what a fault event records
        self.rules.update(now, sample, (), self.on_event)
        self.dir = "stopped"
        if moving:
            up = self.speed > self.move or (self.speed >= -self.move and dp > 0)
            self.dir = "up" if up else "down"
        self._status(now, floor, closed, zone, people, insp)

    def _on_event(self, f: Condition, ev: int) -> None:
        floor, closed, people, v = self.seen
        self._fault(f, ev, floor, closed, people, v)

    def _fault(self, f: Condition, ev: int, floor: int, closed: bool, people: bool,
               v: int) -> None:
        ts = self.rt.time.now()[0]
        body = fault_body(self.reg, f, ev, ts, floor, door_text(closed), people, v)
        try:
            self.rt.rec.record("elevator.fault", body)
        except Refused as exc:
            self.rt.say("fault not recorded: %s" % exc)
        self.rt.say("%s %s" % (f.name, body["state"]))
        self.timer.pending = True

    def _status(self, now: int, floor: int, closed: bool, zone: bool, people: bool,
                insp: bool) -> None:
        d = self.dir
        faults = self.rules.active()
        key = (d, floor, closed, zone, people, insp, self.session is not None, tuple(faults))
        if not self.timer.due(now, key):
            return
        body = status_body(self.reg, d, floor, door_text(closed), zone, people, insp,
                           self.session is not None, faults, self.runs, self.door_cycles,
                           self.run_ms // 3600000)
        self.rt.rec.record("elevator.status", body)  # None when the log is full: thinned

    def _card(self, uid: str) -> None:
        w = self.workers.get(uid)
        if not isinstance(w, dict):
            self.unknown_cards += 1
            self.rt.say("unknown card %s" % uid)
            return
        ts = self.rt.time.now()[0]
        body: "dict[str, Any]" = {"reg": self.reg, "worker": w["worker"], "card": uid,
                                  "company": w.get("company", self.company)}
        plan = w.get("plan", "half_month")
        s = self.session
        if s is None:
            body.update(event="sign_in", plan=plan, time_in=ts)
            new: "dict[str, Any] | None" = {"card": uid, "plan": plan, "time_in": ts}
        elif s["card"] == uid:
            body.update(event="sign_out", plan=s["plan"], time_in=s["time_in"], time_out=ts,
                        items=list(self.items.get(s["plan"], [])))
            new = None
        else:
            self.rt.say("another technician is signed in")
            return
        try:
            self.rt.rec.record("elevator.maintenance", body)
        except Refused as exc:
            self.rt.say("visit not recorded: %s" % exc)
            return
        self.session = new
        self._save()
        self.timer.pending = True
        self.rt.say("%s %s" % (w["worker"], body["event"]))
