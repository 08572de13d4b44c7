"""The device registry: which devices exist, their site, type and MAC key.

A JSON file written by ``traceedge device provision`` and read by the collector (and, when
configured, by an edge agent to check MACs at the edge)::

    {"devices": {"CYL-S1-0001": {"key": "<64 hex>", "type": "cylinder-reader",
                                 "site": "S1", "provisioned": 1763900000,
                                 "mqtt_hash": "$7$101$..."}}}

``mqtt_hash`` (optional: devices provisioned before brokers had passwords lack it) is the
Mosquitto hash of the device's MQTT password, all ``traceedge broker config`` needs to
write a broker's password file; the password itself lives only in the device's config.

Writers replace the file atomically (write to a temp file, fsync, rename) under an
``fcntl`` lock; readers reload it when its modification time changes.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hostlib.errors import ConfigError

log = logging.getLogger(__name__)

DEVICE_TYPES = (
    "cylinder-reader",
    "elevator-box",
    "market-scale",
    "warehouse-terminal",
    "gateway",
)
FAMILY_OF_TYPE = {
    "cylinder-reader": "cylinder",
    "elevator-box": "elevator",
    "market-scale": "market",
    "warehouse-terminal": "goods",
    "gateway": "gateway",
}


@dataclass(frozen=True)
class Device:
    """A registered device. ``key`` is its newest key; ``keys`` every key it has had, as
    ``(from_seq, key)`` in ascending order: a rotated key is valid from a stated sequence
    number on, so no clock has to be trusted. ``revoked_from``: records with this sequence
    number or later are refused (None: not revoked)."""

    dev: str
    key: bytes
    type: str
    site: str
    mqtt_hash: str = ""
    keys: tuple[tuple[int, bytes], ...] = ()
    revoked_from: int | None = None

    def key_for(self, seq: int) -> bytes:
        """The key that signs record ``seq``."""
        chosen = self.keys[0][1] if self.keys else self.key
        for from_seq, key in self.keys:
            if from_seq <= seq:
                chosen = key
        return chosen

    def accepts(self, seq: int) -> bool:
        """False for a record at or past the device's revocation point."""
        return self.revoked_from is None or seq < self.revoked_from

    def recent_keys(self) -> list[bytes]:
        """The newest key and the one before it (a terminal may hold either while a
        rotation reaches it)."""
        ks = [k for _, k in self.keys] or [self.key]
        return list(reversed(ks[-2:]))


def _device(dev: str, d: dict[str, Any]) -> Device:
    key = bytes.fromhex(d["key"])
    history = d.get("keys") or [{"key": d["key"], "from_seq": 1}]
    keys = tuple(sorted((int(k["from_seq"]), bytes.fromhex(k["key"])) for k in history))
    revoked = d.get("revoked")
    revoked_from = int(revoked["from_seq"]) if isinstance(revoked, dict) else None
    mqtt_hash = d.get("mqtt_hash", "")
    if not isinstance(mqtt_hash, str):
        raise TypeError(f"{dev}: mqtt_hash must be a string")
    return Device(
        dev,
        key,
        str(d["type"]),
        str(d["site"]),
        mqtt_hash=mqtt_hash,
        keys=keys,
        revoked_from=revoked_from,
    )


MALFORMED = (ValueError, KeyError, TypeError, AttributeError, ArithmeticError, RecursionError)
"""What a file half way through a hand edit raises: any shape, numbers like 1e400, deep
nesting."""


def _parse(path: Path, text: str) -> dict[str, Device]:
    try:
        data = json.loads(text) if text.strip() else {"devices": {}}
        return {dev: _device(dev, d) for dev, d in data["devices"].items()}
    except MALFORMED as exc:
        raise ConfigError(str(path), "devices", f"not a device registry: {exc}") from exc


def _parse_versioned(path: Path) -> tuple[dict[str, Device], int]:
    text = path.read_text(encoding="utf-8")
    devices = _parse(path, text)
    try:
        version = int(json.loads(text).get("version", 0)) if text.strip() else 0
    except (ValueError, TypeError, AttributeError, ArithmeticError) as exc:
        raise ConfigError(str(path), "version", f"not a registry version: {exc}") from exc
    return devices, version


def load_identity(path: Path | str) -> Device:
    """A device's own config file (written by provisioning): its id, key, type and site,
    and after ``traceedge device rotate-key`` every key with the seq it starts at."""
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
        keys = tuple((int(f), bytes.fromhex(k)) for f, k in d.get("keys", []))
        return Device(d["dev"], bytes.fromhex(d["key"]), d["type"], d["site"], keys=keys)
    except FileNotFoundError:
        raise ConfigError(str(p), "", "identity file not found") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(str(p), "", f"not a device config file: {exc}") from exc


