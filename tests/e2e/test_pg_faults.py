"""The PostgreSQL store shared by several collectors, under DESIGN.md's failures, with real
processes: Mosquitto, an agent, collectors on the shared subscription, the fake platform
and a real PostgreSQL (the machine's server, or a private :class:`tests.pg.PgCluster` when
the test restarts it).

Each test ends with "once in effect", counted three ways: the collectors' summary, the rows
of ``records`` (every row and every distinct ``(dev, seq)`` equal to what the simulated
terminals made), and the platform (each record once, no duplicate).

Where the platform is held down while a collector dies: a forward batch a collector has
claimed stays leased to it for ``collector.forwarder.LEASE_S`` (60 s) before another may
send it, so a kill that happens to land inside a delivery would make the test wait a
minute. With the platform answering 503 a delivery lasts a round trip and the lease is
given back at once; the kill then lands in intake, which is what the test is about.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from collector.forwarder import LEASE_S
from tests.conftest import Chain, wait_until
from tests.pg import PgCluster
from tests.proxy import SilentProxy

FAST_UPLINK = {"ack_timeout_s": 5.0, "backoff_initial_s": 0.2, "backoff_max_s": 2.0}


def rows(url: str) -> tuple[int, int]:
    """Rows of ``records`` and distinct identities among them."""
    with psycopg.connect(url, connect_timeout=5) as db:
        got = db.execute("SELECT count(*), count(DISTINCT (dev, seq)) FROM records").fetchone()
    assert got is not None
    return int(got[0]), int(got[1])


def owner_counters(url: str, name: str) -> dict[str, int]:
    """A counter of the shared store split by the collector that wrote it."""
    with psycopg.connect(url, connect_timeout=5) as db:
        got = db.execute(
            "SELECT owner, value FROM counter_parts WHERE name = %s", (name,)
        ).fetchall()
    return {str(o): int(v) for o, v in got}


def stored(ch: Chain) -> int:
    return int(ch.collector_stats().get("records", 0))


def stalled(ch: Chain, for_s: float = 0.5) -> Callable[[], bool]:
    """A condition: the store's record count has not moved for ``for_s``."""
    seen = {"n": -1, "since": time.monotonic()}

    def check() -> bool:
        n, now = stored(ch), time.monotonic()
        if n != seen["n"]:
            seen.update(n=n, since=now)
        return now - seen["since"] >= for_s

    return check


def generated(ch: Chain) -> int:
    return sum(f.stats.generated for f in ch.fleets)


def assert_stored_and_forwarded_once(ch: Chain, url: str, n: int, timeout: float = 60) -> None:
    ch.wait_forwarded(n, timeout=timeout)
    assert generated(ch) == n
    ch.assert_exactly_once(n)
    assert rows(url) == (n, n)


def fleet_in_background(ch: Chain, n: int, rate: float) -> tuple[threading.Thread, dict[str, Any]]:
    fleet = ch.fleet(resend_after_s=3.0)
    out: dict[str, Any] = {}
    t = threading.Thread(target=lambda: out.update(fleet.run(n, rate, drain_timeout_s=120)))
    t.start()
    return t, out


def activity(url: str) -> str:
    """The database's sessions: who waits on what (for a failure's message)."""
    with psycopg.connect(url, connect_timeout=5, autocommit=True) as db:
        got = db.execute(
            "SELECT pid, state, wait_event_type, wait_event, pg_blocking_pids(pid), "
            "left(query, 60) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() ORDER BY pid"
        ).fetchall()
    return "\n".join(" | ".join(str(c) for c in r) for r in got)


def logs(ch: Chain) -> str:
    return "\n".join(f"--- collector-{i}:\n{c.log_tail(25)}" for i, c in enumerate(ch.collectors))


