"""Realistic record bodies for every kind, deterministic given a ``random.Random``.

:func:`make_body` builds the ``body`` of one record; the envelope is the caller's. What a
device *is* (its station, elevator, market, scale, traders) comes from ``(site, dev)`` alone,
so one simulated device keeps the same identity across calls and runs; what it *does* comes
from ``rng``; counters and serial numbers grow with ``seq``.

Codes here are ours (SB/T 10680's structure was not readable); every 20-character code is
19 digits plus a GS1 mod-10 check digit (:mod:`wire.checkdigit`):

- ``tran_id``  (voucher):  region(6) + local date yymmdd(6) + terminal(2) + serial(5) + check
- ``trace_id`` (receipt):  "8" + market number(6) + yymmdd(6) + terminal(2) + daily
  serial(4) + check (:mod:`wire.tracecode`, docs/tracecode.md)
- ``batch_id`` (entry):    market number(6) + local date yymmdd(6) + serial(7) + check
- elevator ``reg``:        type(4) + region(6) + year(4) + serial(6)
- cylinder ``cyl``:        region(6) + year(2) + station(3) + medium(1) + serial(4)

Batches are numbered per market and day; batch ``s`` belongs to trader ``(s - 1) % 40`` and
its goods follow from ``s``, so a sale's lines name batches that a gate device (one per
market, batch serial = its ``seq``) registers with the same goods and seller.
"""

from __future__ import annotations

import functools
import random
import zlib
from dataclasses import dataclass
from typing import Any

from simulators import goods
from wire import settlement
from wire.checkdigit import with_check_digit
from wire.tracecode import local_date, make_trace_code

# 2025-11-23T00:00:00Z: the simulated clock when the caller gives no ``now_ms``.
BASE_MS = 1_763_856_000_000
SAMPLE_INTERVAL_MS = 30_000

FAMILIES = ("cylinder", "elevator", "market", "goods")

KIND_MIX_BY_FAMILY: dict[str, tuple[tuple[str, int], ...]] = {
    # Every fill is preceded by a pre-fill check; refused cylinders are checked, not filled.
    "cylinder": (("cylinder.check", 55), ("cylinder.fill", 45)),
    # Mostly periodic status samples; faults and visits are rare events.
    "elevator": (
        ("elevator.status", 94),
        ("elevator.fault", 4),
        ("elevator.maintenance", 2),
    ),
    "market": (("market.settlement", 90), ("market.entry", 10)),
    # A warehouse terminal: receipts, dispatches (each after a gate decision), stocktakes.
    "goods": (
        ("goods.in", 35),
        ("goods.out", 35),
        ("goods.count", 10),
        ("goods.pack", 10),
        ("goods.dispatch", 10),
    ),
}

FAMILY_OF_KIND: dict[str, str] = {
    kind: family for family, mix in KIND_MIX_BY_FAMILY.items() for kind, _ in mix
}


def pick_kind(family: str, rng: random.Random) -> str:
    """A kind for one record of a terminal of ``family``, drawn by the family's weights."""
    mix = KIND_MIX_BY_FAMILY.get(family)
    if mix is None:
        raise ValueError(f"unknown terminal family {family!r}")
    kinds = [k for k, _ in mix]
    weights = [w for _, w in mix]
    return rng.choices(kinds, weights)[0]


# ---------------------------------------------------------------------------------------------
# Shared identity helpers

# County-level administrative division codes (GB/T 2260) the simulated sites sit in.
_REGIONS = (
    "330106",  # 杭州市西湖区
    "330102",  # 杭州市上城区
    "330110",  # 杭州市余杭区
    "310104",  # 上海市徐汇区
    "320102",  # 南京市玄武区
    "440106",  # 广州市天河区
    "510107",  # 成都市武侯区
    "420106",  # 武汉市武昌区
    "370102",  # 济南市历下区
)


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


def _hex_uid(text: str, nbytes: int) -> str:
    """A stable upper-case hex UID of ``nbytes`` bytes derived from ``text``."""
    out = ""
    i = 0
    while len(out) < 2 * nbytes:
        out += f"{_crc(f'{text}#{i}'):08X}"
        i += 1
    return out[: 2 * nbytes]


