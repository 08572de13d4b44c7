"""A site for the sneakernet tests: a device registry with terminals and the gateway, the
centre's command key pair, and a real agent outbox filled with signed records."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_agent.outbox import Incoming, Outbox
from hostlib.registry import Device, Registry, add_devices
from simulators.records import make_body
from wire.canonical import canonical
from wire.command import new_private_key, public_pem
from wire.envelope import make_record

SITE, GW = "S1", "GW-S1"
GW_KEY = b"\x02" * 32
NOW_MS = 1_763_900_000_000
KINDS = ("cylinder.fill", "market.settlement", "elevator.status")


@dataclass
class Site:
    root: Path
    registry: Registry
    registry_path: Path
    terminals: list[Device]
    gateway: Device
    command_key: Ed25519PrivateKey
    command_pub: Path

    def record(self, dev: Device, seq: int) -> bytes:
        kind = KINDS[seq % len(KINDS)]
        body = make_body(kind, random.Random(seq), dev.dev, seq, SITE)
        return canonical(make_record(dev.dev, seq, 1, kind, NOW_MS + seq, "ntp", body, dev.key))

    def fill(self, outbox: Outbox, per_device: int, first: int = 1) -> int:
        n = 0
        for lo in range(first, first + per_device, 1000):
            items = [
                Incoming(d.dev, s, KINDS[s % len(KINDS)], self.record(d, s))
                for d in self.terminals
                for s in range(lo, min(lo + 1000, first + per_device))
            ]
            n += len(outbox.add_many(items).stored)
        return n


def make_site(root: Path, terminals: int = 3) -> Site:
    root.mkdir(parents=True, exist_ok=True)
    devs = [
        Device(f"CYL-S1-{i:04d}", bytes([0x10 + i]) * 32, "cylinder-reader", SITE)
        for i in range(1, terminals + 1)
    ]
    gw = Device(GW, GW_KEY, "gateway", SITE)
    path = root / "devices.json"
    add_devices(path, [*devs, gw], provisioned=1)
    key = new_private_key()
    pub = root / "command.pub"
    pub.write_bytes(public_pem(key))
    return Site(root, Registry(path), path, devs, gw, key, pub)
