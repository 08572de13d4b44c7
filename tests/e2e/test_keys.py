"""Key rotation and revocation mid-stream, through the real agent, collector and Mosquitto:
old sequence numbers verify with the old key, new ones with the new key; nothing from a
revoked device is accepted past its revocation point, and nothing good is lost."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable

from hostlib.registry import Registry, rotate_key
from hostlib.sqlite import open_ro
from tests.conftest import Chain, wait_until
from wire.envelope import verify_mac


def _stored(ch: Chain, dev: str) -> list[dict[str, object]]:
    with open_ro(ch.store) as db:
        rows = db.execute("SELECT rec FROM records WHERE dev = ? ORDER BY seq", (dev,))
        return [json.loads(r[0]) for r in rows]


def test_rotation_mid_stream_loses_nothing(chain_factory: Callable[..., Chain]) -> None:
    ch = chain_factory()
    fleet = ch.fleet(resend_after_s=2.0)
    assert fleet.run(300, drain_timeout_s=60)["pending"] == 0
    dev = next(d for d in ch.devices if d.type == "elevator-box")
    old_key, new_key = dev.key, secrets.token_bytes(32)
    from_seq = fleet.by_dev[dev.dev].seq + 20
    rotate_key(ch.registry, dev.dev, new_key, from_seq, int(time.time()))
    # the terminal gets its new config (by flash) and uses it from from_seq on; the agent
    # learns the key from the collector's signed push, records in between wait at the terminal
    rotated = Registry(ch.registry).get(dev.dev)
    assert rotated is not None
    fleet.update_device(rotated)
    out = fleet.run(600, drain_timeout_s=120)
    assert out["pending"] == 0, out
    ch.wait_forwarded(900, timeout=120)
    ch.assert_exactly_once(900)
    recs = _stored(ch, dev.dev)
    assert max(int(r["seq"]) for r in recs) >= from_seq + 10  # the stream crossed it
    for r in recs:
        key, other = (new_key, old_key) if int(r["seq"]) >= from_seq else (old_key, new_key)
        assert verify_mac(r, key) and not verify_mac(r, other), r["seq"]


def test_revocation_mid_stream_refuses_everything_past_its_point(
    chain_factory: Callable[..., Chain],
) -> None:
    ch = chain_factory()
    fleet = ch.fleet(resend_after_s=2.0)
    assert fleet.run(300, drain_timeout_s=60)["pending"] == 0
    ch.wait_forwarded(300)
    dev = next(d for d in ch.devices if d.type == "market-scale")
    before = len(_stored(ch, dev.dev))
    args = ["device", "revoke", dev.dev, "--registry", str(ch.registry)]
    args += ["--config", str(ch.collectors[0].config), "--reason", "stolen"]
    cli = subprocess.run(
        [sys.executable, "-m", "traceedge", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    point = before + 1
    assert f"revoked from seq {point}" in cli.stdout
    wait_until(
        lambda: (Registry(ch.trust.agent_devices).get(dev.dev) or dev).revoked_from == point,
        30,
        "the revocation to reach the agent's registry",
    )
    # the revoked terminal keeps producing (stolen, still powered), the others too
    fleet.run(600, drain_timeout_s=20)
    others = 300 + 600 - (fleet.by_dev[dev.dev].seq - before)
    ch.wait_forwarded(others, timeout=120)
    recs = _stored(ch, dev.dev)
    assert len(recs) == before and max(int(r["seq"]) for r in recs) < point
    st = ch.agent_status()
    assert st["quarantine_by_reason"].get("revoked", 0) > 0, st
    # what the revoked terminal sent is not acked: nothing good was dropped for it
    assert fleet.pending() == fleet.by_dev[dev.dev].seq - before
