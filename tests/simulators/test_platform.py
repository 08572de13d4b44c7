"""The fake city platform, over real HTTP against a started server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from simulators.platform import Platform, PlatformServer
from traceedge.cli import main


def rec(dev: str, seq: int, **extra: Any) -> dict[str, Any]:
    return {"dev": dev, "seq": seq, "kind": "cylinder.fill", **extra}


def post(client: httpx.Client, key: str | None, records: list[dict[str, Any]]) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post("/records", json={"records": records}, headers=headers)


@pytest.fixture
def server() -> Iterator[PlatformServer]:
    with PlatformServer() as srv:
        yield srv


@pytest.fixture
def client(server: PlatformServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def stats(client: httpx.Client) -> dict[str, int]:
    reply = client.get("/stats")
    assert reply.status_code == 200
    body: dict[str, int] = reply.json()
    return body


def test_stores_records_and_lists_them(client: httpx.Client) -> None:
    reply = post(client, "b1", [rec("CYL-1", 1), rec("CYL-1", 2), rec("ELV-7", 1)])
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "accepted": 3, "duplicates": 0}
    s = stats(client)
    assert (s["records"], s["batches"], s["requests"]) == (3, 1, 1)
    assert s["duplicate_batches"] == s["duplicate_records"] == s["errors_injected"] == 0
    listed = client.get("/records", params={"dev": "CYL-1"}).json()
    assert [r["seq"] for r in listed["records"]] == [1, 2]
    assert listed["records"][0] == rec("CYL-1", 1)
    assert client.get("/records", params={"limit": 1}).json()["count"] == 1
    assert client.get("/healthz").json()["status"] == "ok"


def test_replayed_idempotency_key_is_counted_and_not_stored_again(client: httpx.Client) -> None:
    batch = [rec("CYL-1", 1), rec("CYL-1", 2)]
    assert post(client, "same", batch).json()["accepted"] == 2
    replay = post(client, "same", [*batch, rec("CYL-1", 3)])
    assert replay.status_code == 200
    assert replay.json() == {"status": "duplicate", "accepted": 0}
    s = stats(client)
    assert (s["records"], s["batches"], s["duplicate_batches"]) == (2, 1, 1)
    assert s["duplicate_records"] == 0


def test_duplicate_records_across_keys_are_counted_and_first_copy_kept(
    client: httpx.Client,
) -> None:
    post(client, "k1", [rec("CYL-1", 1, w=10), rec("CYL-1", 2)])
    reply = post(client, "k2", [rec("CYL-1", 2), rec("CYL-1", 1, w=99), rec("CYL-1", 3)])
    assert reply.json() == {"status": "ok", "accepted": 1, "duplicates": 2}
    s = stats(client)
    assert (s["records"], s["batches"], s["duplicate_records"], s["conflicts"]) == (3, 2, 2, 1)
    first = client.get("/records", params={"dev": "CYL-1"}).json()["records"][0]
    assert first["w"] == 10


def test_concurrent_retries_with_one_key_store_once(client: httpx.Client) -> None:
    batch = [rec("SCALE-3", n) for n in range(1, 51)]
    statuses: list[str] = []

    def send() -> None:
        statuses.append(post(client, "raced", batch).json()["status"])

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == ["duplicate"] * 7 + ["ok"]
    s = stats(client)
    assert (s["records"], s["duplicate_batches"], s["duplicate_records"]) == (50, 7, 0)


def test_error_rate_is_seeded_and_failed_calls_store_nothing() -> None:
    with (
        PlatformServer(error_rate=0.3, seed=7) as srv,
        httpx.Client(base_url=srv.url, timeout=10) as client,
    ):
        codes = [post(client, f"e{n}", [rec("CYL-9", n)]).status_code for n in range(200)]
        failed = codes.count(503)
        assert set(codes) == {200, 503}
        assert 35 <= failed <= 85  # 0.3 of 200 = 60; seeded, so the same on every run
        s = stats(client)
        assert s["errors_injected"] == failed
        assert s["records"] == s["batches"] == 200 - failed
        stored = {r["seq"] for r in client.get("/records", params={"limit": 500}).json()["records"]}
        assert stored == {n for n, code in enumerate(codes) if code == 200}
        # Re-seeding at run time replays the same sequence of outcomes.
        assert client.post("/faults", json={"seed": 7}).status_code == 200
        again = [post(client, f"r{n}", [rec("CYL-9", n)]).status_code for n in range(200)]
        assert again == codes


def test_down_for_answers_503_then_recovers(client: httpx.Client) -> None:
    faults = client.post("/faults", json={"down_for_s": 0.5}).json()
    assert 0 < faults["down_for_s"] <= 0.5
    reply = post(client, "d1", [rec("ELV-1", 1)])
    assert reply.status_code == 503
    assert "down" in reply.json()["error"]
    assert reply.headers["Retry-After"] == "1"
    assert stats(client)["records"] == 0
    time.sleep(0.6)
    assert client.get("/faults").json()["down_for_s"] == 0
    assert post(client, "d1", [rec("ELV-1", 1)]).json()["accepted"] == 1
    s = stats(client)
    assert (s["records"], s["errors_injected"], s["requests"]) == (1, 1, 2)


def test_down_for_at_start_and_cleared_at_run_time() -> None:
    with (
        PlatformServer(down_for_s=60) as srv,
        httpx.Client(base_url=srv.url, timeout=10) as client,
    ):
        assert post(client, "x", [rec("A", 1)]).status_code == 503
        client.post("/faults", json={"down_for_s": 0})
        assert post(client, "x", [rec("A", 1)]).status_code == 200


def test_latency_delays_every_reply() -> None:
    with (
        PlatformServer(latency_ms=150) as srv,
        httpx.Client(base_url=srv.url, timeout=10) as client,
    ):
        assert client.get("/faults").json()["latency_ms"] == 150
        for key in ("l1", "l1"):  # a stored batch and a replay are both delayed
            started = time.monotonic()
            assert post(client, key, [rec("A", 1)]).status_code == 200
            assert time.monotonic() - started >= 0.15
        client.post("/faults", json={"latency_ms": 300})
        started = time.monotonic()
        post(client, "l2", [rec("A", 2)])
        assert time.monotonic() - started >= 0.3


def test_missing_idempotency_key_is_400(client: httpx.Client) -> None:
    reply = post(client, None, [rec("A", 1)])
    assert reply.status_code == 400
    assert "Idempotency-Key" in reply.json()["error"]
    assert stats(client)["records"] == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"\x00not json{", 400),
        (b"[1, 2]", 422),
        (b'{"records": {"dev": "A"}}', 422),
        (b'{"records": ["A"]}', 422),
        (b'{"records": [{"dev": "A"}]}', 422),
        (b'{"records": [{"dev": "", "seq": 1}]}', 422),
        (b'{"records": [{"dev": "A", "seq": "1"}]}', 422),
        (b'{"records": [{"dev": "A", "seq": true}]}', 422),
        (b'{"records": [{"dev": "A", "seq": 1}, {"dev": "A", "seq": -1}]}', 422),
    ],
)
def test_garbage_body_is_rejected_with_a_json_error(
    client: httpx.Client, body: bytes, status: int
) -> None:
    reply = client.post("/records", content=body, headers={"Idempotency-Key": "g"})
    assert reply.status_code == status
    assert reply.json()["error"]
    s = stats(client)
    assert (s["records"], s["bad_requests"]) == (0, 1)
    # The key of a rejected request is not burnt: a good retry with it is stored.
    assert post(client, "g", [rec("A", 1)]).json()["accepted"] == 1


def test_bad_faults_and_capture_hook(client: httpx.Client) -> None:
    assert client.post("/faults", json={"error_rate": 1.5}).status_code == 422
    assert client.post("/faults", json={"latency": 5}).status_code == 422
    reply = client.post("/capture", json={"epcisBody": {}}, headers={"Idempotency-Key": "c"})
    assert reply.status_code == 422  # /capture is live (tests/simulators/test_capture.py)
    assert "EPCISDocument" in reply.json()["error"]


def test_sqlite_store_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "platform.db"
    with PlatformServer(db_path=db) as first, httpx.Client(base_url=first.url) as client:
        post(client, "k1", [rec("CYL-1", 1), rec("CYL-1", 2)])
        port = first.port
    with PlatformServer(db_path=db, port=port) as again, httpx.Client(base_url=again.url) as client:
        assert stats(client)["records"] == 2
        assert post(client, "k1", [rec("CYL-1", 1)]).json()["status"] == "duplicate"
        assert post(client, "k2", [rec("CYL-1", 2), rec("CYL-1", 3)]).json() == {
            "status": "ok",
            "accepted": 1,
            "duplicates": 1,
        }
        s = stats(client)
        assert (s["records"], s["duplicate_batches"], s["duplicate_records"]) == (3, 1, 1)


def test_stop_shuts_down_cleanly() -> None:
    before = set(threading.enumerate())
    srv = PlatformServer().start()
    url = srv.url
    with httpx.Client(base_url=url) as client:
        assert client.get("/healthz").status_code == 200
        srv.stop()
        with pytest.raises(httpx.ConnectError):
            client.get("/healthz")
    assert set(threading.enumerate()) <= before
    srv.stop()  # idempotent


def test_help_of_every_platform_command_has_an_example() -> None:
    runner = CliRunner()
    for args in (["platform", "--help"], ["platform", "run", "--help"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
        assert "Example:" in result.output
        assert "traceedge platform run" in result.output


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_run_serves_and_stops_cleanly_on_a_signal(sig: signal.Signals) -> None:
    code = "from traceedge.cli import main; main()"
    cmd = [sys.executable, "-c", code, "platform", "run", "--port", "0", "--latency-ms", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in first, first
        url = first.split()[-1]
        with httpx.Client(base_url=url) as client:
            assert post(client, "c1", [rec("A", 1)]).json()["accepted"] == 1
            assert client.get("/faults").json()["latency_ms"] == 1
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0, out
        assert "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_a_real_outage_with_a_shared_platform_keeps_its_state() -> None:
    platform = Platform(seed=3)
    try:
        with PlatformServer(platform=platform) as srv, httpx.Client(base_url=srv.url) as client:
            post(client, "k1", [rec("A", 1)])
            port = srv.port
        with httpx.Client(base_url=srv.url) as client, pytest.raises(httpx.ConnectError):
            post(client, "k2", [rec("A", 2)])  # connection refused while it is down
        with (
            PlatformServer(platform=platform, port=port) as srv,
            httpx.Client(base_url=srv.url) as c,
        ):
            assert post(c, "k1", [rec("A", 1)]).json()["status"] == "duplicate"
            assert stats(c)["records"] == 1
    finally:
        platform.close()
