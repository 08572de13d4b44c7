"""The warehouse at the agent against a real outbox and registry: stock kept from the
terminal's records, licences and recalls from signed commands, the dispatch gate's answers
sealed and bound to the nonce, each decision a record before the answer, and an item that
left refused again, across a restart too."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.commands import Commands
from edge_agent.outbox import Incoming, Outbox
from edge_agent.registry_cache import RegistryCache
from edge_agent.warehouse import DispatchGate, Warehouse
from hostlib.registry import Device, Registry, add_devices, revoke
from wire import auth, topics
from wire.canonical import canonical
from wire.command import sign_command
from wire.envelope import decode_record, make_record
from wire.schemas import default_validator

SITE = "CHEM-01"
K1, K_GW = b"\x01" * 32, b"\x09" * 32
DEV, REVOKED, READER = "WHS-CHEM-0001", "WHS-CHEM-0002", "CYL-CHEM-0001"
GW = "GW-CHEM-0001"
NONCE = "9f2c41d07be85a13c4e6f0b2a7d95e31"
OUTER = "https://id.gs1.org/00/169312345678901238"
U1 = "https://id.gs1.org/01/06930000000013/21/1"
U2 = "https://id.gs1.org/01/06930000000013/21/2"
U3 = "https://id.gs1.org/01/06930000000013/21/3"
LICENCE = {
    "licence": "JD-1",
    "kind": "toxic_purchase",
    "holder": "宁波港华电镀厂",
    "classes": ["chemical_toxic"],
    "quantity": 100_000,
    "unit": "g",
    "valid_from": "2020-01-01",
    "valid_until": "2099-12-31",
    "sites": [SITE],
}


def goods_in(seq: int, items: list[dict[str, Any]], lot: str = "L1") -> Incoming:
    body = {
        "site": SITE,
        "operator": "OP-01",
        "product_class": "chemical_toxic",
        "product": {"name": "氰化钠", "code": "UN1689"},
        "items": items,
        "quantity": 50_000,
        "unit": "g",
        "lot": lot,
    }
    default_validator().validate("goods.in", body)
    rec = make_record(DEV, seq, 1, "goods.in", int(time.time() * 1000), "ntp", body, K1)
    return Incoming(DEV, seq, "goods.in", canonical(rec))


def unit(i: str) -> dict[str, Any]:
    return {"scheme": "gs1", "id": i, "level": "unknown"}


class Site:
    def __init__(self, root: Path) -> None:
        self.root = root
        path = root / "devices.json"
        devs = [Device(d, K1, "warehouse-terminal", SITE) for d in (DEV, REVOKED)]
        devs.append(Device(READER, K1, "cylinder-reader", SITE))
        add_devices(path, devs, provisioned=1)
        revoke(path, REVOKED, from_seq=1, at=2, reason="stolen")
        self.registry = Registry(path)
        self.centre = Ed25519PrivateKey.generate()
        self.sent: list[tuple[str, bytes]] = []
        self.open()

    def open(self) -> None:
        self.outbox = Outbox(self.root / "outbox.sqlite", 10**9)
        self.warehouse = Warehouse(self.outbox)
        ident = Device(GW, K_GW, "gateway", SITE)
        self.gate = DispatchGate(
            self.outbox, self.warehouse, self.registry, ident, SITE, self._answer, lambda: 1
        )
        self.commands = Commands(
            self.outbox,
            RegistryCache(self.outbox),
            lambda t, p, r: True,
            SITE,
            self.centre.public_key(),
            self.registry,
            ident,
            "",
            self.warehouse,
        )

    def _answer(self, topic: str, payload: bytes) -> bool:
        # the decision is a committed record before any answer goes out
        rows = self.outbox.db.execute(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'goods.dispatch'"
        ).fetchone()[0]
        self.sent.append((topic, payload))
        self.records_at_answer = int(rows)
        return True

    def command(self, snap: dict[str, Any]) -> None:
        expires = int((time.time() + 600) * 1000)
        payload = sign_command({**snap, "site": SITE, "expires": expires}, self.centre)
        self.commands.on_command(topics.site_cmd(SITE), payload)

    def ask(self, dev: str = DEV, **over: Any) -> dict[str, Any] | None:
        req: dict[str, Any] = {
            "id": 5,
            "n": NONCE,
            "operator": "OP-01",
            "product_class": "chemical_toxic",
            "items": [U1],
            "quantity": 25_000,
            "unit": "g",
            "licence": "JD-1",
            "party": "宁波港华电镀厂",
        }
        req.update(over)
        req = {k: v for k, v in req.items() if v is not None}
        before = len(self.sent)
        self.gate.handle(topics.terminal_dispatch(dev), auth.dispatch_request(dev, req, K1))
        if len(self.sent) == before:
            return None
        topic, payload = self.sent[-1]
        assert topic == topics.terminal_cmd(dev)
        msg = json.loads(payload)
        # sealed with the terminal's key, bound to its nonce; without a valid nonce there is
        # none to bind to, and no terminal acts on such an answer
        if msg["n"] == "":
            assert msg["decision"] == "deny"
            assert not auth.check_gate_answer(msg, dev, "", [K1])
        else:
            assert auth.check_gate_answer(msg, dev, str(req["n"]), [K1])
        return dict(msg)

    def dispatch_records(self) -> list[dict[str, Any]]:
        rows = self.outbox.db.execute(
            "SELECT rec FROM outbox WHERE kind = 'goods.dispatch' ORDER BY seq"
        ).fetchall()
        out = []
        for (raw,) in rows:
            rec = decode_record(raw)
            default_validator().validate("goods.dispatch", rec["body"])
            out.append(rec)
        return out


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    s.command({"type": "licences", "version": 1, "licences": [LICENCE]})
    s.command({"type": "recalls", "version": 1, "lots": [{"lot": "BAD", "reason": "impurity"}]})
    s.warehouse.on_records([goods_in(1, [{**unit(OUTER), "level": "case", "inner": [U1, U2]}])])
    s.warehouse.on_records([goods_in(2, [unit(U3)], lot="BAD")])
    yield s
    s.outbox.close()


def test_allowed_dispatch_is_recorded_before_the_answer_and_the_item_cannot_leave_twice(
    site: Site,
) -> None:
    ans = site.ask()
    assert ans is not None and ans["decision"] == "allow" and ans["reasons"] == []
    assert site.records_at_answer == 1 and ans["seq"] == 1 and ans["reg_ver"] == 1
    again = site.ask(n="a" * 32)
    assert again is not None and again["decision"] == "deny"
    assert again["reasons"] == ["already_dispatched"]
    recs = site.dispatch_records()
    assert [r["body"]["decision"] for r in recs] == ["allow", "deny"]
    assert recs[1]["body"]["detail"] == [U1] and recs[1]["dev"] == GW
    # durable: a restarted agent still knows the item left, and what the licence let go
    site.outbox.close()
    site.open()
    third = site.ask(n="b" * 32)
    assert third is not None and third["reasons"] == ["already_dispatched"]
    assert site.warehouse.used("JD-1", "g") == 25_000


def test_outer_package_takes_its_inner_ones_and_every_reason_is_listed(site: Site) -> None:
    ans = site.ask(items=[OUTER], quantity=50_000)
    assert ans is not None and ans["decision"] == "allow"
    assert site.warehouse.stock([U1, U2]).dispatched == {U1, U2}
    # licence used up, an inner unit gone, one never received, a recalled lot
    ans = site.ask(n="c" * 32, items=[U2, U3, "drug:81234560000000011234"], quantity=60_000)
    assert ans is not None and ans["decision"] == "deny"
    assert ans["reasons"] == [
        "over_licence_quantity",
        "not_in_stock",
        "already_dispatched",
        "recalled_lot",
    ]


def test_licences_from_signed_commands_only(site: Site) -> None:
    forged = Ed25519PrivateKey.generate()
    payload = sign_command(
        {"type": "licences", "version": 9, "licences": [], "site": SITE, "expires": 2**50},
        forged,
    )
    site.commands.on_command(topics.site_cmd(SITE), payload)
    assert site.warehouse.licence_version == 1 and site.commands.rejected
    site.command({"type": "licences", "version": 2, "licences": []})
    ans = site.ask()
    assert ans is not None and ans["reasons"] == ["no_licence"] and ans["reg_ver"] == 2
    site.command({"type": "licences", "version": 1, "licences": [LICENCE]})  # a replay
    assert site.warehouse.licence("JD-1") is None


def test_requests_that_cannot_be_answered_safely_are_refused(site: Site) -> None:
    assert site.ask("WHS-CHEM-9999") is None  # unknown: no key to seal an answer with
    revoked = site.ask(REVOKED)
    assert revoked is not None and revoked["decision"] == "deny" and revoked["error"]
    reader = site.ask(READER)
    assert (
        reader is not None and reader["decision"] == "deny" and "cylinder-reader" in reader["error"]
    )
    bad_nonce = site.ask(n="short")
    assert bad_nonce is not None and bad_nonce["decision"] == "deny"
    bad = site.ask(quantity=-1)
    assert bad is not None and bad["decision"] == "deny" and "quantity" in bad["error"]
    got = [r for (r,) in site.outbox.db.execute("SELECT reason FROM quarantine ORDER BY id")]
    assert got == ["gate_unknown_device", "gate_revoked", "gate_wrong_device", "gate_nonce"]
    assert site.dispatch_records() == []  # none of these was a decision
    assert site.gate.decisions == {"allow": 0, "deny": 0, "error": 1, "refused": 4}


def test_stock_follows_pack_unpack_and_returns(site: Site) -> None:
    wh = site.warehouse
    wh.observe(
        "goods.pack",
        {
            "site": SITE,
            "operator": "OP-01",
            "action": "unpack",
            "parent": unit(OUTER),
            "children": [U1, U2],
        },
        1,
    )
    assert OUTER not in wh.in_stock() and {U1, U2} <= set(wh.in_stock())
    ans = site.ask(items=[OUTER])
    assert ans is not None and ans["reasons"] == ["not_in_stock"]
    ans = site.ask(n="d" * 32, items=[U1])
    assert ans is not None and ans["decision"] == "allow"
    wh.on_records([goods_in(3, [unit(U1)])])  # returned
    ans = site.ask(n="e" * 32, items=[U1])
    assert ans is not None and ans["decision"] == "allow"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_no_payload_breaks_the_gate(site: Site, payload: bytes) -> None:
    """Any bytes on the topic: an answer or a refusal, never an exception, never an allow."""
    before = len(site.sent)
    site.gate.handle(topics.terminal_dispatch(DEV), payload)
    for _, p in site.sent[before:]:
        assert json.loads(p)["decision"] == "deny"


def test_licence_classes_setting(tmp_path: Path) -> None:
    from edge_agent.settings import load_agent
    from hostlib.errors import ConfigError

    example = Path(__file__).resolve().parents[2] / "config" / "agent.example.toml"
    text = example.read_text()
    assert load_agent(example, files=False).licence_classes == (
        "chemical_toxic",
        "chemical_precursor",
    )
    cfg = tmp_path / "agent.toml"
    cfg.write_text(text.replace('"chemical_precursor"]', '"chemical_precursor", "drug"]'))
    assert "drug" in load_agent(cfg, files=False).licence_classes
    cfg.write_text(text.replace('"chemical_precursor"]', '"gold"]'))
    with pytest.raises(ConfigError, match="licence_classes"):
        load_agent(cfg, files=False)


def test_unsealed_forged_and_replayed_requests_change_nothing(site: Site) -> None:
    req = {
        "id": 9,
        "n": "c0ffee" * 4,
        "operator": "OP-01",
        "product_class": "chemical_toxic",
        "items": [U1],
        "quantity": 25_000,
        "unit": "g",
        "licence": "JD-1",
    }
    topic = topics.terminal_dispatch(DEV)
    # plain JSON, sealed with another key, or sealed for another device: refused
    for payload in (
        json.dumps(req).encode(),
        auth.dispatch_request(DEV, req, b"\x02" * 32),
        auth.dispatch_request(REVOKED, req, K1),
    ):
        site.gate.handle(topic, payload)
        ans = json.loads(site.sent[-1][1])
        assert ans["decision"] == "deny" and "not sealed" in ans["error"]
    assert site.dispatch_records() == [] and U1 in site.warehouse.in_stock()
    # the genuine request is decided once; the same bytes again are a replay
    sealed = auth.dispatch_request(DEV, req, K1)
    site.gate.handle(topic, sealed)
    assert json.loads(site.sent[-1][1])["decision"] == "allow"
    site.gate.handle(topic, sealed)
    again = json.loads(site.sent[-1][1])
    assert again["decision"] == "deny" and "decided before" in again["error"]
    assert len(site.dispatch_records()) == 1
    got = [r for (r,) in site.outbox.db.execute("SELECT reason FROM quarantine ORDER BY id")]
    assert got == ["gate_mac"] * 3 + ["gate_replay"]
    # across a restart too
    site.outbox.close()
    site.open()
    site.gate.handle(topic, sealed)
    assert "decided before" in json.loads(site.sent[-1][1])["error"]


def test_use_at_the_licences_other_sites_is_pushed_signed_and_counted(site: Site) -> None:
    assert site.ask()["decision"] == "allow"  # type: ignore[index]  # 25 000 g here
    # the centre says 60 000 g of JD-1 left at its other sites: 15 000 g are left here
    site.command(
        {
            "type": "licence_use",
            "version": 5,
            "use": [{"licence": "JD-1", "unit": "g", "elsewhere": 60_000}],
        }
    )
    assert site.warehouse.use_version == 5
    ans = site.ask(n="d" * 32, items=[U2], quantity=20_000)
    assert ans is not None and ans["reasons"] == ["over_licence_quantity"]
    rec = site.dispatch_records()[-1]["body"]
    assert (rec["used_here"], rec["used_elsewhere"], rec["use_ver"]) == (25_000, 60_000, 5)
    ans = site.ask(n="e" * 32, items=[U2], quantity=15_000)
    assert ans is not None and ans["decision"] == "allow"
    # a replayed older push, a forged one and a malformed one change nothing
    site.command({"type": "licence_use", "version": 4, "use": []})
    forged = sign_command(
        {"type": "licence_use", "version": 9, "use": [], "site": SITE, "expires": 2**50},
        Ed25519PrivateKey.generate(),
    )
    site.commands.on_command(topics.site_cmd(SITE), forged)
    site.command(
        {
            "type": "licence_use",
            "version": 6,
            "use": [{"licence": "JD-1", "unit": "g", "elsewhere": -1}],
        }
    )
    site.command({"type": "licence_use", "version": 7, "use": [{"licence": "JD-1"}]})
    assert site.warehouse.use_version == 5
    assert site.warehouse.used_elsewhere("JD-1", "g") == 60_000
    assert site.commands.rejected.get("malformed") == 2
    # kept across a restart; a newer push without the licence: used nowhere else
    site.outbox.close()
    site.open()
    assert site.warehouse.used_elsewhere("JD-1", "g") == 60_000
    site.command({"type": "licence_use", "version": 8, "use": []})
    assert site.warehouse.used_elsewhere("JD-1", "g") == 0