class Registry:
    """Read side, reloaded when the file changes (checked at most once a second)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._devices: dict[str, Device] = {}
        self._loaded = False
        self._checked = time.monotonic()
        self.version = 0  # grows with every write of the file
        self.problem: str | None = None  # why the file in force is not the file on disk
        self.reload()

    def reload(self) -> None:
        """Take the file if it changed. At the first load a missing or broken file is a
        ConfigError. A file that disappears or breaks after a good load never changes who
        is trusted: the last good registry stays in force and :attr:`problem` says why (an
        alarm for the operator)."""
        with self._lock:
            try:
                st = self.path.stat()
                if st.st_mtime_ns == self._mtime:
                    return
                devices, version = _parse_versioned(self.path)
            except FileNotFoundError:
                if not self._loaded:  # a registry never read is not an empty one
                    raise ConfigError(str(self.path), "", "registry file not found") from None
                self._fail("registry file missing; the last good registry stays in force")
                return
            except (ConfigError, OSError) as exc:  # OSError: unreadable (permissions, a folder)
                if not self._loaded:
                    raise
                self._fail(f"{exc}; the last good registry stays in force")
                self._mtime = st.st_mtime_ns if isinstance(exc, ConfigError) else None
                return
            self._devices, self._mtime, self._loaded = devices, st.st_mtime_ns, True
            self.version = version
            self.problem = None

    def _fail(self, problem: str) -> None:
        if problem != self.problem:
            log.error("device registry %s: %s", self.path, problem)
        self.problem = problem

    def get(self, dev: str) -> Device | None:
        """The device, from a registry at most a second old: a key rotated or a device
        revoked in the file counts from the next second on; a device provisioned a moment
        ago is looked for at once."""
        now = time.monotonic()
        if now - self._checked >= 1.0:
            self._checked = now
            self.reload()
        d = self._devices.get(dev)
        if d is None:
            self.reload()
            d = self._devices.get(dev)
        return d

    def devices(self) -> dict[str, Device]:
        return dict(self._devices)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read(p: Path) -> dict[str, Any]:
    """The registry file's JSON for an update; a broken file is refused, never rebuilt."""
    data: dict[str, Any] = {"devices": {}}
    if p.exists() and p.read_text(encoding="utf-8").strip():
        _parse(p, p.read_text(encoding="utf-8"))
        data = json.loads(p.read_text(encoding="utf-8"))
    return data


def _write(p: Path, data: dict[str, Any], version: int | None = None) -> None:
    """Replace the file atomically; ``version`` grows with every write (the push-down to
    the sites applies only a newer one) unless given."""
    data["version"] = int(data.get("version", 0)) + 1 if version is None else version
    fd, tmp = tempfile.mkstemp(dir=str(p.parent), prefix=p.name + ".")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, p)


def add_devices(path: Path | str, devices: list[Device], provisioned: int) -> None:
    """Add devices to the registry file atomically; an existing id is an error."""
    p = Path(path)
    with _locked(p):
        data = _read(p)
        for d in devices:
            if d.dev in data["devices"]:
                raise ConfigError(str(p), d.dev, "device id already registered")
            data["devices"][d.dev] = {
                "key": d.key.hex(),
                "type": d.type,
                "site": d.site,
                "provisioned": provisioned,
            }
            if d.mqtt_hash:
                data["devices"][d.dev]["mqtt_hash"] = d.mqtt_hash
        _write(p, data)


def _entry(p: Path, data: dict[str, Any], dev: str) -> dict[str, Any]:
    entry: dict[str, Any] | None = data["devices"].get(dev)
    if entry is None:
        raise ConfigError(str(p), dev, "no such device in the registry")
    if entry.get("revoked"):
        raise ConfigError(str(p), dev, "device is revoked")
    return entry


def rotate_key(path: Path | str, dev: str, key: bytes, from_seq: int, at: int) -> None:
    """Give ``dev`` a new key, valid for its records from ``from_seq`` on (older records keep
    verifying with the keys before it). ``from_seq`` must lie past every earlier rotation."""
    p = Path(path)
    with _locked(p):
        data = _read(p)
        entry = _entry(p, data, dev)
        history: list[Any] = list(entry.get("keys") or [{"key": entry["key"], "from_seq": 1}])
        last = max(int(k["from_seq"]) for k in history)
        if from_seq <= last:
            raise ConfigError(str(p), dev, f"from_seq must be > {last}, the last rotation's")
        history.append({"key": key.hex(), "from_seq": from_seq, "at": at})
        entry["keys"] = history
        entry["key"] = key.hex()
        _write(p, data)


def revoke(path: Path | str, dev: str, from_seq: int, at: int, reason: str) -> None:
    """Refuse ``dev``'s records from ``from_seq`` on; the entry and its keys stay (history:
    earlier records still verify)."""
    p = Path(path)
    with _locked(p):
        data = _read(p)
        entry = _entry(p, data, dev)
        entry["revoked"] = {"from_seq": from_seq, "at": at, "reason": reason}
        _write(p, data)


def write_registry(path: Path | str, devices: dict[str, dict[str, object]], version: int) -> None:
    """Replace the whole registry file (a gateway's copy, pushed down from the centre)."""
    p = Path(path)
    with _locked(p):
        _write(p, {"devices": devices}, version)
