"""A site for the sneakernet tests: a device registry with terminals and the gateway, the
centre's command key pair, and a real agent outbox filled with signed records; and a month
of a busy site's records (:func:`fill_month`) for a real agent's outbox; the commands run
as their own processes (:func:`traceedge`, :func:`import_refused`)."""

from __future__ import annotations

import multiprocessing
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_agent.outbox import Incoming, Outbox
from hostlib.registry import FAMILY_OF_TYPE, Device, Registry, add_devices
from simulators.records import make_body, pick_kind
from wire.canonical import canonical, canonical_trusted
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


MONTH_MS = 30 * 24 * 3600 * 1000
MONTH_CHUNK = 5000


def month_chunk(devices: list[Device], n: int, lo: int, hi: int, start_ms: int) -> list[Incoming]:
    """Records ``lo``..``hi - 1`` of a month of ``n``: record ``i`` is made by
    ``devices[i % len(devices)]`` (its seq ``i // len(devices) + 1``, boot 1), captured at
    ``start_ms + i * MONTH_MS // n``, of a kind its family makes, signed with its key as
    its terminal would (the same ``make_body`` and ``make_record`` as the fleet simulator)."""
    rng = random.Random(lo)
    out = []
    for i in range(lo, hi):
        d = devices[i % len(devices)]
        seq = i // len(devices) + 1
        ts = start_ms + i * MONTH_MS // n
        kind = pick_kind(FAMILY_OF_TYPE[d.type], rng)
        body = make_body(kind, rng, d.dev, seq, d.site, now_ms=ts)
        # make_record checked the values' domain when it signed them: encode without again
        rec = canonical_trusted(make_record(d.dev, seq, 1, kind, ts, "ntp", body, d.key))
        out.append(Incoming(d.dev, seq, kind, rec))
    return out


def _month_chunk(args: tuple[list[Device], int, int, int, int]) -> list[Incoming]:
    return month_chunk(*args)


def fill_month(
    outbox_path: Path, devices: list[Device], n: int, start_ms: int, workers: int = 2
) -> dict[str, int]:
    """Commit ``n`` records of :func:`month_chunk` to the outbox at ``outbox_path`` through
    :meth:`Outbox.add_many`, 5,000 a transaction, in order (row ids follow capture time);
    ``workers`` processes sign while this one commits. Returns each device's last seq."""
    chunks = [
        (devices, n, lo, min(lo + MONTH_CHUNK, n), start_ms) for lo in range(0, n, MONTH_CHUNK)
    ]
    outbox = Outbox(outbox_path, 1024**4)
    stored = 0
    try:
        # spawn, not fork: the test process runs threads (the platform's server)
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for items in pool.imap(_month_chunk, chunks):
                stored += len(outbox.add_many(items).stored)
    finally:
        outbox.close()
    assert stored == n, f"{stored} of {n} records stored in the outbox"
    k = len(devices)
    return {d.dev: n // k + (1 if i < n % k else 0) for i, d in enumerate(devices)}


def traceedge(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``traceedge ARGS`` as its own process."""
    return subprocess.run(
        [sys.executable, "-m", "traceedge", *args], capture_output=True, text=True, timeout=timeout
    )


def import_refused(config: str, bundle: Path, timeout: float = 600) -> str:
    """``traceedge collector import`` of a bad bundle: exit 1, the reason in one line of
    stderr saying nothing was stored, no receipt written. The line."""
    res = traceedge("collector", "import", "--config", config, str(bundle), timeout=timeout)
    assert res.returncode == 1, res
    assert "nothing stored" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not bundle.with_name(bundle.name + ".receipt").exists()
    return res.stderr
