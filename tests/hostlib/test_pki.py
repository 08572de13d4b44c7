"""The project CA: what it issues verifies against it (server certificates by
cryptography's X.509 path validation for their host names; client certificates, which the
brokers accept by CN, by signature), the folder keeps keys private, a name has one live
certificate, and the CRL lists exactly the revoked serials. Real TLS with these files is
tested against Mosquitto in ``tests/traceedge/test_broker_wall.py``."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from hostlib import cadir
from hostlib.errors import ConfigError

NOW = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)


def mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    d = tmp_path / "ca"
    cadir.init(d, "test CA", 3650, 30, NOW)
    return d


def load(p: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(p.read_bytes())


def test_init_makes_a_ca_with_a_private_key_and_an_empty_crl(ca: Path) -> None:
    assert mode(ca / "ca.key") == 0o600
    cert = load(ca / "ca.pem")
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    crl = x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())
    assert len(list(crl)) == 0 and crl.is_signature_valid(cert.public_key())
    assert crl.next_update_utc == NOW + dt.timedelta(days=30)
    with pytest.raises(ConfigError, match="already exists"):
        cadir.init(ca, "again", 10, 10, NOW)
    assert load(ca / "ca.pem") == cert


def test_server_certificate_verifies_for_its_hosts_only(ca: Path) -> None:
    done = cadir.issue(ca, "server", "central", ("mqtt.example.org", "203.0.113.7"), 365, NOW)
    assert mode(done.key) == 0o600
    leaf = load(done.cert)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    store = Store([load(ca / "ca.pem")])
    verify_at = NOW + dt.timedelta(days=1)
    for name in (
        x509.DNSName("mqtt.example.org"),
        x509.IPAddress(ipaddress.ip_address("203.0.113.7")),
    ):
        verifier = PolicyBuilder().store(store).time(verify_at).build_server_verifier(name)
        verifier.verify(leaf, [])
    other = (
        PolicyBuilder()
        .store(store)
        .time(verify_at)
        .build_server_verifier(x509.DNSName("evil.example.org"))
    )
    with pytest.raises(x509.verification.VerificationError):
        other.verify(leaf, [])


def test_client_certificate_names_the_device_and_is_signed_by_the_ca(ca: Path) -> None:
    done = cadir.issue(ca, "gateway", "GW-S1-0A1B2C", (), 365, NOW)
    leaf = load(done.cert)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "GW-S1-0A1B2C"
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    leaf.verify_directly_issued_by(load(ca / "ca.pem"))
    other_ca = ca.parent / "other"
    cadir.init(other_ca, "test CA", 10, 10, NOW)  # same name, another key
    with pytest.raises(InvalidSignature):
        leaf.verify_directly_issued_by(load(other_ca / "ca.pem"))


def test_one_live_certificate_per_name_until_revoked(ca: Path) -> None:
    first = cadir.issue(ca, "collector", "collector-1", (), 365, NOW)
    with pytest.raises(ConfigError, match="revoke it first"):
        cadir.issue(ca, "collector", "collector-1", (), 365, NOW)
    with pytest.raises(ConfigError, match="revoke it first"):  # names are unique across kinds
        cadir.issue(ca, "gateway", "collector-1", (), 365, NOW)
    [gone] = cadir.revoke(ca, NOW, name="collector-1")
    assert gone.serial == first.entry.serial
    second = cadir.issue(ca, "collector", "collector-1", (), 365, NOW)
    assert second.entry.serial != first.entry.serial
    later = NOW + dt.timedelta(days=400)  # expired: the name is free again
    assert cadir.issue(ca, "collector", "collector-1", (), 365, later).entry.name == "collector-1"


def test_crl_lists_exactly_the_revoked_serials(ca: Path) -> None:
    a = cadir.issue(ca, "gateway", "GW-A", (), 365, NOW)
    b = cadir.issue(ca, "gateway", "GW-B", (), 365, NOW)
    cadir.revoke(ca, NOW, serial=a.entry.serial.upper())
    crl = x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(load(a.cert).serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(load(b.cert).serial_number) is None
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    with pytest.raises(ConfigError, match="no unrevoked certificate"):
        cadir.revoke(ca, NOW, name="GW-A")
    with pytest.raises(ConfigError, match="exactly one"):
        cadir.revoke(ca, NOW)
    until = cadir.refresh_crl(ca, NOW + dt.timedelta(days=20), days=90)
    again = x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())
    assert again.next_update_utc == until == NOW + dt.timedelta(days=110)
    assert again.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > number
    assert [e.name for e in cadir.certs(ca) if e.revoked] == ["GW-A"]


@pytest.mark.parametrize(
    ("kind", "name", "hosts", "why"),
    [
        ("gateway", "GW 1", (), "A-Z"),
        ("gateway", "GW\nuser admin", (), "A-Z"),
        ("gateway", "GW-1", ("mqtt.example.org",), "names no hosts"),
        ("server", "central", (), "at least one host"),
        ("server", "central", ("bad host",), "not a DNS name"),
        ("printer", "p1", (), "one of"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(
    ca: Path, kind: str, name: str, hosts: tuple[str, ...], why: str
) -> None:
    before = (ca / "index.json").read_text()
    with pytest.raises(ConfigError, match=why):
        cadir.issue(ca, kind, name, hosts, 30, NOW)
    assert (ca / "index.json").read_text() == before


def test_a_folder_without_a_ca_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pki init"):
        cadir.issue(tmp_path, "gateway", "GW-1", (), 30, NOW)
    (tmp_path / "ca.key").write_text("x")
    (tmp_path / "index.json").write_text(json.dumps({"certs": [{"nope": 1}]}))
    with pytest.raises(ConfigError, match="not a CA index"):
        cadir.certs(tmp_path)


def test_certificate_validity_never_outlives_the_ca(tmp_path: Path) -> None:
    cadir.init(tmp_path, "short", 10, 5, NOW)
    done = cadir.issue(tmp_path, "gateway", "GW-1", (), 825, NOW)
    assert load(done.cert).not_valid_after_utc == load(tmp_path / "ca.pem").not_valid_after_utc
