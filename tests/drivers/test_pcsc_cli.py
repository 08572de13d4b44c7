"""``traceedge sim card`` and ``traceedge diag card`` as child processes, against the real
pcscd with the vpcd reader. Fails (never skips) with the install command when they are
missing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.card_sim import CardSimulator
from simulators.pcscd import Pcscd, free_port_pair
from tests.drivers.test_modbus_cli import Child
from tests.drivers.test_pcsc_reader import start_pcscd

UID = "04A1B2C3"


@pytest.fixture
def pcscd(tmp_path: Path) -> Iterator[Pcscd]:
    p = start_pcscd(tmp_path / "pcscd")
    yield p
    p.stop()


def diag(pcscd: Pcscd, *args: str) -> tuple[int, str, str]:
    child = Child("diag", "card", *args, env=pcscd.env)
    rc = child.proc.wait(timeout=30)
    out = "\n".join(child.drain())
    err = "\n".join(child.drain(err=True))
    child.stop()
    return rc, out, err


def test_sim_card_and_diag_once_json(pcscd: Pcscd) -> None:
    sim = Child("sim", "card", "--vpcd-port", str(pcscd.vpcd_port), "--uid", UID)
    try:
        assert sim.readline() == f"vpcd://127.0.0.1:{pcscd.vpcd_port}"
        assert sim.readline() == f"inserted {UID}"
        rc, out, err = diag(pcscd, "--reader", "Virtual PCD", "--once", "--json")
        assert rc == 0, err
        assert json.loads(out) == {"reader": pcscd.reader, "uid": UID}
        assert sim.send("remove") == "removed"
        assert sim.send("insert 04112233445566") == "inserted 04112233445566"
        rc, out, err = diag(pcscd, "--once", "--json")
        assert rc == 0, err
        assert json.loads(out)["uid"] == "04112233445566"
        assert sim.send("remove") == "removed"
        rc, out, err = diag(pcscd, "--once", "--timeout", "0.5")
        assert rc == 1 and "no card" in err
    finally:
        assert sim.stop() == 0


def test_diag_card_follows_cards_until_stopped(pcscd: Pcscd) -> None:
    child = Child("diag", "card", "--json", env=pcscd.env)
    card = CardSimulator(pcscd.vpcd_port)
    try:
        assert json.loads(child.readline())["event"] == "online"
        card.insert(UID)
        assert json.loads(child.readline()) == {
            "event": "inserted",
            "reader": pcscd.reader,
            "uid": UID,
        }
        card.remove()
        assert json.loads(child.readline())["event"] == "removed"
        pcscd.stop()
        event = json.loads(child.readline())
        assert event["event"] == "offline" and event["retry"] is True
        pcscd.start()
        assert json.loads(child.readline())["event"] == "online"
    finally:
        card.close()
        assert child.stop() == 0


def test_sim_card_with_its_own_pcscd(tmp_path: Path) -> None:
    start_pcscd(tmp_path / "probe").stop()  # fails with the install command if missing
    port = free_port_pair()
    sim = Child("sim", "card", "--pcscd", "--vpcd-port", str(port), "--uid", UID)
    try:
        assert sim.readline() == f"vpcd://127.0.0.1:{port}"
        name, _, sock = sim.readline().partition("=")
        assert name == "PCSCLITE_CSOCK_NAME" and os.path.exists(sock)
        assert sim.readline() == f"inserted {UID}"
        child = Child("diag", "card", "--pcscd-socket", sock, "--once", "--json")
        assert child.proc.wait(timeout=30) == 0, "\n".join(child.drain(err=True))
        assert json.loads(child.readline())["uid"] == UID
        child.stop()
    finally:
        assert sim.stop() == 0
    assert not os.path.exists(sock)  # its pcscd is gone with it


def test_diag_card_without_pcscd_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "PCSCLITE_CSOCK_NAME": str(tmp_path / "nothing.comm")}
    child = Child("diag", "card", "--once", "--timeout", "0.3", env=env)
    assert child.proc.wait(timeout=30) == 1
    err = "\n".join(child.drain(err=True))
    child.stop()
    assert "cannot reach pcscd" in err and "retrying may help" in err
