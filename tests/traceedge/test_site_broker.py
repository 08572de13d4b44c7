"""The site broker's wall, against a real Mosquitto running what ``traceedge broker config
--role site`` wrote from a registry that ``provision`` filled: each device logs in with the
password provisioning put in its config file (so Mosquitto accepts our Python-made hashes),
a terminal writes and reads only its own topics, the agent (the gateway's identity) all of
its site's, and nobody else gets in. The topic prefix is set, so the ACL must honour it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hostlib.mqttlink import BrokerSettings
from tests.conftest import require_mosquitto, wait_until
from tests.firmware import mpy_fw
from tests.traceedge.wall import ME, Peer, cli, refused
from traceedge.brokers import Broker, free_port
from traceedge.provision import provision
from wire import topics

PREFIX = "city7"


@dataclass
class Site:
    port: int
    gateway: str
    terminals: list[str]
    stranger: str  # a terminal of another site, in the same registry
    logins: dict[str, tuple[str, str]]
    peers: list[Peer]

    def peer(self, dev: str) -> Peer:
        """A session logged in as ``dev`` (client ids unique, so none replaces another)."""
        user, password = self.logins[dev]
        p = Peer(self.port, f"{dev}-{len(self.peers)}", user, password)
        self.peers.append(p)
        return p


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    require_mosquitto()
    reg = tmp_path / "devices.json"
    devs = tmp_path / "devices"
    made = [
        *provision("gateway", "S1", devs, reg),
        *provision("cylinder-reader", "S1", devs, reg, count=2),
        *provision("market-scale", "S2", devs, reg),
    ]
    logins = {}
    for d, path in made:
        link = json.loads(path.read_text())["link"]
        logins[d.dev] = (link["user"], link["password"])
    port = free_port()
    out = tmp_path / "site-broker"
    cli("broker", "config", "--role", "site", "--site", "S1", "--registry", reg, "--out", out,
        "--port", str(port), "--bind", "127.0.0.1", "--prefix", PREFIX, "--user", ME)  # fmt: skip
    assert (out / "passwd").stat().st_mode & 0o077 == 0
    broker = Broker("mosquitto", port, tmp_path / "run", conf=out / "mosquitto.conf").start()
    s = Site(port, made[0][0].dev, [made[1][0].dev, made[2][0].dev], made[3][0].dev, logins, [])
    yield s
    for p in s.peers:
        p.stop()
    broker.stop()


def test_a_terminal_publishes_as_itself_only(site: Site) -> None:
    t1, t2 = site.terminals
    agent = site.peer(site.gateway)
    agent.subscribe(topics.all_terminal_recs(PREFIX), topics.terminal_gate("+", PREFIX))
    other = site.peer(t2)
    other.subscribe(topics.terminal_ack(t2, PREFIX), topics.terminal_cmd(t2, PREFIX))
    term = site.peer(t1)
    # Forgeries first: had the broker passed any, it would arrive before what follows.
    term.publish(topics.terminal_rec(t2, PREFIX), b"forged record")
    term.publish(topics.terminal_gate(t2, PREFIX), b"forged gate request")
    term.publish(topics.terminal_ack(t2, PREFIX), b"forged ack")
    term.publish(topics.terminal_cmd(t2, PREFIX), b"forged command")
    term.publish(topics.terminal_rec(t1, PREFIX), b"own record")
    term.publish(topics.terminal_gate(t1, PREFIX), b"own gate request")
    agent.wait_for(b"own gate request")
    assert agent.payloads() == [b"own record", b"own gate request"]
    agent.publish(topics.terminal_ack(t2, PREFIX), b"ack for t2")
    other.wait_for(b"ack for t2")
    assert other.payloads() == [b"ack for t2"]


def test_a_terminal_reads_only_its_own_acks_and_commands(site: Site) -> None:
    t1, t2 = site.terminals
    snoop = site.peer(t1)
    snoop.subscribe(
        topics.terminal_ack("+", PREFIX), topics.terminal_cmd("+", PREFIX), "#"
    )  # subscribing is allowed; what is delivered is checked per message
    agent = site.peer(site.gateway)
    agent.publish(topics.terminal_ack(t2, PREFIX), b"ack for t2")
    agent.publish(topics.terminal_cmd(t2, PREFIX), b"cmd for t2")
    agent.publish(topics.terminal_ack(t1, PREFIX), b"ack for t1")
    agent.publish(topics.terminal_cmd(t1, PREFIX), b"cmd for t1")
    snoop.wait_for(b"cmd for t1")
    assert set(snoop.payloads()) == {b"ack for t1", b"cmd for t1"}  # "#" matches twice


def test_the_agent_cannot_write_records_for_a_terminal(site: Site) -> None:
    t1, _ = site.terminals
    agent = site.peer(site.gateway)
    agent.subscribe(topics.all_terminal_recs(PREFIX))
    forger = site.peer(site.gateway)  # a second session with the gateway's login
    forger.publish(topics.terminal_rec(t1, PREFIX), b"record forged by the gateway")
    site.peer(t1).publish(topics.terminal_rec(t1, PREFIX), b"real record")
    agent.wait_for(b"real record")
    assert agent.payloads() == [b"real record"]


@pytest.mark.parametrize("who", ["wrong password", "anonymous", "other site", "gateway name"])
def test_who_is_refused_and_what_the_link_says(site: Site, who: str) -> None:
    t1, _ = site.terminals
    user, password = {
        "wrong password": (t1, "not-the-password"),
        "anonymous": (None, None),
        "other site": site.logins[site.stranger],
        "gateway name": (site.gateway, site.logins[t1][1]),
    }[who]
    settings = BrokerSettings(port=site.port, username=user, password=password)
    assert refused(settings, "connection refused: not authorised (bad username or password)")


FIRMWARE_LOGIN = """
import asyncio, json
import tesim
tesim.install()  # the simulated machine module te.hal imports; time and TCP are real
from te.config import Identity, Section
from te.hal import Clock
from te.mqttlink import MqttChannel
from tesim.jsnet import JsTransport

