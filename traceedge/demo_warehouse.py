"""The demo's warehouse (docs/warehouse.md): a few seconds of a store's in/out at the site.

* the operator imports licences and a recalled lot at the collector with the CLI
  (``traceedge collector import-licences`` / ``import-recalls`` against the demo's
  collector config); the collector pushes them down signed and the demo waits until the
  agent holds them (its status: ``licence_registry_version``, ``recall_list_version``);
* a warehouse terminal (:class:`simulators.warehouse_terminal.WarehouseTerminal`, a device
  of type ``warehouse-terminal``) receives a toxic chemical by its GS1 codes, a pesticide
  by its 32-digit code and a drug by its code; asks the agent's dispatch gate three times
  (allowed against the licence; refused without a licence; refused for the recalled lot);
  and counts its stock, one item short, which the collector's stocktake check finds.

Every terminal record and every gate decision (a ``goods.dispatch`` record of the gateway)
goes up the chain like any other record: :attr:`WarehouseDay.records` counts both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector import warehouse
from collector.warehouse import Stocktake
from drivers.codecs.itemcodes import drug_code, pesticide_code
from edge_agent.status import read_status
from hostlib.errors import TraceedgeError
from hostlib.registry import Device
from hostlib.sqlite import open_ro
from simulators.warehouse_terminal import WarehouseTerminal, scan
from wire.checkdigit import with_check_digit

LICENCE = "JD-DEMO-0042"
RECALLED_LOT = "D-2411-07"
COUNT_ID = "CNT-DEMO-1"

BUYER = {
    "party": "宁波港华电镀厂",
    "party_address": "宁波市北仑区新碶街道8号",
    "handler": "李敏",
    "handler_id": "330206197512124321",
    "use": "电镀",
}


def licences_csv(site: str) -> str:
    return (
        "licence,kind,holder,classes,quantity,unit,valid_from,valid_until,sites\n"
        f"{LICENCE},toxic_purchase,{BUYER['party']},chemical_toxic,100000,g,"
        f"2020-01-01,2099-12-31,{site}\n"
    )


RECALLS = [{"lot": RECALLED_LOT, "reason": "药品召回(二级)", "product": "阿莫西林胶囊"}]


def gs1(serial: str) -> dict[str, Any]:
    """A unit of the toxic chemical, by its GS1 barcode (GTIN + serial)."""
    return scan(f"]C101{with_check_digit('0693000000001')}21{serial}")


def pesticide(n: int) -> dict[str, Any]:
    """A pesticide unit, by the 32 digits of its QR code (农药标签二维码)."""
    fields: dict[str, object] = {
        "category": "1",
        "registration_tail": "080385",
        "production_type": "1",
        "spec": "010",
        "random": f"{n:021d}",
    }
    return scan("]Q1" + pesticide_code(fields))


def drug(n: int) -> dict[str, Any]:
    """A drug unit, by its 20-digit drug trace code (药品追溯码)."""
    return scan(drug_code("8123456", f"{n:09d}", "1234"), level="unit")


@dataclass
class WarehouseDay:
    """What the terminal did and what the gate answered."""

    received: int = 0
    allowed_seq: int = 0  # the gate's record that let the toxic chemical leave
    refused: list[list[str]] = field(default_factory=list)  # the reasons of each refusal
    counted: int = 0
    terminal_records: int = 0
    gate_records: int = 0  # goods.dispatch records, one per answer

    @property
    def records(self) -> int:
        return self.terminal_records + self.gate_records

    @property
    def allowed(self) -> int:
        return 1 if self.allowed_seq else 0


def import_registers(config: Path, folder: Path, site: str, say: Callable[[str], None]) -> None:
    """Licences and the recalled lot, imported as an operator does: the CLI on the
    collector's config."""
    folder.mkdir(parents=True, exist_ok=True)
    lic, rec = folder / "licences.csv", folder / "recalls.json"
    lic.write_text(licences_csv(site), encoding="utf-8")
    rec.write_text(json.dumps(RECALLS, ensure_ascii=False), encoding="utf-8")
    for cmd, path in (("import-licences", lic), ("import-recalls", rec)):
        argv = [sys.executable, "-m", "traceedge", "collector", cmd, "--config", str(config)]
        res = subprocess.run(
            [*argv, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if res.returncode != 0:
            raise TraceedgeError(f"traceedge collector {cmd} failed:\n{res.stderr.strip()}")
        say(f"warehouse: traceedge collector {cmd} {path.name}: {res.stdout.strip()}")


def wait_agent_holds(
    outbox: Path, say: Callable[[str], None], stop: threading.Event, timeout_s: float = 60.0
) -> None:
    """Until the agent holds the pushed licences and recalled lots (progress each second),
    or ``stop`` is set."""
    deadline = time.monotonic() + timeout_s
    shown = 0.0
    while not stop.is_set():
        s = read_status(outbox)
        lic, rec = int(s["licence_registry_version"]), int(s["recall_list_version"])
        if lic >= 1 and rec >= 1:
            say(
                f"warehouse: the agent holds licence registry version {lic} "
                f"({s['licences_known']} licence(s) for this site) and recall list version {rec}"
            )
            return
        if time.monotonic() > deadline:
            raise TraceedgeError(
                f"the agent did not get the licences and recalls in {timeout_s:.0f} s "
                f"(registry version {lic}, recall list version {rec})"
            )
        if time.monotonic() - shown >= 1.0:
            shown = time.monotonic()
            say(
                f"warehouse: waiting for the signed push to reach the agent "
                f"(registry version {lic}, recall list version {rec})"
            )
        time.sleep(0.2)


def _acked(term: WarehouseTerminal, stop: threading.Event, what: str) -> None:
    """Until the agent acked all ``term`` published (it keeps its stock from what it stored)."""
    deadline = time.monotonic() + 30
    while not term.wait_acked(0.5):
        if stop.is_set():
            raise TraceedgeError("stopped")
        if time.monotonic() > deadline:
            raise TraceedgeError(f"the agent did not ack {what} in 30 s")


def run_day(
    port: int, device: Device, site: str, say: Callable[[str], None], stop: threading.Event
) -> WarehouseDay:
    """Receive, dispatch (one allowed, two refused), count; a few seconds."""
    day = WarehouseDay()
    term = WarehouseTerminal(port, device, site)
    try:
        chem = {"product_class": "chemical_toxic", "product": {"name": "氰化钠"}, "unit": "g"}
        term.receive([gs1("CN1"), gs1("CN2")], **chem, quantity=50_000, lot="L-CN-2411")
        term.receive(
            [pesticide(1), pesticide(2)],
            product_class="pesticide",
            product={"name": "吡虫啉可湿性粉剂", "code": "PD20080385"},
            quantity=2,
            unit="piece",
            lot="P-2411",
        )
        drugs = {"product_class": "drug", "product": {"name": "阿莫西林胶囊"}, "unit": "piece"}
        term.receive([drug(1), drug(2)], **drugs, quantity=2, lot=RECALLED_LOT)
        day.received = 3
        _acked(term, stop, "the receipts")
        sale = {**chem, "quantity": 25_000, "lot": "L-CN-2411", **BUYER}
        answers = [
            term.dispatch([gs1("CN1")], {**sale, "licence": LICENCE}),
            term.dispatch([gs1("CN2")], sale),  # no licence named
            term.dispatch([drug(1)], {**drugs, "quantity": 1, "party": "患者"}),
        ]
        for ans in answers:
            if "error" in ans:
                raise TraceedgeError(f"warehouse: the dispatch gate could not decide: {ans}")
            if ans["decision"] == "allow":
                day.allowed_seq = int(ans["seq"])
            else:
                day.refused.append([str(r) for r in ans["reasons"]])
        day.gate_records = len(answers)
        # the stocktake: one pesticide unit is not found on the shelf
        left = [gs1("CN2"), pesticide(1), drug(1), drug(2)]
        term.count(COUNT_ID, left)
        day.counted = len(left)
        day.terminal_records = len(term.records)
        _acked(term, stop, "the stocktake")
    finally:
        term.close()
    refused = ", ".join("+".join(r) for r in day.refused)
    say(
        f"warehouse: {day.received} received (toxic chemical by GS1, pesticide by its "
        f"32-digit code, drug by its trace code); dispatch allowed against licence {LICENCE} "
        f"(gate seq {day.allowed_seq}); refused: {refused}; stocktake {COUNT_ID}: "
        f"{day.counted} items counted"
    )
    return day


class StoreScene(threading.Thread):
    """The warehouse beside the demo's fleet: licences in, then a few seconds of a store.
    :meth:`stop` ends it (between steps) and waits for it, so it neither holds the agent's
    store open nor runs an import while the demo stops the agent and the collector."""

    def __init__(
        self,
        collector_config: Path,
        folder: Path,
        outbox: Path,
        port: int,
        device: Device,
        site: str,
        say: Callable[[str], None],
    ) -> None:
        super().__init__(name="warehouse", daemon=True)
        self.args = (collector_config, folder, outbox, port, device, site)
        self.say = say
        self.day: WarehouseDay | None = None
        self.error: Exception | None = None
        self._stop_it = threading.Event()

    def run(self) -> None:
        config, folder, outbox, port, device, site = self.args
        try:
            import_registers(config, folder, site, self.say)
            if not self._stop_it.is_set():
                wait_agent_holds(outbox, self.say, self._stop_it)
            if not self._stop_it.is_set():
                self.day = run_day(port, device, site, self.say, self._stop_it)
        except Exception as exc:  # reported by the demo's loop
            self.error = exc

    def stop(self) -> None:
        self._stop_it.set()
        self.join(timeout=70)  # an import under way ends first (60 s at most)


def check_stocktake(store: Path, site: str, timeout_s: float = 15.0) -> tuple[Stocktake, int]:
    """The collector's view of the count and its ``stocktake_missing`` alarms (it checks
    closed counts every second)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with open_ro(store) as db:
            st = warehouse.stocktake(db, site, COUNT_ID)
            alarms = db.execute(
                "SELECT COUNT(*) FROM alarms WHERE kind = ? AND detail LIKE ?",
                (warehouse.ALARM, f"%{COUNT_ID}%"),
            ).fetchone()[0]
        if st is None:
            raise TraceedgeError(f"the collector has no stocktake {COUNT_ID}")
        if alarms or not st.missing or time.monotonic() > deadline:
            return st, int(alarms)
        time.sleep(0.5)
