"""The fake platform's ``POST /capture``: EPCIS 2.0 capture documents, over real HTTP."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.epcis import records_to_document
from simulators.platform import PlatformServer
from simulators.records import BASE_MS, make_body
from wire.envelope import KINDS, make_record

KEY = bytes(range(32))


def record(kind: str, seq: int, dev: str | None = None) -> dict[str, Any]:
    dev = dev or kind.replace(".", "-").upper()
    ts = BASE_MS + seq * 30_000
    body = make_body(kind, random.Random(f"{kind}|{seq}"), dev, seq, "S01", now_ms=ts)
    return make_record(dev, seq, 1, kind, ts, "ntp", body, KEY)


def document(seqs: range, kinds: tuple[str, ...] = KINDS) -> dict[str, Any]:
    recs = [record(kind, seq) for kind in kinds for seq in seqs]
    return records_to_document(recs, creation_ms=BASE_MS)


def capture(client: httpx.Client, key: str | None, doc: object) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post("/capture", json=doc, headers=headers)


def stats(client: httpx.Client) -> dict[str, int]:
    body: dict[str, int] = client.get("/stats").json()
    return body


@pytest.fixture
def server() -> Iterator[PlatformServer]:
    with PlatformServer() as srv:
        yield srv


@pytest.fixture
def client(server: PlatformServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def test_a_document_of_every_kind_is_stored_once_per_key(client: httpx.Client) -> None:
    doc = document(range(1, 4))
    n = len(doc["epcisBody"]["eventList"])
    assert n == 3 * len(KINDS)
    reply = capture(client, "d1", doc)
    assert reply.status_code == 202
    assert reply.json() == {"status": "ok", "accepted": n, "duplicates": 0}
    s = stats(client)
    assert (s["epcis_events"], s["epcis_documents"], s["requests"]) == (n, 1, 1)
    assert s["records"] == s["batches"] == 0  # the JSON-batch side is untouched
    listed = client.get("/events").json()
    assert listed["count"] == n
    assert listed["events"] == doc["epcisBody"]["eventList"]
    assert client.get("/events", params={"limit": 2}).json()["count"] == 2
    # A replayed key stores nothing, whatever the body now says.
    replay = capture(client, "d1", document(range(7, 9)))
    assert replay.status_code == 200
    assert replay.json() == {"status": "duplicate", "accepted": 0}
    s = stats(client)
    assert (s["epcis_events"], s["epcis_documents"], s["duplicate_documents"]) == (n, 1, 1)


def test_events_are_deduplicated_by_event_id_across_documents(client: httpx.Client) -> None:
    first = document(range(1, 4), ("market.settlement",))
    capture(client, "k1", first)
    overlapping = document(range(2, 6), ("market.settlement",))
    reply = capture(client, "k2", overlapping)
    assert reply.status_code == 202
    assert reply.json() == {"status": "ok", "accepted": 2, "duplicates": 2}
    # Same eventID, different content: first copy kept, counted as a conflict.
    changed = copy.deepcopy(first)
    changed["epcisBody"]["eventList"][0]["tre:totalFen"] = 1
    assert capture(client, "k3", changed).json() == {
        "status": "ok",
        "accepted": 0,
        "duplicates": 3,
    }
    s = stats(client)
    assert (s["epcis_events"], s["epcis_documents"]) == (5, 3)
    assert (s["duplicate_events"], s["epcis_conflicts"]) == (5, 1)
    kept = client.get("/events").json()["events"][0]
    assert kept["tre:totalFen"] == first["epcisBody"]["eventList"][0]["tre:totalFen"]


def _bare_bizstep(doc: dict[str, Any]) -> None:
    doc["epcisBody"]["eventList"][0]["bizStep"] = "filling"


def _no_tz(doc: dict[str, Any]) -> None:
    del doc["epcisBody"]["eventList"][0]["eventTimeZoneOffset"]


def _local_time(doc: dict[str, Any]) -> None:
    doc["epcisBody"]["eventList"][0]["eventTime"] = "2025-11-23T08:00:00.000"


@pytest.mark.parametrize(
    ("mutate", "words"),
    [(_bare_bizstep, "filling"), (_no_tz, "eventTimeZoneOffset"), (_local_time, "date-time")],
    ids=["bare bizStep", "no time zone", "time without offset"],
)
def test_documents_failing_the_official_schema_are_422(
    client: httpx.Client, mutate: Any, words: str
) -> None:
    doc = document(range(1, 2), ("cylinder.fill",))
    mutate(doc)
    reply = capture(client, "bad", doc)
    assert reply.status_code == 422
    assert "not a valid EPCIS 2.0 document" in reply.json()["error"]
    assert words in reply.json()["error"]
    s = stats(client)
    assert (s["epcis_events"], s["epcis_documents"], s["bad_requests"]) == (0, 0, 1)
    # The key of a refused document is not burnt.
    assert capture(client, "bad", document(range(1, 2), ("cylinder.fill",))).status_code == 202


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"\x00not json", 400, "not JSON"),
        (b"[1]", 422, "EPCISDocument"),
        (b'{"type": "EPCISQueryDocument", "epcisBody": {}}', 422, "EPCISDocument"),
        (b'{"type": "EPCISDocument", "epcisBody": {}}', 422, "eventList"),
        (b'{"type": "EPCISDocument", "epcisBody": {"eventList": [1]}}', 422, "eventList[0]"),
        (
            b'{"type": "EPCISDocument", "epcisBody": {"eventList": [{"type": "ObjectEvent"}]}}',
            422,
            "eventID",
        ),
    ],
)
def test_malformed_capture_bodies_are_refused(
    client: httpx.Client, body: bytes, status: int, words: str
) -> None:
    reply = client.post("/capture", content=body, headers={"Idempotency-Key": "m"})
    assert reply.status_code == status
    assert words in reply.json()["error"]
    assert stats(client)["epcis_documents"] == 0


def test_idempotency_key_is_required(client: httpx.Client) -> None:
    reply = capture(client, None, document(range(1, 2), ("elevator.status",)))
    assert reply.status_code == 400
    assert "Idempotency-Key" in reply.json()["error"]


def test_faults_apply_to_capture_too(client: httpx.Client) -> None:
    doc = document(range(1, 2), ("elevator.fault",))
    client.post("/faults", json={"down_for_s": 30})
    reply = capture(client, "f1", doc)
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "30"
    client.post("/faults", json={"down_for_s": 0})
    assert capture(client, "f1", doc).status_code == 202
    s = stats(client)
    assert (s["errors_injected"], s["epcis_events"], s["requests"]) == (1, 1, 2)


def test_schema_check_can_be_turned_off() -> None:
    doc = document(range(1, 2), ("cylinder.check",))
    _bare_bizstep(doc)
    with (
        PlatformServer(validate_epcis=False) as srv,
        httpx.Client(base_url=srv.url, timeout=10) as client,
    ):
        assert capture(client, "x", doc).status_code == 202


def test_a_missing_schema_is_a_clear_500(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    doc = document(range(1, 2), ("market.entry",))
    monkeypatch.setenv("TRACEEDGE_EPCIS_SCHEMA", str(tmp_path / "gone.json"))
    reply = capture(client, "s", doc)
    assert reply.status_code == 500
    assert "TRACEEDGE_EPCIS_SCHEMA" in reply.json()["error"]
    assert stats(client)["epcis_documents"] == 0


def test_captured_events_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "platform.db"
    doc = document(range(1, 3), ("market.entry", "market.settlement"))
    with PlatformServer(db_path=db) as first, httpx.Client(base_url=first.url) as client:
        assert capture(client, "k1", doc).status_code == 202
    with PlatformServer(db_path=db) as again, httpx.Client(base_url=again.url) as client:
        s = stats(client)
        assert (s["epcis_events"], s["epcis_documents"]) == (4, 1)
        assert capture(client, "k1", doc).json()["status"] == "duplicate"
        assert client.get("/events").json()["events"] == doc["epcisBody"]["eventList"]