async def connect(conf, want_up):
    ident = Identity(Section(conf, "config.json:"))
    lk = ident.link  # as te.runtime builds the channel: user and password from the config
    clock = Clock()
    ch = MqttChannel(JsTransport(), clock, ident.dev, lk.host, lk.port, lk.prefix,
                     user=lk.user, password=lk.password, backoff_min_ms=200, reply_ms=4000)
    acks = []
    ch.on_ack = acks.append
    sent = False
    for _ in range(1500):
        ch.poll(clock.ticks_ms())
        if not want_up and ch.failures:
            print("FW refused: " + ch.last_error)
            return
        if ch.up() and not sent:
            sent = ch.send_record(1, b"record from the firmware")
        if acks:
            print("FW ack " + acks[0].decode())
            ch.close()
            return
        await asyncio.sleep_ms(10)
    print("FW timed out: " + ch.last_error)

conf = json.loads(CONF)
bad = json.loads(CONF)
bad["link"]["password"] = "not-the-password"
await connect(bad, False)
await connect(conf, True)
"""


def test_the_firmware_logs_in_with_its_provisioned_config(site: Site, tmp_path: Path) -> None:
    """The firmware's own MQTT client under MicroPython: the config provisioning wrote
    parses, its CONNECT with user and password is accepted (a wrong password is not), and
    its record and ack cross the ACL."""
    t1 = site.terminals[0]
    conf = json.loads((tmp_path / "devices" / f"{t1}.json").read_text())
    conf["link"].update(host="127.0.0.1", port=site.port, prefix=PREFIX)
    agent = site.peer(site.gateway)
    agent.subscribe(topics.all_terminal_recs(PREFIX))
    code = f"CONF = {json.dumps(json.dumps(conf))}\n" + FIRMWARE_LOGIN
    try:
        proc, job = mpy_fw.start(mpy_fw.job(code, is_async=True))
    except mpy_fw.MissingTool as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        wait_until(
            lambda: b"record from the firmware" in agent.payloads() or proc.poll() is not None,
            60,
            "the firmware's record",
        )
        agent.publish(topics.terminal_ack(t1, PREFIX), b"ack from the agent")
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        job.unlink(missing_ok=True)
    assert "FW refused: broker refused the connection (rc 5)" in out, out
    assert "FW ack ack from the agent" in out, out
