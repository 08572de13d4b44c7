"""What a record costs on the device, measured under the real interpreter: heap allocated
(``gc.mem_free`` deltas with the collector paused, checked against ``gc.mem_alloc``) to
make, sign and store one record, and to send it (read back from the log, one MQTT
PUBLISH); bytes per record in the flash log. Prints ``MEASURE`` lines for the report."""

import gc

import tesim

tesim.install()

from te import mqtt  # noqa: E402
from te.config import Keys  # noqa: E402
from te.flashlog import OVERHEAD, FlashLog  # noqa: E402
from te.fs import FS  # noqa: E402
from te.recorder import Ids, Recorder  # noqa: E402
from te.timekeeper import TimeKeeper  # noqa: E402
from tesim.world import new_world  # noqa: E402

KEY = b"\x7f" * 32
N = 50

BODIES = {
    "cylinder.check": {
        "cyl": "3301061512310042",
        "tag": "E28011700000020A1B2C3D4E",
        "station": "CZ330106123",
        "operator": "OP06001",
        "medium": "lpg",
        "stage": "pre",
        "decision": "allow",
        "reasons": [],
        "reg_ver": 12,
        "pre": {"appearance_ok": True, "residual_kpa": 120, "tare_g": 15200},
    },
    "cylinder.fill": {
        "cyl": "3301061512310042",
        "tag": "E28011700000020A1B2C3D4E",
        "station": "CZ330106123",
        "operator": "OP06001",
        "medium": "lpg",
        "target_net_g": 14500,
        "actual_net_g": 14490,
        "start_ts": 1763859603050,
        "end_ts": 1763859618270,
        "pre": {"appearance_ok": True, "residual_kpa": 120, "tare_g": 15200},
        "post": {"reweigh_g": 29690, "leak_ok": True, "checker": "OP06001"},
        "scale": "CZ330106123-S01",
    },
    "elevator.status": {
        "reg": "31103301062015000123",
        "dir": "up",
        "floor": 3,
        "door": "closed",
        "door_zone": False,
        "people": True,
        "inspection": False,
        "maintenance": False,
        "faults": [],
        "counters": {"runs": 181234, "door_cycles": 362485, "run_hours": 5012},
    },
    "elevator.fault": {
        "reg": "31103301062015000123",
        "fault": "trapped_out_of_zone",
        "state": "raised",
        "floor": 2,
        "door": "closed",
        "people": True,
        "speed_mm_s": 0,
        "detail": "非平层关人",
    },
    "elevator.maintenance": {
        "reg": "31103301062015000123",
        "worker": "W0612345",
        "card": "A1B2C3D4",
        "company": "杭州恒达电梯工程有限公司",
        "event": "sign_out",
        "plan": "half_month",
        "time_in": 1763859601010,
        "time_out": 1763862601010,
        "items": [
            "机房、滑轮间环境",
            "手动紧急操作装置",
            "驱动主机",
            "制动器间隙",
            "轿门门锁电气触点",
        ],
    },
    "market.settlement": {
        "market": "M330106042",
        "terminal": "M330106042-017",
        "scale_sw": "ACS-15RT V3.0.7",
        "tran_id": "33010625112317000014",
        "trace_id": "83301422511231700014",
        "seller": "T3301060007",
        "seller_card": "9C3A11F0",
        "buyer": "B33010600042",
        "buyer_card": "04A1B2C3D4E5F6",
        "pay": "wechat",
        "total_fen": 4801,
        "lines": [
            {
                "batch_id": "33010625112300000076",
                "goods_code": "10010004",
                "goods_name": "五花肉",
                "mode": "weighed",
                "weight_g": 1235,
                "price_fen_per_kg": 3280,
                "amount_fen": 4051,
            },
            {
                "batch_id": "33010625112300000472",
                "goods_code": "20040001",
                "goods_name": "豆腐",
                "mode": "counted",
                "pieces": 3,
                "price_fen_per_piece": 250,
                "amount_fen": 750,
            },
        ],
    },
}


def _fresh(root: str) -> Recorder:
    fs = FS()
    fs.mkdir("/tmp")
    fs.mkdir(root)
    fs.mkdir(root + "/state")
    log = FlashLog(fs, root + "/log", 16384, 1 << 24, 0)
    log.open()
    return Recorder(
        "CYL-S1-3F9A2C",
        Keys([(1, KEY)]),
        log,
        Ids(fs, root + "/state/ids.json"),
        TimeKeeper(new_world().clock),
    )


def _delta(fn: "object", n: int) -> "tuple[int, int]":
    gc.collect()
    gc.disable()
    free0 = gc.mem_free()
    alloc0 = gc.mem_alloc()
    for _ in range(n):
        fn()  # type: ignore[operator]
    free1 = gc.mem_free()
    alloc1 = gc.mem_alloc()
    gc.enable()
    gc.collect()
    return (free0 - free1) // n, (alloc1 - alloc0) // n


def test_heap_and_flash_per_record() -> None:
    for i, (kind, body) in enumerate(sorted(BODIES.items())):
        rec = _fresh(f"/tmp/measure{i}")
        rec.record(kind, body)  # warm up: imports, first segment file
        heap, alloc = _delta(lambda rec=rec, kind=kind, body=body: rec.record(kind, body), N)
        assert heap == alloc, (heap, alloc)  # the heap did not grow meanwhile
        flash = rec.flash_bytes // rec.made
        ((_, payload),) = rec.log.read(rec.seq, 1)
        assert abs(flash - (len(payload) + OVERHEAD)) <= 2, (flash, len(payload))

        def send(rec: Recorder = rec) -> None:
            ((_, p),) = rec.log.read(rec.seq, 1)
            mqtt.publish("t/CYL-S1-3F9A2C/rec", p, 1, 7)

        send_heap, _ = _delta(send, N)
        print(
            f"MEASURE {kind} heap_make_store={heap} heap_send={send_heap} "
            f"flash={flash} record={len(payload)}"
        )
        assert 0 < heap < 32768 and flash < 1200
        rec.log.close()


def test_heap_to_verify_what_the_agent_sends() -> None:
    """An ack and a gate answer opened as the firmware opens them: sealed under the newest
    key, and (acks) under the previous one, tried second; choosing a record's key by seq."""
    import json

    from te.config import Keys
    from wire import auth

    old, new = b"\x01" * 32, b"\x02" * 32
    dev = "ELV-B7-0001"
    ack = auth.terminal_ack(dev, 1234, [(1230, 1237)], [], new)
    ack_old = auth.terminal_ack(dev, 1234, [(1230, 1237)], [], old)
    ans = auth.gate_answer(dev, 123456789, "ab" * 16, "allow", [], 12, new, 311)
    keys = Keys([(1, old), (1000, new)])
    recent = keys.recent
    figures = {
        "ack": _delta(lambda: auth.open_terminal_ack(ack, dev, recent), N)[0],
        "ack_previous_key": _delta(lambda: auth.open_terminal_ack(ack_old, dev, recent), N)[0],
        "gate_answer": _delta(
            lambda: auth.check_gate_answer(json.loads(ans), dev, "ab" * 16, recent), N
        )[0],
        "key_for_seq": _delta(lambda: keys.for_seq(5000), N)[0],
    }
    print("MEASURE auth " + " ".join(f"{k}={v}" for k, v in figures.items()))
    assert figures["key_for_seq"] == 0, figures
    assert 0 < figures["ack"] < figures["ack_previous_key"] < 16384, figures
