"""Bad input at each hop: counted, quarantined, reported; the processes keep running and
no good record is lost."""

from __future__ import annotations

import json
import random
import secrets
import time
import zlib
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hostlib.registry import add_devices, load_identity
from simulators.records import make_body
from tests.conftest import SITE, Chain, wait_until
from traceedge.provision import new_device
from wire import auth, topics
from wire.batch import encode_batch
from wire.canonical import canonical
from wire.envelope import make_record


def publisher(port: int) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"evil-{secrets.token_hex(3)}")
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def send(c: mqtt.Client, topic: str, payload: bytes) -> None:
    c.publish(topic, payload, qos=1).wait_for_publish(5)


def signed(
    dev_key: bytes, dev: str, seq: int, kind: str = "cylinder.fill", **over: object
) -> dict[str, object]:
    body = make_body(kind, random.Random(seq), dev, seq, SITE)
    body.update(over)
    return make_record(dev, seq, 1, kind, int(time.time() * 1000), "ntp", body, dev_key)


def test_bad_terminal_messages_quarantined_at_the_agent(
    chain_factory: Callable[..., Chain],
) -> None:
    ch = chain_factory()
    cyl = next(d for d in ch.devices if d.type == "cylinder-reader")
    c = publisher(ch.broker.port)
    t = topics.terminal_rec(cyl.dev)
    good = signed(cyl.key, cyl.dev, 1)
    wrong_schema = dict(good, seq=2, body={"cyl": "x"})
    wrong_schema["mac"] = __import__("wire").sign(wrong_schema, cyl.key)
    bad_mac = dict(signed(cyl.key, cyl.dev, 3), mac="0" * 64)
    stranger = new_device("cylinder-reader", SITE)
    unknown = signed(stranger.key, stranger.dev, 1)
    send(c, t, b"\x00\xffnot json at all")
    send(c, t, canonical(wrong_schema))
    send(c, t, canonical(bad_mac))
    send(c, t, b'{"v":1,"pad":"' + b"x" * 6000 + b'"}')
    send(c, topics.terminal_rec(stranger.dev), canonical(unknown))
    send(c, t, canonical(dict(signed(cyl.key, cyl.dev, 4), dev="OTHER-DEV")))
    send(c, t, b'{"v":1,"dev":"' + cyl.dev.encode() + b'","seq":5,"ts":1.5}')
    c.loop_stop()
    c.disconnect()
    expected = {"json", "schema", "mac", "oversized", "unknown_device", "topic", "encoding"}
    wait_until(
        lambda: set(ch.agent_status()["quarantine_by_reason"]) >= expected - {"encoding"},
        20,
        "the agent to quarantine every bad message",
    )
    st = ch.agent_status()
    assert st["counters"]["quarantined"] == 7, st
    assert ch.agent.alive()
    # good records still flow, from the same device too (its seq 1..N are untouched)
    out = ch.fleet().run(600, drain_timeout_s=60)
    assert out["pending"] == 0 and out["rejected"] == 0
    ch.wait_forwarded(600)
    ch.assert_exactly_once(600)


def test_bad_batches_quarantined_at_the_collector(chain_factory: Callable[..., Chain]) -> None:
    ch = chain_factory()
    other_site = new_device("market-scale", "ELSEWHERE")
    add_devices(ch.registry, [other_site], int(time.time()))
    cyl = next(d for d in ch.devices if d.type == "cylinder-reader")
    # seqs far above what the fleet will use, so the fleet's records stay gap-free
    good = [canonical(signed(cyl.key, cyl.dev, 100_000 + i)) for i in range(5)]
    bad_mac = canonical(dict(signed(cyl.key, cyl.dev, 100_010), mac="f" * 64))
    wrong_site = canonical(signed(other_site.key, other_site.dev, 1, "market.entry"))
    stranger = new_device("cylinder-reader", SITE)
    unknown = canonical(signed(stranger.key, stranger.dev, 1))
    floaty = json.dumps(dict(json.loads(good[0]), seq=100_020, ts=1.5)).encode()
    gw = load_identity(ch.trust.identity)
    mixed = encode_batch(SITE, gw.dev, "mixed-1", [*good, bad_mac, wrong_site, unknown, floaty])
    c = publisher(ch.central.port)
    up = topics.site_up(SITE)
    acks: list[bytes] = []
    c.on_message = lambda cl, u, m: acks.append(m.payload)
    c.subscribe(topics.site_ack(SITE), qos=1)
    time.sleep(0.3)
    send(c, up, b"not zlib")
    send(c, up, zlib.compress(b"{not json"))
    send(c, up, zlib.compress(b'{"site":"T01"}'))
    send(
        c, up, zlib.compress(json.dumps({"site": "T01", "b": "x", "recs": []}).encode() + b" " * 10)
    )
    send(c, up, secrets.token_bytes(5 * 1024 * 1024))  # over max_batch_bytes
    send(c, topics.site_up("OTHER"), encode_batch(SITE, gw.dev, "spoof", good))  # site mismatch
    # a gateway the registry does not know: nothing stored, so nothing acknowledged
    send(c, up, encode_batch(SITE, "GW-NOBODY", "nobody-1", good))
    # a wire version 1 batch (no gw): refused by name
    send(c, up, zlib.compress(json.dumps({"site": SITE, "b": "v1", "recs": []}).encode()))
    send(c, up, mixed)
    wait_until(lambda: any(b"mixed-1" in a for a in acks), 20, "the ack of the mixed batch")
    ack = auth.open_batch_ack(next(a for a in acks if b"mixed-1" in a), SITE, gw.dev, [gw.key])
    assert (ack["b"], ack["stored"], ack["dup"], ack["bad"]) == ("mixed-1", 5, 0, 4)
    assert ack["digest"] == auth.batch_digest(mixed)
    assert not any(b"nobody-1" in a or b'"v1"' in a for a in acks)
    st = ch.collector_stats()
    reasons = st["quarantine_by_reason"]
    for r in (
        "compression",
        "json",
        "envelope",
        "oversized",
        "wrong_site",
        "mac",
        "unknown_device",
        "unknown_gateway",
        "version",
    ):
        assert reasons.get(r), (r, reasons)
    assert st["records"] == 5
    # the same mixed batch again: duplicates removed, nothing new quarantined as conflict
    send(c, up, mixed)
    wait_until(lambda: ch.collector_stats()["duplicates"] == 5, 20, "duplicates counted")
    assert ch.collector_stats()["conflicts"] == 0
    # same identity, different content: first kept, second quarantined, alarm raised
    forged = json.loads(good[0])
    forged["body"]["operator"] = "someone-else"
    forged["mac"] = __import__("wire").sign(forged, cyl.key)
    send(c, up, encode_batch(SITE, gw.dev, "conflict-1", [canonical(forged)]))
    wait_until(lambda: ch.collector_stats()["conflicts"] == 1, 20, "the conflict")
    assert ch.collector_stats()["alarms"] == 1
    c.loop_stop()
    c.disconnect()
    assert all(r.alive() for r in ch.collectors)
    out = ch.fleet().run(600, drain_timeout_s=60)
    assert out["pending"] == 0
    ch.wait_forwarded(605)
    p = ch.platform_stats()
    assert p["records"] == 605 and p["duplicate_records"] == 0