def test_kill9_of_one_of_three_collectors_while_the_agent_uploads_a_backlog(
    pg_url: str, chain_factory: Callable[..., Chain]
) -> None:
    n = 6000
    # small batches: the drain takes many, the kill lands while some are in flight
    uplink = dict(FAST_UPLINK, batch_records=50, max_in_flight=4)
    ch = chain_factory(
        store_url=pg_url, collectors=3, separate_central=True, uplink_overrides=uplink
    )
    ch.central.stop()
    out = ch.fleet().run(n, drain_timeout_s=60)  # acked by the agent: a backlog at the edge
    assert out["pending"] == 0, out
    wait_until(lambda: ch.agent_status()["depth"] == n, 15, "the backlog at the edge")
    ch.platform.platform.set_faults(down_for_s=600)  # see the module's docstring
    ch.central.start()
    wait_until(lambda: stored(ch) >= n // 10, 30, "the backlog draining", every=0.01)
    victim = ch.collectors[1]
    assert victim.proc is not None
    # Stopped first, its share of the batches piles up unacked in its socket and queue
    # (and a commit it was in stays open on the server) until the agent's whole window
    # waits on it and the drain stalls; then killed with all of it.
    victim.proc.send_signal(signal.SIGSTOP)
    wait_until(stalled(ch), 10, "the drain to wait on the stopped collector", every=0.1)
    victim.kill9()
    at_kill = stored(ch)
    assert at_kill < n, "the backlog drained before the kill: make it longer"
    wait_until(lambda: stored(ch) == n, 40, f"the survivors to store the rest\n{logs(ch)}")
    # every batch acked in the end: what the dead one held unacked (stored or not) came
    # again after the agent's ack timeout and went to a survivor
    wait_until(lambda: ch.agent_status()["depth"] == 0, 30, "every batch acked")
    assert ch.agent_status()["resends"] > 0
    batches = owner_counters(pg_url, "batches")
    assert batches.get("collector-1", 0) > 0, batches  # it had taken its share before
    assert rows(pg_url) == (n, n)
    ch.platform.platform.set_faults(down_for_s=0)
    assert_stored_and_forwarded_once(ch, pg_url, n)
    assert all(c.alive() for c in ch.collectors if c is not victim)


def test_postgres_restart_mid_stream_collectors_wait_then_resume(
    pg_cluster: PgCluster, chain_factory: Callable[..., Chain]
) -> None:
    url = pg_cluster.create_database()
    n = 6000
    ch = chain_factory(store_url=url, collectors=2, uplink_overrides=FAST_UPLINK)
    ch.platform.platform.set_faults(down_for_s=600)  # see the module's docstring
    t, out = fleet_in_background(ch, n, rate=600)
    wait_until(lambda: stored(ch) >= 1000, 30, "records flowing", every=0.05)
    pg_cluster.stop("immediate")  # no checkpoint: crash recovery at the next start
    down_at = generated(ch)
    time.sleep(4.0)
    # the terminals keep making records; the agent keeps them; nothing is acked centrally
    assert all(c.alive() for c in ch.collectors), logs(ch)
    pg_cluster.start()
    wait_until(lambda: stored(ch) > down_at, 30, f"a record stored after the restart\n{logs(ch)}")
    t.join(150)
    assert out["pending"] == 0, out
    wait_until(lambda: stored(ch) == n, 60, f"every record stored\n{logs(ch)}")
    ch.platform.platform.set_faults(down_for_s=0)
    assert_stored_and_forwarded_once(ch, url, n)
    assert all(c.alive() for c in ch.collectors), logs(ch)
    assert all(c.starts == 1 for c in ch.collectors)  # they waited; none was restarted


@pytest.mark.parametrize("cut", ["whenever", "mid-commit"])
def test_a_collector_cut_off_from_postgres_stops_acking_and_the_others_take_its_share(
    pg_url: str, chain_factory: Callable[..., Chain], cut: str
) -> None:
    """``whenever``: the link freezes at a moment the clock picks (mostly between two of
    its transactions). ``mid-commit``: it freezes as the collector sends the device-counter
    update of a batch (the SQL text is the store's: its records are inserted, the
    transaction is open on the server, holding them), the worst moment: the agent resends
    that batch to another collector, whose insert of the same identities must not wait on
    the cut-off one for ever."""
    pg_port = int(pg_url.rsplit(":", 1)[1].split("/", 1)[0])
    proxy = SilentProxy(pg_port).start()
    via_proxy = pg_url.replace(f":{pg_port}/", f":{proxy.port}/")
    try:
        n = 6000
        ch = chain_factory(
            store_url=pg_url,
            store_urls=[via_proxy, pg_url, pg_url],
            collectors=3,
            uplink_overrides=FAST_UPLINK,
        )
        t, out = fleet_in_background(ch, n, rate=600)
        wait_until(lambda: stored(ch) >= 1000, 30, "records flowing", every=0.05)
        before = owner_counters(pg_url, "stored").get("collector-0", 0)
        assert before > 0  # it was storing its share before the partition
        if cut == "mid-commit":
            proxy.freeze_on(b"INSERT INTO device_state")
            wait_until(proxy.frozen.is_set, 20, "the cut-off collector's next commit")
        else:
            proxy.freeze()  # its connections to PostgreSQL go silent; its broker link does not
        cut_at = owner_counters(pg_url, "stored").get("collector-0", 0)
        t.join(150)
        assert out["pending"] == 0, out
        try:
            wait_until(lambda: stored(ch) == n, 60, "the others to store its share")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nsessions:\n{activity(pg_url)}\n{logs(ch)}") from None
        # nothing more went in through the cut-off collector: it acknowledged nothing since
        # (a commit on its way when the link froze may have landed)
        assert owner_counters(pg_url, "stored").get("collector-0", 0) <= cut_at + 1000
        assert ch.collectors[0].alive(), logs(ch)
        assert_stored_and_forwarded_once(ch, pg_url, n, timeout=LEASE_S + 60)
    finally:
        proxy.stop()
