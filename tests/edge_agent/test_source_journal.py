"""The journal of a gateway-hosted device: boot and seq committed with the record, never
reused (also across ``kill -9``), freed only by acks for what was offered, status thinned
first and faults never dropped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.sources.journal import Journal, JournalError
from tests.drivers.props import SETTINGS
from wire.envelope import decode_record, verify_mac

KEY = bytes(range(32))
DEV = "EL-S1-0A0B0C"
REPO = Path(__file__).resolve().parents[2]


def status(i: int) -> dict[str, object]:
    return {
        "reg": "31103301062015000123",
        "dir": "stopped",
        "floor": i % 10,
        "door": "closed",
        "door_zone": True,
        "inspection": False,
        "maintenance": False,
        "faults": [],
    }


def fault(i: int) -> dict[str, object]:
    return {"reg": "31103301062015000123", "fault": "power_loss", "state": "raised", "floor": i}


def test_boot_grows_and_seqs_continue_across_opens(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal(path, DEV, KEY, 1 << 20)
    assert j.boot == 1
    assert [j.add("elevator.status", status(i), 1000 + i, "ntp")[0] for i in range(3)] == [1, 2, 3]
    j.high = 3
    assert j.free([(1, 3)], []) == 3 and j.depth() == 0
    j.close()
    j = Journal(path, DEV, KEY, 1 << 20)
    assert j.boot == 2 and j.next_seq == 4  # freed records' seqs are not used again
    seq, payload = j.add("elevator.fault", fault(1), 2000, "ntp")
    rec = decode_record(payload)
    assert (seq, rec["seq"], rec["boot"], rec["dev"]) == (4, 4, 2, DEV)
    assert verify_mac(rec, KEY)
    j.close()


def test_an_ack_frees_only_what_this_process_offered(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite", DEV, KEY, 1 << 20)
    for i in range(6):
        j.add("elevator.status", status(i), 1000, "ntp")
    assert j.free([(1, 6)], []) == 0  # nothing offered yet: a replayed ack frees nothing
    j.high = 4
    assert j.free([(1, 6)], []) == 4
    assert [s for s, _ in j.pending()] == [5, 6]
    j.high = 6
    assert j.free([], [6]) == 1  # quarantined by the agent: never accepted, so freed
    assert [s for s, _ in j.pending()] == [5]
    assert [s for s, _ in j.pending(after=5)] == []
    j.close()


def test_full_journal_thins_status_and_never_drops_a_fault(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite", DEV, KEY, 3000)
    kinds = {}
    for i in range(40):
        kind = "elevator.fault" if i % 4 == 0 else "elevator.status"
        seq, _ = j.add(kind, fault(i) if kind == "elevator.fault" else status(i), 1000, "ntp")
        kinds[seq] = kind
    left = [s for s, _ in j.pending()]
    assert all(s in left for s, k in kinds.items() if k == "elevator.fault")
    assert j.thinned > 0 and j.nbytes <= 3000 + 400
    samples = [s for s, _ in j.pending() if kinds[s] == "elevator.status"]
    j.high = max(samples)
    j.free([(s, s) for s in samples], [])  # acked: only faults are left
    for i in range(12):  # a fault goes in past the bound ...
        j.add("elevator.fault", fault(i), 1000, "ntp")
    assert j.over_cap > 0 and j.nbytes > 3000
    with pytest.raises(JournalError, match="full of protected records"):
        j.add("elevator.status", status(0), 1000, "ntp")
    j.close()


def test_another_devices_journal_is_refused(tmp_path: Path) -> None:
    Journal(tmp_path / "j.sqlite", DEV, KEY, 1 << 20).close()
    with pytest.raises(JournalError, match=f"journal of {DEV}"):
        Journal(tmp_path / "j.sqlite", "EL-S1-FFFFFF", KEY, 1 << 20)


WRITER = """
import sys
from pathlib import Path
from edge_agent.sources.journal import Journal
j = Journal(Path(sys.argv[1]), "EL-S1-0A0B0C", bytes(range(32)), 1 << 30)
print("boot", j.boot, flush=True)
i = 0
while True:
    seq, _ = j.add("elevator.fault", {"reg": "31103301062015000123", "fault": "power_loss",
                   "state": "raised", "floor": 1}, 1000, "ntp")
    print(seq, flush=True)
"""


def test_kill_9_while_writing_loses_no_stored_record_and_reuses_no_seq(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    told: list[int] = []
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == ["boot", str(round_ + 1)]
        seen: list[int] = []
        deadline = time.monotonic() + 30
        while len(seen) < 20 + 7 * round_ and time.monotonic() < deadline:
            seen.append(int(proc.stdout.readline()))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        told += seen
    j = Journal(path, DEV, KEY, 1 << 30)
    stored = [s for s, _ in j.pending(0, 100000)]
    assert stored == list(range(1, len(stored) + 1))  # contiguous: no seq skipped or reused
    assert set(told) <= set(stored)  # every seq the writer said it stored is there
    boots = {}
    for _, payload in j.pending(0, 100000):
        rec = decode_record(payload)
        assert verify_mac(rec, KEY)
        boots.setdefault(rec["boot"], []).append(rec["seq"])
    assert sorted(boots) == [1, 2, 3] and j.boot == 4
    assert j.next_seq == stored[-1] + 1
    j.close()


ops = st.lists(
    st.one_of(
        st.tuples(st.just("status"), st.integers(0, 9)),
        st.tuples(st.just("fault"), st.integers(0, 9)),
        st.tuples(st.just("offer"), st.integers(0, 5)),
        st.tuples(st.just("ack"), st.integers(0, 5)),
        st.tuples(st.just("reopen"), st.just(0)),
    ),
    max_size=60,
)


@SETTINGS
@given(ops, st.integers(1500, 6000))
def test_any_sequence_of_records_acks_and_restarts(steps: list[tuple[str, int]], cap: int) -> None:
    """Seqs are handed out once each, in order, across reopens; a fault stays until acked;
    the byte count is the journal's; an ack frees nothing beyond what was offered."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "j.sqlite"
        j = Journal(path, DEV, KEY, cap)
        used: list[int] = []
        faults: set[int] = set()
        freed: set[int] = set()
        for op, n in steps:
            if op in ("status", "fault"):
                body = status(n) if op == "status" else fault(n)
                try:
                    seq, _ = j.add(f"elevator.{op}", body, 1000, "ntp")
                except JournalError:
                    assert op == "status"
                    continue
                used.append(seq)
                if op == "fault":
                    faults.add(seq)
            elif op == "offer":
                j.high = max(j.high, min(j.last_seq, j.high + n))
            elif op == "ack":
                held = [s for s, _ in j.pending(0, 100000)]
                chosen = held[:n]
                j.free([(s, s) for s in chosen], [])
                freed |= {s for s in chosen if s <= j.high}
            else:
                j.close()
                j = Journal(path, DEV, KEY, cap)
            held = {s for s, _ in j.pending(0, 100000)}
            assert faults - freed <= held
            assert not held & freed
            assert j.nbytes == sum(len(p) for _, p in j.pending(0, 100000))
        assert used == list(range(1, len(used) + 1))
        j.close()
