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
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hostlib.errors import ConfigError

DEVICE_TYPES = ("cylinder-reader", "elevator-box", "market-scale", "gateway")
FAMILY_OF_TYPE = {
    "cylinder-reader": "cylinder",
    "elevator-box": "elevator",
    "market-scale": "market",
    "gateway": "gateway",
}


@dataclass(frozen=True)
class Device:
    dev: str
    key: bytes
    type: str
    site: str
    mqtt_hash: str = ""


def _parse(path: Path, text: str) -> dict[str, Device]:
    try:
        data = json.loads(text) if text.strip() else {"devices": {}}
        out = {}
        for dev, d in data["devices"].items():
            mqtt_hash = d.get("mqtt_hash", "")
            if not isinstance(mqtt_hash, str):
                raise TypeError(f"{dev}: mqtt_hash must be a string")
            out[dev] = Device(dev, bytes.fromhex(d["key"]), d["type"], d["site"], mqtt_hash)
        return out
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(str(path), "devices", f"not a device registry: {exc}") from exc


def load_identity(path: Path | str) -> Device:
    """A device's own config file (written by provisioning): its id, key, type and site."""
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
        return Device(d["dev"], bytes.fromhex(d["key"]), d["type"], d["site"])
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
        self.reload()

    def reload(self) -> None:
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                self._devices, self._mtime = {}, None
                return
            if st.st_mtime_ns == self._mtime:
                return
            self._devices = _parse(self.path, self.path.read_text(encoding="utf-8"))
            self._mtime = st.st_mtime_ns

    def get(self, dev: str) -> Device | None:
        d = self._devices.get(dev)
        if d is None:
            self.reload()  # a device provisioned a moment ago
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


def add_devices(path: Path | str, devices: list[Device], provisioned: int) -> None:
    """Add devices to the registry file atomically; an existing id is an error."""
    p = Path(path)
    with _locked(p):
        data: dict[str, dict[str, dict[str, object]]] = {"devices": {}}
        if p.exists() and p.read_text(encoding="utf-8").strip():
            _parse(p, p.read_text(encoding="utf-8"))  # refuse to build on a broken file
            data = json.loads(p.read_text(encoding="utf-8"))
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
        fd, tmp = tempfile.mkstemp(dir=str(p.parent), prefix=p.name + ".")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
