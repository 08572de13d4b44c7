"""X.509 for the project CA, as pure functions over PEM bytes (``cryptography``).

What the brokers and clients need, nothing more::

    CA         EC P-256, CA:TRUE pathlen 0, keyCertSign + cRLSign
    ├── server     serverAuth, SANs = the broker's DNS names / IP addresses
    ├── gateway    clientAuth, CN = the gateway's device id      } Mosquitto's
    └── collector  clientAuth, CN = the collector's client id    } use_identity_as_username
    CRL        the revoked serials, signed by the CA (Mosquitto's ``crlfile``)

Serials are random (159 bits), so two certificates never share one even when issued from
copies of the CA folder. The folder itself (index, files, modes) is :mod:`hostlib.cadir`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hostlib.errors import ConfigError

KINDS = ("server", "gateway", "collector")
CLIENT_KINDS = ("gateway", "collector")
# A CN becomes a Mosquitto user name and an ACL line: no spaces, colons or newlines.
NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key (PEM), and the serial the index records."""

    cert_pem: bytes
    key_pem: bytes
    serial: int
    not_after: dt.datetime


def check_name(name: str, what: str = "--name") -> str:
    if not NAME_RE.fullmatch(name):
        raise ConfigError(what, name, "1..64 characters of A-Z a-z 0-9 . _ -")
    return name


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_ca(
    ca_cert_pem: bytes, ca_key_pem: bytes
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(ca_cert_pem)
    key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError("ca.key", "", "not an EC private key")
    return cert, key


def make_ca(name: str, days: int, now: dt.datetime) -> Issued:
    """A self-signed CA certificate and its key."""
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    serial = x509.random_serial_number()
    not_after = now + dt.timedelta(days=days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), serial, not_after)


def _san(hosts: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9*]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", h):
                raise ConfigError("--host", h, "not a DNS name or an IP address") from None
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


def make_cert(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    kind: str,
    name: str,
    hosts: tuple[str, ...],
    days: int,
    now: dt.datetime,
) -> Issued:
    """A leaf certificate: ``server`` (SANs from ``hosts``) or a client (CN = ``name``)."""
    if kind not in KINDS:
        raise ConfigError("--kind", kind, f"one of {', '.join(KINDS)}")
    check_name(name)
    if kind == "server" and not hosts:
        raise ConfigError("--host", "", "a server certificate needs at least one host name or IP")
    if kind != "server" and hosts:
        raise ConfigError("--host", hosts[0], f"a {kind} certificate names no hosts")
    ca_cert, ca_key = _load_ca(ca_cert_pem, ca_key_pem)
    key = _new_key()
    serial = x509.random_serial_number()
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if kind == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if hosts:
        builder = builder.add_extension(_san(hosts), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), serial, not_after)


def make_crl(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    revoked: Iterable[tuple[int, dt.datetime]],
    number: int,
    days: int,
    now: dt.datetime,
) -> bytes:
    """The CRL listing ``revoked`` (serial, when), valid until ``now + days``.

    A broker that checks CRLs refuses *every* client once the CRL's next update has
    passed, so refresh it (``traceedge pki crl``) well before then.
    """
    ca_cert, ca_key = _load_ca(ca_cert_pem, ca_key_pem)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=days))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
