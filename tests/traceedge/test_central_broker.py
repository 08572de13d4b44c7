"""The central broker's wall, against a real Mosquitto running what ``traceedge broker
config --role central --pki`` wrote, with certificates from ``traceedge pki``: identities
are client certificate CNs, a gateway speaks only for its own site, collectors alone read
every site, and whoever lacks a certificate of ours (or holds a revoked one) is refused,
with ``MqttLink.last_error`` naming the cause."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hostlib.mqttlink import BrokerSettings
from tests.conftest import require_mosquitto, wait_until
from tests.traceedge.wall import ME, Peer, cli, refused
from traceedge.brokers import Broker, free_port
from traceedge.provision import provision
from wire import topics


@dataclass
class Central:
    port: int
    ca: Path
    reg: Path
    out: Path
    broker: Broker
    gateways: dict[str, str]  # site -> gateway device id
    peers: list[Peer]

    def tls(self, name: str, ca: Path | None = None) -> tuple[Path, Path, Path]:
        issued = (ca or self.ca) / "issued"
        return self.ca / "ca.pem", issued / f"{name}.pem", issued / f"{name}.key"

    def peer(self, name: str, timeout: float = 10.0) -> Peer:
        p = Peer(self.port, f"{name}-{len(self.peers)}", tls=self.tls(name), timeout=timeout)
        self.peers.append(p)
        return p

    def settings(self, name: str | None = None, **kw: object) -> BrokerSettings:
        ca, cert, key = self.tls(name or "collector-1")
        base: dict[str, object] = {"port": self.port, "tls_ca": str(ca)}
        if name:
            base.update(tls_cert=str(cert), tls_key=str(key))
        return BrokerSettings(**{**base, **kw})  # type: ignore[arg-type]

    def configure(self) -> None:
        cli("broker", "config", "--role", "central", "--registry", self.reg, "--pki", self.ca,
            "--out", self.out, "--port", str(self.port), "--bind", "127.0.0.1",
            "--user", ME)  # fmt: skip


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Central]:
    require_mosquitto()
    ca, reg = tmp_path / "ca", tmp_path / "devices.json"
    cli("pki", "init", "--dir", ca)
    cli("pki", "issue", "--dir", ca, "--kind", "server", "--name", "central", "--host", "127.0.0.1")
    cli("pki", "issue", "--dir", ca, "--kind", "collector", "--name", "collector-1")
    gateways = {}
    for site in ("S1", "S2"):
        [(gw, _)] = provision("gateway", site, tmp_path / "devices", reg)
        provision("cylinder-reader", site, tmp_path / "devices", reg)
        cli("pki", "issue", "--dir", ca, "--kind", "gateway", "--name", gw.dev)
        gateways[site] = gw.dev
    port = free_port()
    out = tmp_path / "central"
    c = Central(
        port,
        ca,
        reg,
        out,
        Broker("mosquitto", port, tmp_path / "run", conf=out / "mosquitto.conf"),
        gateways,
        [],
    )
    c.configure()
    assert (out / "server.key").stat().st_mode & 0o077 == 0
    c.broker.start()
    yield c
    for p in c.peers:
        p.stop()
    c.broker.stop()


def test_a_gateway_speaks_only_for_its_own_site(central: Central) -> None:
    g1, g2 = central.gateways["S1"], central.gateways["S2"]
    collector = central.peer("collector-1")
    collector.subscribe(topics.shared_up("collectors"), topics.all_site_status())
    gw1 = central.peer(g1)
    gw1.subscribe(topics.all_up(), topics.site_ack("+"), topics.site_cmd("+"))
    gw2 = central.peer(g2)
    gw1.publish(topics.site_up("S2"), b"S2 batch forged by S1")
    gw1.publish(topics.site_status("S2"), b"S2 status forged by S1")
    gw1.publish(topics.site_ack("S1"), b"ack forged by S1")  # an impostor collector's ack
    gw1.publish(topics.site_cmd("S1"), b"registry forged by S1")  # a forged command
    gw1.publish(topics.site_up("S1"), b"S1 batch")
    gw1.publish(topics.site_status("S1"), b"S1 status")
    gw2.publish(topics.site_up("S2"), b"S2 batch")
    collector.wait_for(b"S2 batch")
    assert sorted(collector.payloads()) == [b"S1 batch", b"S1 status", b"S2 batch"]
    collector.publish(topics.site_ack("S2"), b"ack for S2")
    collector.publish(topics.site_cmd("S2"), b"cmd for S2")
    collector.publish(topics.site_ack("S1"), b"ack for S1")
    collector.publish(topics.site_cmd("S1"), b"cmd for S1")
    gw1.wait_for(b"cmd for S1")
    # S1 reads its own acks and commands, never S2's, never anybody's batches.
    assert gw1.payloads() == [b"ack for S1", b"cmd for S1"]


def test_a_collector_announces_only_itself_and_gateways_read_it(central: Central) -> None:
    """Presence (``collectors/{name}``): a collector writes its own, a gateway reads every
    one and writes none, so a gateway cannot make the others resend (it could only cost
    them one idempotent resend anyway: docs/trust.md)."""
    gw1 = central.peer(central.gateways["S1"])
    gw1.subscribe(topics.all_collector_states())
    collector = central.peer("collector-1")
    gw1.publish(topics.collector_state("collector-1"), b"forged by a gateway")
    collector.publish(topics.collector_state("collector-2"), b"up from collector-2?")
    collector.publish(topics.collector_state("collector-1"), b"up")
    gw1.wait_for(b"up")
    assert gw1.payloads() == [b"up"]


@pytest.mark.parametrize(
    ("case", "cause"),
    [
        ("no client certificate", "broker requires a client certificate"),
        ("certificate from another CA", "broker does not trust our client certificate"),
        ("broker not trusted", "TLS: certificate verify failed (unknown CA)"),
        ("plain TCP to the TLS port", "connection closed by the broker before CONNACK"),
        ("wrong host name", "the broker's certificate does not name localhost"),
    ],
)
def test_impostors_are_refused_and_the_link_says_why(
    central: Central, tmp_path: Path, case: str, cause: str
) -> None:
    other = tmp_path / "other-ca"  # a CA of the attacker's, same names as ours
    cli("pki", "init", "--dir", other, "--name", "traceedge project CA")
    cli("pki", "issue", "--dir", other, "--kind", "collector", "--name", "collector-1")
    _, cert, key = central.tls("collector-1", other)
    settings = {
        "no client certificate": central.settings(),
        "certificate from another CA": central.settings(tls_cert=str(cert), tls_key=str(key)),
        "broker not trusted": central.settings("collector-1", tls_ca=str(other / "ca.pem")),
        "plain TCP to the TLS port": BrokerSettings(port=central.port),
        "wrong host name": central.settings("collector-1", host="localhost"),
    }[case]
    assert refused(settings, cause)


def test_a_revoked_gateway_is_refused_after_a_reload(central: Central) -> None:
    g1, g2 = central.gateways["S1"], central.gateways["S2"]
    central.peer(g2).stop()  # in, before the revocation
    out = cli("pki", "revoke", "--dir", central.ca, "--name", g2)
    assert f"revoked gateway {g2}" in out
    central.configure()  # copies the new CRL
    assert central.broker.proc is not None
    central.broker.proc.send_signal(signal.SIGHUP)  # re-read config, ACL, CRL; keep sessions

    def reloaded() -> bool:
        try:
            central.peer(g2, timeout=2.0)  # still let in: not reloaded yet
        except AssertionError:
            return True
        return False

    wait_until(reloaded, 20, "the broker to reload its CRL")
    assert refused(central.settings(g2), "certificate revoked")
    central.peer(g1)  # the CRL locks out only what it lists
