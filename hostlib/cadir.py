"""The project CA's folder: key files, the index of issued certificates, the CRL.

::

    D/ca.pem              the CA certificate: brokers' ``cafile``, clients' ``tls_ca``
    D/ca.key              the CA's private key (mode 0600; keep this folder offline)
    D/crl.pem             revoked serials, signed by the CA: the central broker's ``crlfile``
    D/index.json          every certificate issued: serial, kind, name, hosts, dates, revoked
    D/issued/N.pem, N.key a certificate and its key (0600) for the device or host named N

A name has at most one live (issued, not revoked, not expired) certificate: to replace one,
revoke it, then issue again. Every write goes to a temporary file that is renamed into
place, under a lock on the folder, so an interrupted command leaves the old state.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hostlib import pki
from hostlib.errors import ConfigError

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
CRL = "crl.pem"
INDEX = "index.json"
ISSUED = "issued"


@dataclass(frozen=True)
class CertEntry:
    """One line of the index (times in UTC, ISO 8601; ``serial`` in hex)."""

    serial: str
    kind: str
    name: str
    issued: str
    not_after: str
    hosts: list[str] = field(default_factory=list)
    revoked: str | None = None

    def live(self, now: dt.datetime) -> bool:
        return self.revoked is None and dt.datetime.fromisoformat(self.not_after) > now


@dataclass(frozen=True)
class IssuedFiles:
    cert: Path
    key: Path
    entry: CertEntry


def _write(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=path.name + ".")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(d: Path) -> Iterator[None]:
    with open(d / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_index(d: Path) -> dict[str, Any]:
    p = d / INDEX
    if not (d / CA_KEY).exists() or not p.exists():
        raise ConfigError(str(d), "", "no CA here: create one with `traceedge pki init --dir`")
    try:
        data: dict[str, Any] = json.loads(p.read_text(encoding="utf-8"))
        for c in data["certs"]:
            CertEntry(**c)
        if not isinstance(data["crl_number"], int) or not isinstance(data["crl_days"], int):
            raise TypeError("crl_number and crl_days must be integers")
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(str(p), "", f"not a CA index: {exc}") from exc
    return data


def _write_index(d: Path, data: dict[str, Any]) -> None:
    _write(d / INDEX, json.dumps(data, indent=1, sort_keys=True).encode(), 0o644)


def certs(d: Path) -> list[CertEntry]:
    """Every certificate the CA in ``d`` issued, oldest first."""
    return [CertEntry(**c) for c in _read_index(d)["certs"]]


def _crl(d: Path, data: dict[str, Any], now: dt.datetime) -> bytes:
    revoked = [
        (int(c["serial"], 16), dt.datetime.fromisoformat(c["revoked"]))
        for c in data["certs"]
        if c["revoked"] is not None
    ]
    return pki.make_crl(
        (d / CA_CERT).read_bytes(),
        (d / CA_KEY).read_bytes(),
        revoked,
        data["crl_number"],
        data["crl_days"],
        now,
    )


def init(d: Path, name: str, days: int, crl_days: int, now: dt.datetime) -> None:
    """Create a CA in ``d`` (made if missing); an existing CA is never overwritten."""
    d.mkdir(parents=True, exist_ok=True)
    with _locked(d):
        if (d / CA_KEY).exists():
            raise ConfigError(str(d / CA_KEY), "", "a CA already exists here; not overwritten")
        ca = pki.make_ca(name, days, now)
        (d / ISSUED).mkdir(exist_ok=True)
        data: dict[str, Any] = {"crl_number": 1, "crl_days": crl_days, "certs": []}
        _write(d / CA_KEY, ca.key_pem, 0o600)
        _write(d / CA_CERT, ca.cert_pem, 0o644)
        _write(d / CRL, _crl(d, data, now), 0o644)
        _write_index(d, data)


def issue(
    d: Path, kind: str, name: str, hosts: tuple[str, ...], days: int, now: dt.datetime
) -> IssuedFiles:
    """Issue a certificate for ``name``; refused while ``name`` has a live one."""
    pki.check_name(name)
    with _locked(d):
        data = _read_index(d)
        for c in data["certs"]:
            if c["name"] == name and CertEntry(**c).live(now):
                raise ConfigError(
                    "--name",
                    name,
                    f"already has live {c['kind']} certificate {c['serial']}; "
                    "revoke it first (traceedge pki revoke)",
                )
        made = pki.make_cert(
            (d / CA_CERT).read_bytes(), (d / CA_KEY).read_bytes(), kind, name, hosts, days, now
        )
        entry = CertEntry(
            serial=f"{made.serial:x}",
            kind=kind,
            name=name,
            issued=now.isoformat(),
            not_after=made.not_after.isoformat(),
            hosts=list(hosts),
        )
        out = d / ISSUED
        out.mkdir(exist_ok=True)
        cert, key = out / f"{name}.pem", out / f"{name}.key"
        _write(key, made.key_pem, 0o600)
        _write(cert, made.cert_pem, 0o644)
        data["certs"].append(asdict(entry))
        _write_index(d, data)
    return IssuedFiles(cert, key, entry)


def revoke(
    d: Path, now: dt.datetime, name: str | None = None, serial: str | None = None
) -> list[CertEntry]:
    """Revoke the live certificate of ``name`` (or the one with ``serial``) and rewrite
    the CRL; returns what was revoked. Nothing matching is an error."""
    if (name is None) == (serial is None):
        raise ConfigError("--name/--serial", "", "give exactly one of them")
    try:
        number = int(serial, 16) if serial is not None else None
    except ValueError:
        raise ConfigError("--serial", serial or "", "not a hexadecimal serial") from None
    with _locked(d):
        data = _read_index(d)
        hit = []
        for c in data["certs"]:
            e = CertEntry(**c)
            match = e.name == name if number is None else int(e.serial, 16) == number
            if match and e.revoked is None:
                c["revoked"] = now.isoformat()
                hit.append(CertEntry(**c))
        if not hit:
            what = ("--name", name) if name is not None else ("--serial", serial)
            raise ConfigError(what[0], what[1] or "", "no unrevoked certificate matches")
        data["crl_number"] += 1
        _write(d / CRL, _crl(d, data, now), 0o644)
        _write_index(d, data)
    return hit


def refresh_crl(d: Path, now: dt.datetime, days: int | None = None) -> dt.datetime:
    """Sign the CRL again (valid ``days`` from now, default as before); its next update."""
    with _locked(d):
        data = _read_index(d)
        if days is not None:
            data["crl_days"] = days
        data["crl_number"] += 1
        _write(d / CRL, _crl(d, data, now), 0o644)
        _write_index(d, data)
        return now + dt.timedelta(days=data["crl_days"])
