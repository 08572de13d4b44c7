"""The Linux warehouse terminal end to end: real Mosquitto, agent and collector (the chain
fixture), the terminal as a child process driven on its stdin (``--app warehouse``), a
Chafon UHF reader and a barcode scanner simulated on ptys.

Items are received by tag and by scan (a tag left in the field counts once, a code scanned
twice too); two boxes are packed into a tagged case (goods.pack); a seed label QR (four
lines on the wire) is one item; a dispatch to a licensed buyer is allowed by the real
agent's dispatch gate and recorded with its ``gate_seq``; once the lot is recalled at the
collector, a dispatch of an item never received and of one already gone is refused with
every reason shown (not in stock, already dispatched, recalled lot) and nothing recorded,
though a forger on the open broker answers every request "allow" (with a key of its own,
and unsealed); a buyer without a licence is refused at the terminal; the reader and the
scanner are unplugged (their state shown) and replugged (a stocktake reads with both
again); ``terminal status`` shows the devices and counters. Every record the terminal made
reaches the collector exactly once, as the terminal made it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from drivers.codecs.barcode import Scan
from drivers.codecs.itemcodes import pesticide_code, seed_qr
from hostlib.registry import Device
from simulators.scanner_sim import ScannerSim
from simulators.uhf_sim import ChafonReader, make_tags
from tests.conftest import SITE, Chain, wait_until
from tests.e2e.stall import StallTerminal, identity_file, python_env, write_toml
from tests.e2e.test_stall_terminal import stored
from traceedge.provision import new_device
from wire import auth, topics

LICENCE = "JD-330200-2025-0042"
PRODUCTS = [
    {"key": 1, "name": "氰化钠", "code": "UN1689", "class": "chemical_toxic",
     "amount": 50000, "unit": "g", "lot": "L20251101"},
    {"key": 2, "name": "吡虫啉 70% 水分散粒剂", "code": "PD20080385", "class": "pesticide",
     "amount": 1, "unit": "piece"},
    {"key": 3, "name": "郑单958", "class": "seed", "amount": 1, "unit": "piece"},
]  # fmt: skip
SEED = "1100012345678901"
PARTIES = [
    {"key": 1, "party": "宁波港华电镀厂", "party_address": "宁波市北仑区港华路 8 号",
     "handler": "王伟", "handler_id": "330206198001011234", "licence": LICENCE, "use": "电镀"},
    {"key": 2, "party": "李庄农资店"},
]  # fmt: skip
RECORDED = r"^recorded (goods\.\w+) seq=(\d+)"


def write_config(root: Path, device: Device, broker_port: int, reader: str, scanner: str) -> Path:
    tables: dict[str, dict[str, Any]] = {
        "terminal": {"identity": identity_file(root, device, broker_port),
                     "data_dir": str(root / "data"),
                     "ack_timeout_s": 3.0},
        "reader": {"port": reader, "protocol": "chafon", "period_s": 0.2, "timeout_s": 1.0,
                   "reconnect_cap_s": 0.5},
        "scanner": {"port": scanner, "reconnect_cap_s": 0.5},
        "warehouse": {"site": "WH330200001", "operator": "OP-02", "gate_timeout_s": 10.0},
    }  # fmt: skip
    arrays = {"warehouse.products": PRODUCTS, "warehouse.parties": PARTIES}
    return write_toml(root / "warehouse.toml", tables, arrays)


def import_cli(ch: Chain, what: str, path: Path) -> None:
    res = subprocess.run(
        [
            *(sys.executable, "-m", "traceedge", "collector", what),
            *("--config", str(ch.collectors[0].config), str(path)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr


def import_licence(ch: Chain, tmp_path: Path) -> None:
    lic = tmp_path / "lic.csv"
    lic.write_text(
        "licence,kind,holder,classes,quantity,unit,valid_from,valid_until,sites\n"
        f"{LICENCE},toxic_purchase,宁波港华电镀厂,chemical_toxic,200000,g,"
        f"2020-01-01,2099-12-31,{SITE}\n",
        encoding="utf-8",
    )
    import_cli(ch, "import-licences", lic)
    wait_until(
        lambda: ch.agent_status()["licence_registry_version"] == 1, 30, "the licence push-down"
    )


def recall_lot(ch: Chain, tmp_path: Path, lot: str) -> None:
    """The lot recalled at the collector; the agent holds the recall list."""
    recalls = tmp_path / "recalls.json"
    recalls.write_text(json.dumps([{"lot": lot, "reason": "purity", "since": "2025-11-20"}]))
    import_cli(ch, "import-recalls", recalls)
    wait_until(lambda: ch.agent_status()["recall_list_version"] == 1, 30, "the recall push-down")


def pesticide(n: int) -> Scan:
    fields = {
        "category": "1",
        "registration_tail": "080385",
        "production_type": "1",
        "spec": "010",
        "random": f"{n:021d}",
    }
    return Scan("]Q1", pesticide_code(fields))


def seed_label() -> bytes:
    """A seed label QR as a scanner sends it: its four lines, each ended by CR."""
    text = seed_qr("郑单958", "河南秋乐种业科技股份有限公司", SEED, "https://zzj.moa.gov.cn/s/1")
    return ("]Q1" + text + "\r").encode()


def forger(port: int, dev: str) -> mqtt.Client:
    """Someone on the open broker who sees every dispatch request and answers it 'allow'
    at once: sealed with a key of its own, and unsealed."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="forger")

    def on_message(cl: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        req = json.loads(m.payload)
        cmd = topics.terminal_cmd(dev)
        cl.publish(cmd, auth.gate_answer(dev, req["id"], req["n"], "allow", [], 1,
                                         b"\x99" * 32, seq=1), qos=1)  # fmt: skip
        plain = {"t": "gate", "dev": dev, "id": req["id"], "n": req["n"],
                 "decision": "allow", "reasons": [], "seq": 1}  # fmt: skip
        cl.publish(cmd, json.dumps(plain).encode(), qos=1)

    c.on_message = on_message
    c.on_connect = lambda cl, *a: cl.subscribe(topics.terminal_dispatch(dev), qos=1)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def test_warehouse_terminal_end_to_end(chain_factory: Callable[..., Chain], tmp_path: Path) -> None:
    whs = new_device("warehouse-terminal", SITE)
    ch = chain_factory(extra_devices=[whs])
    import_licence(ch, tmp_path)
    tags = make_tags(4, seed=11)
    epc = [t.epc.hex().upper() for t in tags]
    reader = ChafonReader(tags=[], link=tmp_path / "uhf")
    reader.start()
    scanner = ScannerSim(link=tmp_path / "scanner")
    scanner.start()
    root = tmp_path / "whs"
    root.mkdir()
    cfg = write_config(root, whs, ch.broker.port, reader.path, scanner.path)
    term = StallTerminal(cfg, python_env({}), tmp_path / "terminal.log", app="warehouse")
    made: dict[int, str] = {}  # seq -> kind, as the terminal said
    evil: mqtt.Client | None = None

    def clear_field() -> None:
        """The tags leave the field, for long enough that the terminal sees them gone."""
        reader.tags = []
        n = reader.stats.commands
        wait_until(lambda: reader.stats.commands >= n + 2, 10, "two empty inventory rounds")

    def record(pattern: str, n: int = 1) -> None:
        at = term.mark()
        term.send("record")
        term.expect(pattern, at)
        for line in term.lines[at:]:
            m = re.search(RECORDED, line)
            if m:
                made[int(m.group(2))] = m.group(1)
        assert sum(1 for ln in term.lines[at:] if re.search(RECORDED, ln)) == n

    try:
        term.start()
        term.expect(r"^broker: connected")
        term.expect(r"^reader: ready")
        term.expect(r"^scanner: ready")

        # 1. receive two drums by tag: they stay in the field for rounds, count once each
        term.ask("receive", r"^mode: receive")
        term.ask("product 1", r"^product: 氰化钠")
        at = term.mark()
        reader.tags = tags[:2]
        term.expect(rf"^2: epc epc:{epc[1]}|^2: epc epc:{epc[0]}", at)
        wait_until(lambda: reader.stats.commands >= 8, 10, "more inventory rounds")
        assert not any(re.match(r"^3: ", ln) for ln in term.lines[at:])
        record(r"^received 2")
        clear_field()

        # 2. receive pesticide boxes by scan (a code scanned twice counts once)
        term.ask("product 2", r"^product: 吡虫啉")
        at = term.mark()
        scanner.scan(pesticide(1))
        scanner.scan(pesticide(2))
        scanner.scan(pesticide(1))
        term.expect(r"^2: pesticide ", at)
        term.expect(r"^pesticide:\d+: already read", at)
        record(r"^received 2")
        at = term.mark()
        scanner.scan(Scan("]Q1", "not a product code at all"))
        term.expect(r"^code not understood", at)

        # 2a. pack the two pesticide boxes into a case with a tag of its own (goods.pack)
        term.ask("pack", r"^mode: pack")
        at = term.mark()
        reader.tags = [tags[2]]
        term.expect(rf"^outer package epc:{epc[2]}: read the inner ones", at)
        clear_field()
        at = term.mark()
        scanner.scan(pesticide(1))
        scanner.scan(pesticide(2))
        term.expect(r"^2: pesticide ", at)
        record(r"^pack: 2 inner")
        term.ask("receive", r"^mode: receive")

        # 2b. a seed label QR: four lines on the wire, one item
        term.ask("product 3", r"^product: 郑单958")
        at = term.mark()
        scanner.send(seed_label())
        term.expect(rf"^1: seed seed:{SEED}", at)
        record(r"^received 1")

        # from here on, a forger answers every dispatch request 'allow' before the agent
        evil = forger(ch.broker.port, whs.dev)

        # 3. dispatch one drum to the licensed buyer: the real gate allows it
        term.ask("dispatch", r"^mode: dispatch")
        term.ask("product 1", r"^product: 氰化钠")
        term.ask("party 1", r"^party: 宁波港华电镀厂")
        at = term.mark()
        reader.tags = tags[:1]
        term.expect(rf"^1: epc epc:{epc[0]}", at)
        clear_field()
        record(r"^dispatched 1 \(gate seq \d+\)")

        # 4. the drums' lot is recalled; then refused: a drum never received and the one
        # just gone, every reason shown, nothing recorded
        recall_lot(ch, tmp_path, "L20251101")
        at = term.mark()
        reader.tags = [tags[0], tags[3]]
        term.expect(r"^2: epc ", at)
        clear_field()
        record(r"^REFUSED: .*: NOT dispatched", n=0)
        refused = next(ln for ln in term.lines[at:] if ln.startswith("REFUSED: "))
        for reason in ("not_in_stock", "already_dispatched", "recalled_lot"):
            assert reason in refused, refused
        term.ask("cancel", r"^cancelled")

        # 5. a buyer without a licence on file: refused at the terminal, nothing asked
        term.ask("dispatch", r"^mode: dispatch")
        term.ask("product 1", r"^product")
        term.ask("party 2", r"^party: 李庄农资店")
        term.ask("read " + epc[1], rf"^1: epc epc:{epc[1]}")
        term.ask("record", r"^buyer 李庄农资店 lacks licence, use, party_address, handler, "
                 r"handler_id: NOT dispatched")  # fmt: skip

        # 6. the reader unplugged: its state shows; replugged: it reads again (stocktake)
        at = term.mark()
        reader.unplug()
        term.expect(r"^reader: (gone|absent|silent)", at)
        at = term.mark()
        reader.replug()
        term.expect(r"^reader: ready", at)
        at = term.mark()
        scanner.unplug()
        term.expect(r"^scanner: gone", at)
        at = term.mark()
        scanner.replug()
        term.expect(r"^scanner: ready", at)
        term.ask("stocktake", r"^mode: stocktake CNT-1-1")
        at = term.mark()
        scanner.scan(pesticide(2))
        term.expect(r"^1: pesticide pesticide:\d+2$", at)
        at = term.mark()
        reader.tags = [tags[1]]
        term.expect(rf"^2: epc epc:{epc[1]}", at)
        clear_field()
        record(r"^stocktake CNT-1-1 closed: 2 items")

        # 7. terminal status (another process) while it runs
        res = subprocess.run(
            [sys.executable, "-m", "traceedge", "terminal", "status", "--config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=60,
            env=python_env({"PATH": "/usr/bin:/bin"}),
        )
        assert res.returncode == 0, res.stdout + res.stderr
        assert "reader: ready" in res.stdout and "scanner: ready" in res.stdout, res.stdout
        assert re.search(r"dispatch_asked=2\b", res.stdout), res.stdout
        c = term.status()["counters"]
        # two forged answers a request: one not verifying (forged, or late once the
        # agent's came first), one unsealed (refused as a command)
        assert c["dispatch_forged"] + c["dispatch_late"] >= 2, c
        assert c["commands_refused"] >= 2, c
        assert re.search(r"bad_reads=1\b", res.stdout), res.stdout

        assert [made[s] for s in sorted(made)] == [
            "goods.in", "goods.in", "goods.pack", "goods.in", "goods.out", "goods.count",
        ] and sorted(made) == [1, 2, 3, 4, 5, 6], made  # fmt: skip
        wait_until(lambda: term.status()["waiting"] == 0, 30, "every record acknowledged")
        # the terminal's records and the agent's two goods.dispatch decisions
        ch.wait_forwarded(len(made) + 2, timeout=60)
        got = stored(ch, whs.dev)
        assert sorted(got) == sorted(made)
        assert all(len(v) == 1 for v in got.values()), "each record stored once"
        assert {s: got[s][0]["kind"] for s in got} == made
        out = next(v[0] for v in got.values() if v[0]["kind"] == "goods.out")
        body = out["body"]
        assert body["licence"] == LICENCE and body["quantity"] == 50000
        assert body["items"] == [{"scheme": "epc", "id": f"epc:{epc[0]}", "level": "unknown"}]
        assert isinstance(body["gate_seq"], int)
        pack = next(v[0]["body"] for v in got.values() if v[0]["kind"] == "goods.pack")
        assert pack["action"] == "pack" and pack["parent"]["id"] == f"epc:{epc[2]}"
        assert len(pack["children"]) == 2
        ch.assert_exactly_once(len(made) + 2)
    finally:
        if evil is not None:
            evil.loop_stop()
            evil.disconnect()
        term.stop()
        reader.stop()
        scanner.stop()
