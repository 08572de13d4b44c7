"""A message that makes the collector fail is quarantined alone (with an alarm) and the
ingest goes on; the bad records of one batch are one quarantine row; the quarantine is
bounded in bytes; a worker that dies anyway is named and stops the process.

The collector here is real (its store, registry, verification) but not started: messages
are handed to :meth:`Collector.ingest` as the ingest thread does. The exceptions injected
through ``verify`` stand for any bug a parser may still have.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from collector.service import Collector, Verify
from collector.settings import load_collector
from collector.store import read_summary
from collector.verify import VerifiedBatch, verify_batch
from hostlib.errors import WorkerDied
from hostlib.registry import Registry, add_devices, load_identity
from hostlib.sqlite import open_ro
from tests.stores import KINDS, store_of
from traceedge.brokers import free_port
from traceedge.launch import collector_config
from traceedge.provision import new_device, site_trust
from wire import topics
from wire.batch import encode_batch
from wire.schemas import BodyValidator

SITE = "T01"
UP = topics.site_up(SITE)


class Bug(Exception):
    """What a parser with a bug raises."""


class Fatal(BaseException):
    """What no per-message isolation catches: it kills the thread it is raised on."""


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[..., Collector]]:
    registry = tmp_path / "registry" / "devices.json"
    add_devices(registry, [new_device("cylinder-reader", SITE)], int(time.time()))
    trust = site_trust(tmp_path, registry, SITE)
    made: list[Collector] = []

    def make(verify: Verify = verify_batch, api_port: int = 0) -> Collector:
        cfg = collector_config(
            tmp_path / f"collector-{len(made)}.toml",
            tmp_path / "collector",
            registry,
            free_port(),  # no broker listens there: nothing is published
            None,
            command_key=trust.command_key,
            client_id=f"collector-{len(made)}",
            api_port=api_port,
        )
        c = Collector(load_collector(cfg), verify=verify)
        made.append(c)
        return c

    make.gateway = load_identity(trust.identity).dev  # type: ignore[attr-defined]
    yield make
    for c in made:
        if c._started:  # run_forever stopped it
            continue
        else:
            c.store.close()
            c.lock.release()


def batch(make: Callable[..., Collector], name: str, recs: list[bytes]) -> bytes:
    return encode_batch(SITE, make.gateway, name, recs)  # type: ignore[attr-defined]


def quarantine_rows(c: Collector) -> int:
    with open_ro(c.settings.store_path) as db:
        return int(db.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0])


def test_a_message_that_raises_is_quarantined_alone_and_ingest_goes_on(
    make: Callable[..., Collector],
) -> None:
    def verify(site: str, payload: bytes, reg: Registry, v: BodyValidator, n: int) -> VerifiedBatch:
        if b"poison" in zlib.decompress(payload):
            raise Bug("the parser fell over")
        return verify_batch(site, payload, reg, v, n)

    c = make(verify)
    c.ingest(UP, batch(make, "poison-1", []))
    c.ingest(UP, batch(make, "fine-1", [b"0"]))
    st = read_summary(c.settings.store_path)
    assert st["quarantine_by_reason"] == {"internal_error": 1, "envelope": 1}, st
    assert st["alarms"] == 1 and st["batches"] == 1, st
    assert c.poisoned == 1


def test_real_inputs_that_crash_a_parser_today_are_quarantined(
    make: Callable[..., Collector],
) -> None:
    c = make()
    c.ingest(UP, zlib.compress(b"[" * 100_000))  # 252 bytes on the wire
    c.ingest(UP, batch(make, "surrogate-1", [b'{"dev":"\\ud800","seq":1}']))
    c.ingest(UP, batch(make, "deep-1", [b"[" * 5000 + b"]" * 5000]))
    c.ingest(topics.site_status(SITE), b'{"t":"status","x":' + b"[" * 3000 + b"]" * 3000 + b"}")
    c.ingest(UP, batch(make, "fine-2", [b"0"]))
    st = read_summary(c.settings.store_path)
    assert st["batches"] >= 1, st  # the last batch was taken after all the others
    assert sum(st["quarantine_by_reason"].values()) >= 3, st


def test_bad_records_of_one_batch_are_one_quarantine_row(
    make: Callable[..., Collector],
) -> None:
    c = make()
    n = 90_000  # under the batch's record-count limit (a larger one is refused whole)
    gw = make.gateway.encode()  # type: ignore[attr-defined]
    payload = zlib.compress(
        b'{"site":"T01","gw":"' + gw + b'","b":"zeros","recs":[' + b",".join([b"0"] * n) + b"]}",
        9,
    )
    assert len(payload) < 1024
    c.ingest(UP, payload)
    st = read_summary(c.settings.store_path)
    assert st["quarantine_by_reason"] == {"envelope": n}, st
    assert st["quarantined"] == n and st["batches"] == 1
    assert quarantine_rows(c) == 1
    assert st["quarantine_bytes"] < 70_000, st


@pytest.mark.parametrize("kind", KINDS)
def test_quarantine_is_bounded_in_bytes_oldest_evicted(tmp_path: Path, kind: str) -> None:
    sut = store_of(kind, tmp_path, max_quarantine_bytes=100_000)
    try:
        store = sut.store
        for i in range(50):
            store.quarantine_payload(SITE, "json", f"message {i}", bytes(10_000))
        st = store.summary()
        assert st["quarantined"] == 50
        assert st["quarantine_bytes"] <= 100_000
        assert st["quarantine_evicted"] == 50 - sum(st["quarantine_by_reason"].values()) > 0
        with sut.read() as db:
            first = db.execute("SELECT MIN(detail) FROM quarantine").fetchone()[0]
        assert first != "message 0"  # the oldest went first
        store.close()
        # a restart counts what is there
        sut.store = type(store)(sut.url or sut.path, max_quarantine_bytes=100_000)
        assert sut.store.summary()["quarantine_bytes"] == st["quarantine_bytes"]
    finally:
        sut.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_worker_is_named_and_stops_the_process(make: Callable[..., Collector]) -> None:
    def verify(site: str, payload: bytes, reg: Registry, v: BodyValidator, n: int) -> VerifiedBatch:
        raise Fatal("no isolation catches this")

    port = free_port()
    c = make(verify, api_port=port)
    seen: list[tuple[int, dict[str, object]]] = []

    def probe() -> None:  # the message goes in once the API answers; then /healthz is watched
        url = f"http://127.0.0.1:{port}/healthz"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not seen:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        c.queue.put((UP, b"anything"))
        while time.monotonic() < deadline:
            try:
                r = httpx.get(url, timeout=1)
            except httpx.HTTPError:
                return  # the process stopped
            if r.status_code != 200:
                seen.append((r.status_code, r.json()))
                return
            time.sleep(0.02)

    t = threading.Thread(target=probe)
    t.start()
    with pytest.raises(WorkerDied, match="ingest"):
        c.run_forever()  # signal handlers: it must run on the main thread
    t.join()
    assert seen == [(503, {"status": "dead", "dead_workers": ["ingest"]})]
    procs = read_summary(c.settings.store_path)["processes"]
    assert procs[c.settings.client_id]["dead_workers"] == ["ingest"]
