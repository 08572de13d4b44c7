"""Poison messages against the real chain (Mosquitto, agent, collector): each is
quarantined on its own and the workers keep taking real records. Each of these stopped a
worker, or a site's intake, before."""

from __future__ import annotations

import sqlite3
import threading
import time
import zlib
from collections.abc import Callable

import psutil

from hostlib.registry import load_identity
from tests.conftest import SITE, Chain, wait_until
from tests.e2e.test_bad_input import publisher, send
from wire import topics
from wire.batch import encode_batch


def test_the_collector_keeps_ingesting_after_each_poison_batch(
    chain_factory: Callable[..., Chain],
) -> None:
    ch = chain_factory()
    gw = load_identity(ch.trust.identity).dev
    c = publisher(ch.central.port)
    up = topics.site_up(SITE)
    send(c, up, zlib.compress(b"[" * 100_000))  # 252 bytes, nested past any parser's depth
    send(c, up, encode_batch(SITE, gw, "surrogate-1", [b'{"dev":"\\ud800","seq":1}']))
    send(c, up, encode_batch(SITE, gw, "deep-1", [b"[" * 5000 + b"]" * 5000]))
    send(c, topics.site_status(SITE), b'{"t":"status","x":' + b"[" * 3000 + b"]" * 3000 + b"}")
    zeros = zlib.compress(
        b'{"site":"T01","gw":"'
        + gw.encode()
        + b'","b":"zeros","recs":['
        + b",".join([b"0"] * 1_000_000)
        + b"]}",
        9,
    )
    send(c, up, zeros)
    c.loop_stop()
    c.disconnect()
    # past the batch's record-count limit: refused whole, before any record is looked at
    wait_until(
        lambda: ch.collector_stats()["quarantine_by_reason"].get("count", 0) >= 1,
        60,
        "the zeros batch quarantined",
    )
    with sqlite3.connect(ch.store) as db:
        rows = db.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0]
    assert rows <= 10, rows  # not a row per record
    out = ch.fleet().run(300, drain_timeout_s=60)
    assert out["pending"] == 0
    ch.wait_forwarded(300)
    st = ch.collector_stats()
    assert all(p["running"] and not p.get("dead_workers") for p in st["processes"].values())
    assert all(r.alive() for r in ch.collectors)


def test_the_agent_acks_real_records_while_a_poison_message_arrives_ten_times_a_second(
    chain_factory: Callable[..., Chain],
) -> None:
    ch = chain_factory()
    cyl = next(d for d in ch.devices if d.type == "cylinder-reader")
    c = publisher(ch.broker.port)
    stop = threading.Event()

    def poison() -> None:
        while not stop.is_set():
            send(c, topics.terminal_rec(cyl.dev), b"[" * 1500)
            stop.wait(0.1)

    t = threading.Thread(target=poison)
    t.start()
    try:
        out = ch.fleet().run(300, drain_timeout_s=60)
    finally:
        stop.set()
        t.join()
        c.loop_stop()
        c.disconnect()
    assert out["pending"] == 0 and out["rejected"] == 0, out
    ch.wait_forwarded(300)
    assert ch.agent_status()["quarantine_by_reason"], ch.agent_status()
    assert ch.agent.alive()


def test_the_agent_waits_out_a_locked_outbox_and_stays_bounded(
    chain_factory: Callable[..., Chain],
) -> None:
    ch = chain_factory()
    cyl = next(d for d in ch.devices if d.type == "cylinder-reader")
    assert ch.agent.proc is not None
    proc = psutil.Process(ch.agent.proc.pid)
    rss0 = proc.memory_info().rss
    lock = sqlite3.connect(ch.outbox, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    c = publisher(ch.broker.port)
    try:
        big = b"x" * (1024 * 1024)
        for _ in range(1200):
            c.publish(topics.terminal_rec(cyl.dev), big, qos=1)
        time.sleep(12)  # past the outbox's 10 s busy timeout
        assert ch.agent.alive(), ch.agent.log_tail()
        rss = proc.memory_info().rss
        assert rss - rss0 < 400 * 1024 * 1024, (rss0, rss)
    finally:
        lock.execute("COMMIT")
        lock.close()
        c.loop_stop()
        c.disconnect()
    out = ch.fleet().run(200, drain_timeout_s=120)
    assert out["pending"] == 0
    ch.wait_forwarded(200)
    assert ch.agent.alive()
