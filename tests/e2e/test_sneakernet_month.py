"""Issue 13's must-show: a site offline for a simulated month, its outbox holding a million
records, hands them over by hand (``agent export``, ``collector import``, ``agent
import-receipt``, each its own process), then the link returns and the platform gets every
record exactly once. Real agent, collector, Mosquitto and platform.

The month is committed to the real agent's outbox through :meth:`Outbox.add_many` (as the
agent's intake does, 5,000 a transaction) while the agent is stopped, as if it had taken the
records from its terminals over 30 days: records of six terminals of the three families,
signed with their registered keys, their capture times spread over the month. The phases
and their rates are printed to the test log (``sneakernet month: …``).
"""

from __future__ import annotations

import os
import resource
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.bundle_import import check_bundle
from hostlib.errors import BundleError
from hostlib.registry import Registry
from tests.conftest import Chain, wait_until
from tests.sneakernet import MONTH_MS, fill_month, import_refused, traceedge

MONTH_RECORDS = 1_000_002  # six terminals, 166,667 records each
NEW_RECORDS = 300  # arrive at the agent after the export, before the receipt comes back
# the collector forwards in larger batches than its default 500: a million records to go
PLATFORM = {"batch_records": 5000}


@pytest.fixture
def say(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[str], None]]:
    """Print a line to the test log as it happens, whatever pytest captures."""

    def out(line: str) -> None:
        with capsys.disabled():
            print(f"\nsneakernet month: {line}", flush=True)

    yield out


class Clock:
    """Wall time and CPU time (this process and the children it has waited for: the
    commands, the fill's workers) of one phase. The CPU time shows what a phase costs
    whatever else the machine runs (a shared machine stretches the wall time)."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), self._cpu()

    @staticmethod
    def _cpu() -> float:
        own, kids = (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def rate(self, n: int) -> str:
        wall, cpu = time.perf_counter() - self.wall, self._cpu() - self.cpu
        return (
            f"{n:,} records in {wall:.1f} s, {n / wall:,.0f} records/s "
            f"({cpu:.1f} s of CPU, {n / max(cpu, 1e-3):,.0f} records per CPU-second)"
        )


def cli(*args: str) -> str:
    """Run ``traceedge ARGS`` as its own process; its stdout."""
    res = traceedge(*args)
    assert res.returncode == 0, f"traceedge {' '.join(args)}: {res.stderr}"
    return res.stdout


def depth(ch: Chain) -> int:
    return int(ch.agent_status()["depth"])


def offline_month(ch: Chain, n: int, say: Callable[[str], None]) -> dict[str, int]:
    """The link down for a month: ``n`` records in the agent's outbox, none at the centre.
    Returns each terminal's last seq."""
    ch.central.stop()  # the site's link is down
    ch.agent.stop()
    clock = Clock()
    start_ms = int(time.time() * 1000) - MONTH_MS
    last = fill_month(ch.outbox, ch.devices, n, start_ms)
    say(f"outbox filled: {clock.rate(n)} (6 terminals, 30 days)")
    ch.agent.start()
    wait_until(lambda: ch.agent_status()["local_connected"], 60, "the agent back up", 1.0)
    assert depth(ch) == n
    assert ch.collector_stats()["records"] == 0
    return last


def hand_over(ch: Chain, usb: Path, n: int, say: Callable[[str], None]) -> Path:
    """Export to the medium, import at the centre; the receipt's path."""
    clock = Clock()
    out = cli("agent", "export", "--config", str(ch.agent.config), "--to", str(usb), "-q")
    (bundle,) = usb.glob("*.bundle")
    assert f": {n} records of 6 devices" in out, out
    say(f"export: {clock.rate(n)}, a {bundle.stat().st_size / 1e6:.0f} MB bundle")
    config = str(ch.collectors[0].config)
    torn_and_tampered_refused(ch, bundle, n, config, usb.parent / "bad", say)
    clock = Clock()
    out = cli("collector", "import", "--config", config, str(bundle), "-q")
    assert f"{n} stored, 0 duplicates, 0 quarantined; {n} confirmed" in out, out
    say(f"import (check, verify, store, receipt): {clock.rate(n)}")
    receipt = bundle.with_name(bundle.name + ".receipt")
    assert receipt.is_file() and not list(usb.glob("*.part"))
    return receipt


