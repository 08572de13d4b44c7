"""``traceedge demo`` takes down what it started however it is stopped: SIGTERM stops it in
order as Ctrl-C does; SIGKILL, which it cannot catch, still takes its broker, collector and
agent with it (they die with their parent: ``traceedge.lifeline``)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import require_mosquitto, wait_until

CHILDREN = ("mosquitto", "collector", "agent")


def role_of(p: psutil.Process) -> str | None:
    """Which of the demo's children ``p`` is (None: something else, e.g. a fork mid-exec)."""
    try:
        cmd = p.cmdline()
    except psutil.Error:
        return None
    if cmd and cmd[0].endswith("mosquitto"):
        return "mosquitto"
    if "traceedge" in cmd and "run" in cmd:
        return cmd[cmd.index("traceedge") + 1]
    return None


def gone(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE  # dead, waiting for init to reap it
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, psutil.Process]]]:
    """A demo long enough to be stopped midway, and its three children once all run."""
    require_mosquitto()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "traceedge",
            "demo",
            "--records",
            "100000",
            "--rate",
            "50",
            "--broker",
            "mosquitto",
            "--workdir",
            str(tmp_path / "demo"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    found: dict[str, psutil.Process] = {}

    def all_running() -> bool:
        for p in psutil.Process(proc.pid).children():
            role = role_of(p)
            if role is not None:
                found[role] = p
        return set(found) == set(CHILDREN)

    try:
        wait_until(all_running, 60, "the demo's broker, collector and agent")
        yield proc, found
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        assert proc.stderr is not None
        proc.stderr.close()
        for p in found.values():  # on a failure, nothing may outlive the test
            if not gone(p):
                p.kill()


def test_sigkill_of_the_demo_takes_its_children_with_it(
    demo: tuple[subprocess.Popen[str], dict[str, psutil.Process]],
) -> None:
    proc, children = demo
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    wait_until(
        lambda: all(gone(p) for p in children.values()),
        5,
        "the children to die with the demo: "
        + ", ".join(r for r, p in children.items() if not gone(p)),
    )


def test_sigterm_stops_the_demo_and_its_children_in_order(
    demo: tuple[subprocess.Popen[str], dict[str, psutil.Process]], tmp_path: Path
) -> None:
    proc, children = demo
    work = tmp_path / "demo"
    # past start-up (the stores open; on a loaded machine that takes more than a moment),
    # then a little more: terminals publishing, records on their way
    wait_until(
        lambda: (
            (work / "agent" / "outbox.sqlite").exists()
            and (work / "collector" / "collector.sqlite").exists()
        ),
        60,
        "the demo's agent and collector to open their stores",
    )
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err[-3000:]
    assert err.rstrip().endswith("Aborted!"), err[-1000:]  # as after Ctrl-C
    assert all(gone(p) for p in children.values()), [r for r, p in children.items()]
    # In order: the agent and the collector closed their stores (SQLite removes the WAL
    # file at the last close; a process killed with its store open leaves it behind).
    assert (work / "agent" / "outbox.sqlite").exists()
    assert not (work / "agent" / "outbox.sqlite-wal").exists()
    assert (work / "collector" / "collector.sqlite").exists()
    assert not (work / "collector" / "collector.sqlite-wal").exists()