@dataclass(frozen=True)
class _Site:
    region: str
    number: int  # 3 digits, the site's number within its region


@functools.lru_cache(maxsize=1024)
def _site(site: str) -> _Site:
    h = _crc("site:" + site)
    return _Site(_REGIONS[h % len(_REGIONS)], (h // len(_REGIONS)) % 1000)


def _round_to(value: int, step: int) -> int:
    return max(step, (value + step // 2) // step * step)


# ---------------------------------------------------------------------------------------------
# Cylinders

# medium: cylinder types as (target net g, tare g low, high, residual kPa low, high,
#         end pressure kPa or 0, filling time s low, high)
_CYLINDER_TYPES: dict[str, tuple[tuple[int, int, int, int, int, int, int, int], ...]] = {
    # LPG: YSP5 / YSP15 / YSP50 (液化石油气钢瓶), filled by mass, no end pressure.
    "lpg": (
        (5_000, 6_500, 7_600, 30, 600, 0, 30, 70),
        (14_500, 14_000, 17_000, 30, 700, 0, 60, 150),
        (49_500, 45_000, 52_000, 30, 700, 0, 180, 360),
    ),
    # 40 L seamless steel cylinders at 15 MPa; residual pressure at least 0.05 MPa.
    "o2": ((8_600, 48_000, 57_000, 50, 1_500, 15_000, 1_200, 2_700),),
    "n2": ((7_500, 48_000, 57_000, 50, 1_500, 15_000, 1_200, 2_700),),
    "ar": ((10_700, 48_000, 57_000, 50, 1_500, 15_000, 1_200, 2_700),),
    "co2": ((24_000, 48_000, 55_000, 50, 2_000, 0, 300, 900),),
    # Dissolved acetylene: porous filler and acetone in the tare.
    "c2h2": ((6_500, 65_000, 76_000, 50, 300, 1_500, 3_600, 7_200),),
    # CNG vehicle cylinders at 20 MPa.
    "cng": ((16_000, 55_000, 72_000, 500, 5_000, 20_000, 180, 420),),
}

_PRE_DENY_REASONS = (
    ("inspection_overdue", 30),
    ("not_this_station", 15),
    ("unregistered", 12),
    ("no_residual_pressure", 12),
    ("damaged", 9),
    ("registration_mismatch", 6),
    ("scrapped", 6),
    ("design_life_exceeded", 6),
    ("wrong_medium", 4),
)


@dataclass(frozen=True)
class _Station:
    region: str
    number: int
    code: str
    media: tuple[str, ...]
    operators: tuple[str, ...]


@functools.lru_cache(maxsize=1024)
def _station(site: str) -> _Station:
    s = _site(site)
    r = random.Random("station|" + site)
    if r.random() < 0.7:
        media: tuple[str, ...] = ("lpg",)
    else:
        media = tuple(sorted(r.sample(["o2", "n2", "ar", "co2", "c2h2", "cng"], r.randint(2, 4))))
    operators = tuple(
        f"OP{s.region[-2:]}{n:03d}" for n in sorted(r.sample(range(1, 1000), r.randint(3, 8)))
    )
    return _Station(s.region, s.number, f"CZ{s.region}{s.number:03d}", media, operators)


@dataclass(frozen=True)
class _FillLine:
    medium: str
    scale: str


@functools.lru_cache(maxsize=4096)
def _fill_line(site: str, dev: str) -> _FillLine:
    st = _station(site)
    h = _crc(f"line:{site}|{dev}")
    return _FillLine(st.media[h % len(st.media)], f"{st.code}-S{h % 97 + 1:02d}")


_MEDIUM_DIGIT = {"lpg": 1, "cng": 2, "o2": 3, "n2": 4, "ar": 5, "co2": 6, "c2h2": 7, "other": 9}


def _cylinder(st: _Station, medium: str, index: int) -> tuple[str, str]:
    """Cylinder code and tag EPC of the station's ``medium`` cylinder number ``index``."""
    year = 10 + index % 15
    code = f"{st.region}{year:02d}{st.number:03d}{_MEDIUM_DIGIT[medium]}{index:04d}"
    return code, "E28011" + _hex_uid(code, 9)


def _cylinder_type(medium: str, index: int) -> tuple[int, int, int, int, int, int, int, int]:
    types = _CYLINDER_TYPES[medium]
    # Most LPG cylinders in the field are YSP15.
    if medium == "lpg":
        return types[(0, 1, 1, 1, 1, 1, 1, 2)[index % 8]]
    return types[index % len(types)]


def _tare(spec: tuple[int, int, int, int, int, int, int, int], index: int) -> int:
    lo, hi = spec[1], spec[2]
    return _round_to(lo + _crc(f"tare{index}") % (hi - lo), 10)


def _cylinder_fill(
    rng: random.Random, dev: str, seq: int, site: str, now_ms: int
) -> dict[str, object]:
    st = _station(site)
    line = _fill_line(site, dev)
    index = rng.randrange(1, 5000)
    cyl, tag = _cylinder(st, line.medium, index)
    spec = _cylinder_type(line.medium, index)
    target, _, _, res_lo, res_hi, final_kpa, dur_lo, dur_hi = spec
    tare = _tare(spec, index)
    actual = _round_to(target + int(target * rng.uniform(-0.012, 0.006)), 10)
    end_ts = now_ms - rng.randint(20_000, 90_000)
    start_ts = end_ts - rng.randint(dur_lo, dur_hi) * 1000
    body: dict[str, object] = {
        "cyl": cyl,
        "station": st.code,
        "operator": rng.choice(st.operators),
        "medium": line.medium,
        "target_net_g": target,
        "actual_net_g": actual,
        "start_ts": start_ts,
        "end_ts": end_ts,
        "pre": {
            "appearance_ok": True,
            "residual_kpa": rng.randint(res_lo, res_hi),
            "tare_g": tare,
        },
        "post": {
            "reweigh_g": tare + actual + rng.choice((-10, 0, 0, 10)),
            "leak_ok": rng.random() > 0.003,
            "checker": rng.choice(st.operators),
        },
        "scale": line.scale,
    }
    if rng.random() < 0.9:
        body["tag"] = tag
    if final_kpa:
        body["final_kpa"] = final_kpa + rng.randint(-300, 200)
    return body


def _cylinder_check(
    rng: random.Random, dev: str, seq: int, site: str, now_ms: int
) -> dict[str, object]:
    st = _station(site)
    line = _fill_line(site, dev)
    index = rng.randrange(1, 5000)
    cyl, tag = _cylinder(st, line.medium, index)
    spec = _cylinder_type(line.medium, index)
    target, _, _, res_lo, res_hi = spec[:5]
    tare = _tare(spec, index)
    operator = rng.choice(st.operators)
    reasons: list[str] = []
    body: dict[str, object] = {"cyl": cyl}
    if rng.random() < 0.9:
        body["tag"] = tag
    body.update(station=st.code, operator=operator, medium=line.medium)
    if rng.random() < 0.8:
        body["stage"] = "pre"
        if rng.random() < 0.08:
            names = [n for n, _ in _PRE_DENY_REASONS]
            weights = [w for _, w in _PRE_DENY_REASONS]
            reasons = sorted(set(rng.choices(names, weights, k=rng.choice((1, 1, 1, 2)))))
        if rng.random() < 0.85 or "damaged" in reasons or "no_residual_pressure" in reasons:
            body["pre"] = {
                "appearance_ok": "damaged" not in reasons,
                "residual_kpa": 0
                if "no_residual_pressure" in reasons
                else rng.randint(res_lo, res_hi),
                "tare_g": tare,
            }
    else:
        body["stage"] = "post"
        net = _round_to(target + int(target * rng.uniform(-0.012, 0.006)), 10)
        leak_ok = True
        roll = rng.random()
        if roll < 0.02:
            reasons = ["overfilled"]
            net = _round_to(int(target * rng.uniform(1.03, 1.10)), 10)
        elif roll < 0.03:
            reasons = ["leaking"]
            leak_ok = False
        body["post"] = {
            "reweigh_g": tare + net,
            "leak_ok": leak_ok,
            "checker": rng.choice(st.operators),
        }
    body["decision"] = "deny" if reasons else "allow"
    body["reasons"] = reasons
    # The registry is pushed down hourly; its version is the hour it was built.
    body["reg_ver"] = now_ms // 3_600_000
    return body


# ---------------------------------------------------------------------------------------------
# Elevators

_FAULT_WEIGHTS = (
    ("alarm_button", 20),
    ("power_loss", 15),
    ("door_fails_to_close", 15),
    ("door_fails_to_open", 8),
    ("stop_outside_door_zone", 8),
    ("trapped_in_zone", 8),
    ("door_lock_circuit_open", 6),
    ("safety_circuit_open", 5),
    ("trapped_out_of_zone", 4),
    ("door_open_while_moving", 3),
    ("overtravel_top", 3),
    ("overtravel_bottom", 3),
    ("overspeed", 2),
)

_FAULT_LABELS = {
    "trapped_in_zone": "平层关人",
    "trapped_out_of_zone": "非平层关人",
    "stop_outside_door_zone": "门区外停梯",
    "door_open_while_moving": "开门走车",
    "overtravel_top": "冲顶",
    "overtravel_bottom": "蹲底",
    "overspeed": "超速",
    "power_loss": "停电",
    "safety_circuit_open": "安全回路断路",
    "door_lock_circuit_open": "门锁回路断路",
    "door_fails_to_open": "开门故障",
    "door_fails_to_close": "关门故障",
    "alarm_button": "轿内报警按钮",
}

_MAINT_COMPANIES = (
    "杭州恒达电梯工程有限公司",
    "浙江安步电梯维保有限公司",
    "上海申通电梯服务有限公司",
    "江苏广厦电梯安装维修有限公司",
    "广州穗捷电梯技术有限公司",
)

# TSG T5002 half-monthly items (abridged), then items of the longer periods.
_HALF_MONTH_ITEMS = (
    "机房、滑轮间环境",
    "手动紧急操作装置",
    "驱动主机",
    "制动器各销轴部位",
    "制动器间隙",
    "编码器",
    "限速器各销轴部位",
    "层门和轿门旁路装置",
    "紧急电动运行",
    "轿顶",
    "轿顶检修开关、停止装置",
    "导靴上油杯",
    "对重块及其压板",
    "井道照明",
    "轿厢照明、风扇、应急照明",
    "轿厢检修开关、停止装置",
    "轿内报警装置、对讲系统",
    "轿内显示、指令按钮、IC卡系统",
    "轿门防撞击保护装置",
    "轿门门锁电气触点",
    "轿门运行",
    "轿厢平层准确度",
    "层站召唤、层楼显示",
    "层门地坎",
    "层门自动关门装置",
    "层门门锁自动复位",
    "层门门锁电气触点",
    "层门锁紧元件啮合长度",
    "底坑环境",
    "底坑急停开关",
)
_LONGER_ITEMS = (
    "减速机润滑油",
    "制动衬清洁",
    "编码器清洁",
    "选层器动静触点",
    "曳引轮槽、悬挂装置",
    "限速器轮槽、限速器钢丝绳",
    "验证轿门关闭的电气安全装置",
    "层门、轿门门扇",
    "消防开关",
    "耗能缓冲器",
    "限速器张紧轮装置和电气安全装置",
    "电动机与减速机联轴器",
    "控制柜内各接线端子",
    "井道、对重、轿顶各反绳轮轴承部",
    "制动器上检测开关",
    "UCMP检测",
)
_REPAIR_ITEMS = (
    "更换门机皮带",
    "调整层门门锁",
    "更换轿门门刀",
    "更换平层感应器",
    "更换应急照明电池",
    "更换召唤按钮",
    "调整制动器间隙",
    "更换门机变频器",
)
_PLANS = (("half_month", 75), ("quarter", 10), ("half_year", 5), ("year", 3), ("repair", 7))


@dataclass(frozen=True)
class _Elevator:
    reg: str
    lowest: int
    top: int
    rated_mm_s: int
    company: str
    workers: tuple[tuple[str, str], ...]  # (worker id, card uid)
    runs0: int
    hours0: int


@functools.lru_cache(maxsize=4096)
def _elevator(site: str, dev: str) -> _Elevator:
    s = _site(site)
    r = random.Random(f"elevator|{site}|{dev}")
    etype = r.choices(("3110", "3120", "3130"), (80, 15, 5))[0]  # passenger / goods / bed
    year = r.randint(2005, 2024)
    reg = f"{etype}{s.region}{year:04d}{r.randrange(1, 1_000_000):06d}"
    top = r.choice((6, 7, 11, 11, 18, 18, 24, 26, 28, 33))
    lowest = r.choice((1, 1, -1, -1, -2))
    rated = 1000 if top <= 7 else (1750 if top <= 24 else 2500)
    company = r.choice(_MAINT_COMPANIES)
    workers = tuple(
        (f"W{s.region[-2:]}{r.randrange(1, 100_000):05d}", _hex_uid(f"card{reg}{n}", 4))
        for n in range(r.randint(2, 4))
    )
    age_days = (2025 - year) * 365
    return _Elevator(reg, lowest, top, rated, company, workers, age_days * 180, age_days * 5)


def _floor(ev: _Elevator, rng: random.Random) -> int:
    # Chinese numbering has no floor 0: B1 is -1, the ground floor 1.
    floor = rng.randint(ev.lowest, ev.top)
    return 1 if floor == 0 else floor


def _elevator_status(
    rng: random.Random, dev: str, seq: int, site: str, now_ms: int
) -> dict[str, object]:
    ev = _elevator(site, dev)
    inspection = rng.random() < 0.01
    maintenance = not inspection and rng.random() < 0.02
    direction = "stopped"
    if not (inspection or maintenance) and rng.random() < 0.4:
        direction = rng.choice(("up", "down"))
    faults: list[str] = []
    if rng.random() < 0.03:
        names = [n for n, _ in _FAULT_WEIGHTS]
        faults = [rng.choices(names, [w for _, w in _FAULT_WEIGHTS])[0]]
    if direction == "stopped":
        door_zone = rng.random() < 0.98
        door = rng.choices(("closed", "open", "opening", "closing"), (60, 25, 7, 8))[0]
        people = rng.random() < 0.35
    else:
        door_zone = rng.random() < 0.3
        door = "closed"
        people = rng.random() < 0.7
    if faults and faults[0] in ("trapped_in_zone", "trapped_out_of_zone"):
        direction, door, people = "stopped", "closed", True
        door_zone = faults[0] == "trapped_in_zone"
    body: dict[str, object] = {
        "reg": ev.reg,
        "dir": direction,
        "floor": _floor(ev, rng),
        "door": door,
        "door_zone": door_zone,
        "people": people,
        "inspection": inspection,
        "maintenance": maintenance,
        "faults": faults,
    }
    if rng.random() < 0.2:
        runs = ev.runs0 + 2 * seq
        body["counters"] = {
            "runs": runs % (1 << 32),
            "door_cycles": (2 * runs + 17) % (1 << 32),
            "run_hours": ev.hours0 + seq // 120,
        }
    return body


def _elevator_fault(
    rng: random.Random, dev: str, seq: int, site: str, now_ms: int
) -> dict[str, object]:
    ev = _elevator(site, dev)
    fault = rng.choices([n for n, _ in _FAULT_WEIGHTS], [w for _, w in _FAULT_WEIGHTS])[0]
    state = "raised" if rng.random() < 0.55 else "cleared"
    floor = (
        ev.top if fault == "overtravel_top" else ev.lowest if fault == "overtravel_bottom" else 0
    )
    body: dict[str, object] = {
        "reg": ev.reg,
        "fault": fault,
        "state": state,
        "floor": floor or _floor(ev, rng),
    }
    if fault in ("trapped_in_zone", "trapped_out_of_zone"):
        body["door"] = "closed"
        body["people"] = True
    elif fault == "door_open_while_moving":
        body["door"] = "open"
        body["speed_mm_s"] = rng.randint(50, 600)
    elif fault == "overspeed":
        body["speed_mm_s"] = int(ev.rated_mm_s * rng.uniform(1.15, 1.4))
    elif fault in ("overtravel_top", "overtravel_bottom"):
        body["speed_mm_s"] = rng.randint(0, 400)
    elif fault in ("door_fails_to_open", "door_fails_to_close"):
        body["door"] = "closed" if fault == "door_fails_to_open" else "open"
    if state == "cleared":
        body["raised_ts"] = now_ms - rng.randint(10_000, 2 * 3_600_000)
    if rng.random() < 0.6:
        body["detail"] = _FAULT_LABELS[fault]
    return body


def _elevator_maintenance(
    rng: random.Random, dev: str, seq: int, site: str, now_ms: int
) -> dict[str, object]:
    ev = _elevator(site, dev)
    worker, card = rng.choice(ev.workers)
    plan = rng.choices([p for p, _ in _PLANS], [w for _, w in _PLANS])[0]
    body: dict[str, object] = {
        "reg": ev.reg,
        "worker": worker,
        "card": card,
        "company": ev.company,
    }
    if rng.random() < 0.5:
        body["event"] = "sign_in"
        body["plan"] = plan
        body["time_in"] = now_ms - rng.randint(0, 60_000)
        return body
    time_out = now_ms - rng.randint(0, 60_000)
    body["event"] = "sign_out"
    body["plan"] = plan
    body["time_in"] = time_out - rng.randint(25, 120) * 60_000
    body["time_out"] = time_out
    if plan == "repair":
        items = rng.sample(_REPAIR_ITEMS, rng.randint(1, 2))
    else:
        items = rng.sample(_HALF_MONTH_ITEMS, rng.randint(10, 20))
        if plan != "half_month":
            items += rng.sample(_LONGER_ITEMS, rng.randint(3, 8))
    body["items"] = items
    return body


# ---------------------------------------------------------------------------------------------
# Markets

# code, name, meat?, price range (fen per kg, or per piece when counted), counted?
_GOODS: tuple[tuple[str, str, bool, int, int, bool], ...] = (
    ("10010001", "白条猪", True, 2000, 2800, False),
    ("10010002", "猪前腿肉", True, 2600, 3200, False),
    ("10010003", "猪后腿肉", True, 2600, 3300, False),
    ("10010004", "五花肉", True, 3000, 3800, False),
    ("10010005", "猪排骨", True, 4000, 5600, False),
    ("10010006", "猪里脊", True, 3200, 4000, False),
    ("10020001", "牛腩", True, 6800, 8800, False),
    ("10020002", "牛腱子", True, 8000, 10000, False),
    ("10030001", "羊肉", True, 7000, 9000, False),
    ("10040001", "鸡胸肉", True, 1800, 2400, False),
    ("10040002", "整鸡", True, 4500, 6500, True),
    ("20010001", "大白菜", False, 160, 400, False),
    ("20010002", "青菜", False, 300, 800, False),
    ("20010003", "菠菜", False, 600, 1200, False),
    ("20010004", "芹菜", False, 400, 900, False),
    ("20010005", "生菜", False, 600, 1200, False),
    ("20020001", "土豆", False, 300, 600, False),
    ("20020002", "白萝卜", False, 200, 500, False),
    ("20020003", "胡萝卜", False, 300, 600, False),
    ("20020004", "洋葱", False, 300, 600, False),
    ("20030001", "西红柿", False, 500, 1000, False),
    ("20030002", "黄瓜", False, 400, 900, False),
    ("20030003", "茄子", False, 500, 1000, False),
    ("20030004", "青椒", False, 500, 1200, False),
    ("20030005", "冬瓜", False, 200, 400, False),
    ("20030006", "西兰花", False, 800, 1600, False),
    ("20040001", "豆腐", False, 150, 300, True),
    ("20040002", "甜玉米", False, 150, 300, True),
)

_MEAT_ORIGINS = (
    "浙江省嘉兴市",
    "江苏省苏州市",
    "安徽省宣城市",
    "河南省漯河市",
    "山东省临沂市",
    "内蒙古锡林郭勒盟",
)
_VEG_ORIGINS = (
    "山东省寿光市",
    "河北省张家口市",
    "云南省昆明市",
    "浙江省杭州市萧山区",
    "江苏省南京市江宁区",
    "海南省三亚市",
    "甘肃省兰州市",
)
_SCALE_SW = ("V2.13", "ACS-15RT V3.0.7", "TM-A V1.8.2", "PC-100 V5.2", "DH-30 V2.0.11")
_PAY = (("wechat", 40), ("alipay", 25), ("cash", 15), ("card", 10), ("credit", 5), ("unionpay", 5))

N_TRADERS = 40
N_BUYERS = 300
BATCHES_PER_TRADER = 5


@dataclass(frozen=True)
class _Market:
    region: str
    code: str
    traders: tuple[tuple[str, str], ...]  # (trader id, card uid)
    number: str  # 6 digits, 100000..799999: the market in batch ids and trace codes


@functools.lru_cache(maxsize=1024)
def _market(site: str) -> _Market:
    s = _site(site)
    code = f"M{s.region}{s.number:03d}"
    traders = tuple(
        (f"T{s.region}{n + 1:04d}", _hex_uid(f"trader{code}{n}", 4)) for n in range(N_TRADERS)
    )
    number = f"{100_000 + _crc('market-no:' + site) % 700_000:06d}"
    return _Market(s.region, code, traders, number)


def _buyer(market: _Market, n: int) -> tuple[str, str]:
    return f"B{market.region}{n:05d}", _hex_uid(f"buyer{market.code}{n}", 7)


@dataclass(frozen=True)
class _Batch:
    batch_id: str
    trader: int
    goods: tuple[str, str, bool, int, int, bool]


@functools.lru_cache(maxsize=8192)
def _batch(site: str, date: str, serial: int) -> _Batch:
    market = _market(site)
    r = random.Random(f"batch|{site}|{date}|{serial}")
    batch_id = with_check_digit(f"{market.number}{date}{serial % 10_000_000:07d}")
    return _Batch(batch_id, (serial - 1) % N_TRADERS, r.choice(_GOODS))


_TERM_NOS: dict[str, dict[str, int]] = {}


@functools.lru_cache(maxsize=4096)
def _terminal(site: str, dev: str) -> tuple[str, int, str]:
    """Scale code, 2-digit terminal number (unique in its market), software version."""
    market = _market(site)
    h = _crc(f"terminal:{site}|{dev}")
    used = _TERM_NOS.setdefault(site, {})
    if dev not in used:
        no = h % 100
        while no in used.values():
            no = (no + 1) % 100
        used[dev] = no
    return f"{market.code}-{h % 1000:03d}", used[dev], _SCALE_SW[(h // 1000) % len(_SCALE_SW)]


def _market_entry(
    rng: random.Random, dev: str, seq: int, site: str, now_ms: int
) -> dict[str, object]:
    market = _market(site)
    date = local_date(now_ms)
    batch = _batch(site, date, seq)
    code, name, meat, _, _, counted = batch.goods
    trader, card = market.traders[batch.trader]
    if meat:
        # 动物检疫合格证明 (产品) number.
        cert = f"{market.region[:2]}{rng.randrange(100_000_000):08d}"
        place = rng.choice(_MEAT_ORIGINS)
        origin = f"{place} 定点屠宰厂 A{market.region[:2]}{rng.randrange(100):02d}"
        quantity = rng.randint(50, 800) * 1000 + rng.randrange(0, 1000, 5)
    else:
        # 承诺达标合格证 / 产地证明.
        cert = f"HG{market.region}{date}{rng.randrange(10_000):04d}"
        origin = rng.choice(_VEG_ORIGINS)
        quantity = rng.randint(100, 3000) * 1000
    body: dict[str, object] = {
        "market": market.code,
        "trader": trader,
        "batch_id": batch.batch_id,
        "cert_no": cert,
        "origin": origin,
        "goods_code": code,
        "goods_name": name,
        "quantity_g": quantity,
    }
    if rng.random() < 0.9:
        body["card"] = card
    if counted:
        body["pieces"] = max(1, quantity // rng.randint(400, 1500))
    if rng.random() < 0.05:
        # a receipt of a wholesale market outside the simulation (卡单同行): scanned or keyed;
        # the collector flags it source_unknown (simulators/chain.py makes hops that link)
        wholesale = f"{100_000 + rng.randrange(700_000):06d}"
        via = rng.choice(("qr", "barcode", "keyed"))
        if via == "keyed":
            body["source"] = {
                "tran_id": with_check_digit(f"{market.region}{date}01{rng.randrange(10**5):05d}"),
                "via": via,
            }
        else:
            body["source"] = {
                "trace_id": make_trace_code(wholesale, date, 1, rng.randrange(10_000)),
                "via": via,
            }
    return body


def _market_settlement(
    rng: random.Random, dev: str, seq: int, site: str, now_ms: int
) -> dict[str, object]:
    market = _market(site)
    date = local_date(now_ms)
    terminal, term_no, sw = _terminal(site, dev)
    trader_index = rng.randrange(N_TRADERS)
    seller, seller_card = market.traders[trader_index]
    n_lines = rng.choices((1, 2, 3, 4), (70, 18, 8, 4))[0]
    lines: list[dict[str, object]] = []
    for j in rng.sample(range(BATCHES_PER_TRADER), n_lines):
        batch = _batch(site, date, trader_index + 1 + N_TRADERS * j)
        code, name, meat, lo, hi, counted = batch.goods
        price = _round_to(rng.randint(lo, hi), 10)
        goods: dict[str, Any] = {"batch_id": batch.batch_id, "goods_code": code, "goods_name": name}
        # the lines every settlement terminal makes (wire/settlement.py)
        if counted:
            goods["price_fen_per_piece"] = price
            lines.append(settlement.counted_line(goods, rng.randint(1, 30)))
        else:
            # Price-computing scales: division 5 g; amount rounded half up to the fen.
            weight = _round_to(rng.randint(300, 30_000 if meat else 20_000), 5)
            due = settlement.priced(weight, price)
            lines.append(settlement.weighed_line(goods, weight, price, due))
    total = 0
    for line in lines:
        amount = line["amount_fen"]
        assert isinstance(amount, int)
        total += amount
    serial = seq % 100_000
    body: dict[str, object] = {
        "market": market.code,
        "terminal": terminal,
        "scale_sw": sw,
        "tran_id": with_check_digit(f"{market.region}{date}{term_no:02d}{serial:05d}"),
        "trace_id": make_trace_code(market.number, date, term_no, seq % 10_000),
        "seller": seller,
        "seller_card": seller_card,
        "lines": lines,
        "total_fen": total,
    }
    if rng.random() < 0.6:
        buyer, buyer_card = _buyer(market, rng.randrange(1, N_BUYERS + 1))
        body["buyer"] = buyer
        body["buyer_card"] = buyer_card
    if rng.random() < 0.8:
        body["pay"] = rng.choices([p for p, _ in _PAY], [w for _, w in _PAY])[0]
    return body


_MAKERS = {
    "cylinder.fill": _cylinder_fill,
    "cylinder.check": _cylinder_check,
    "elevator.status": _elevator_status,
    "elevator.fault": _elevator_fault,
    "elevator.maintenance": _elevator_maintenance,
    "market.entry": _market_entry,
    "market.settlement": _market_settlement,
    **goods.MAKERS,
}


def make_body(
    kind: str,
    rng: random.Random,
    dev: str,
    seq: int,
    site: str,
    *,
    now_ms: int | None = None,
) -> dict[str, object]:
    """A realistic body of ``kind`` for record ``seq`` of device ``dev`` at ``site``.

    Times in the body lie at or before ``now_ms`` (default: a simulated clock,
    ``BASE_MS + seq * SAMPLE_INTERVAL_MS``); pass the envelope's ``ts`` to keep them together.
    """
    maker = _MAKERS.get(kind)
    if maker is None:
        raise ValueError(f"unknown kind {kind!r}")
    if now_ms is None:
        now_ms = BASE_MS + seq * SAMPLE_INTERVAL_MS
    return maker(rng, dev, seq, site, now_ms)