def torn_and_tampered_refused(
    ch: Chain, bundle: Path, n: int, config: str, work: Path, say: Callable[[str], None]
) -> None:
    """A copy of the month's bundle with one byte flipped amid the records is refused by
    ``collector import`` and stores nothing; the copy cut at every 4 KiB boundary (and one
    byte short) is refused by the check the command runs first, each cut alone."""
    t0 = time.perf_counter()
    work.mkdir()
    bad = work / bundle.name
    shutil.copyfile(bundle, bad)
    size = bad.stat().st_size
    at = size // 2
    with open(bad, "r+b") as f:
        f.seek(at)
        was = f.read(1)
        f.seek(at)
        f.write(bytes([was[0] ^ 0x01]))
    why = import_refused(config, bad)
    assert "bundle refused: tampered" in why, why
    assert ch.collector_stats()["records"] == 0
    with open(bad, "r+b") as f:
        f.seek(at)
        f.write(was)
    registry = Registry(ch.registry)
    assert check_bundle(bad, registry).records == n  # the copy is whole again
    # from the end down: each truncate leaves the copy cut at the next boundary
    cuts = [size - 1, *range((size - 1) // 4096 * 4096, -1, -4096)]
    for cut in cuts:
        os.truncate(bad, cut)
        with pytest.raises(BundleError, match="refused") as err:
            check_bundle(bad, registry)
        assert "nothing stored" in str(err.value)
    assert ch.collector_stats()["records"] == 0
    bad.unlink()
    say(
        f"one flipped byte refused by the command; {len(cuts):,} cuts of the "
        f"{size / 1e6:.0f} MB bundle (every 4 KiB boundary) refused "
        f"({time.perf_counter() - t0:.1f} s)"
    )


def more_records(ch: Chain, last: dict[str, int], n: int) -> None:
    """``n`` new records from the same terminals, their sequences going on from the month."""
    fleet = ch.fleet(start={dev: (seq, 1) for dev, seq in last.items()})
    out = fleet.run(n, drain_timeout_s=60)
    assert out["pending"] == 0 and out["generated"] == n, out


def counters(ch: Chain) -> dict[str, Any]:
    c: dict[str, Any] = ch.agent_status()["counters"]
    return c


# about 3 minutes on two idle cores (the log prints each phase's wall and CPU time); a
# machine busy with other work stretches the wall time, hence more than the default 300 s
@pytest.mark.timeout(900)
def test_a_million_records_by_hand_then_the_link_returns_and_nothing_is_sent_twice(
    chain_factory: Callable[..., Chain], tmp_path: Path, say: Callable[[str], None]
) -> None:
    t_all = time.perf_counter()
    n, total = MONTH_RECORDS, MONTH_RECORDS + NEW_RECORDS
    ch = chain_factory(separate_central=True, platform_overrides=PLATFORM)
    last = offline_month(ch, n, say)
    receipt = hand_over(ch, tmp_path / "usb", n, say)
    assert ch.collector_stats()["records"] == n
    # new records while the medium travels back: not in the bundle, not confirmed
    more_records(ch, last, NEW_RECORDS)
    wait_until(lambda: depth(ch) == total, 30, f"{total} records in the outbox", 1.0)
    clock = Clock()
    out = cli("agent", "import-receipt", "--config", str(ch.agent.config), str(receipt))
    assert f"{n} records of 6 devices confirmed, {n} freed" in out, out
    say(f"import-receipt (free): {clock.rate(n)}")
    assert depth(ch) == NEW_RECORDS  # exactly what the centre did not confirm
    # the link returns: only the new records go up
    t0 = time.perf_counter()
    ch.central.start()
    ch.wait_forwarded(total, timeout=300)
    wait_until(lambda: depth(ch) == 0, 60, "the outbox drained", 1.0)
    say(f"link back: outbox drained, platform has all {total:,} ({time.perf_counter() - t0:.1f} s)")
    ch.assert_exactly_once(total)
    c = ch.collector_stats()
    assert c["duplicates"] == 0 and c["conflicts"] == 0, "a confirmed record was sent again"
    assert counters(ch)["uplinked"] == NEW_RECORDS, counters(ch)
    say(f"whole test {time.perf_counter() - t_all:.0f} s")


def test_link_back_before_the_receipt_resends_what_the_centre_has_as_duplicates(
    chain_factory: Callable[..., Chain], tmp_path: Path, say: Callable[[str], None]
) -> None:
    n, new = 20_000, 200
    ch = chain_factory(separate_central=True)
    last = offline_month(ch, n, say)
    receipt = hand_over(ch, tmp_path / "usb", n, say)
    more_records(ch, last, new)
    # the link returns before the receipt: the uplink sends everything the outbox holds
    ch.central.start()
    wait_until(lambda: depth(ch) == 0, 120, "the outbox acked", 1.0)
    c = ch.collector_stats()
    sent = counters(ch)["uplinked"]
    # every record the centre had already is a duplicate (and so is a batch sent again
    # after an ack timeout, under load), never a conflict
    assert c["duplicates"] >= n and c["conflicts"] == 0, c
    assert sent >= n + new, sent
    ch.wait_forwarded(n + new)
    ch.assert_exactly_once(n + new)
    say(
        f"receipt late: the uplink sent {sent:,}, the collector counted {c['duplicates']:,} "
        "duplicates, 0 conflicts; the platform has each once"
    )
    # the receipt comes back late: nothing left to free, nothing else happens
    out = cli("agent", "import-receipt", "--config", str(ch.agent.config), str(receipt))
    assert f"{n} records of 6 devices confirmed, 0 freed" in out, out
    assert depth(ch) == 0
