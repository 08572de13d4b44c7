"""Minimal provisioning: a device id, a 256-bit key and MQTT credentials, the device's
config file, and an entry in the device registry the collector reads.

MQTT credentials: the user name is the device id, the password random (192 bits). The
password goes only into the device's own config file (``link.user``/``link.password``,
mode 0600), which the firmware sends in CONNECT and an edge agent copies into ``[local]``;
the registry keeps only its Mosquitto hash. The registry is copied to every collector and
to gateways, so a plain password there would let any holder of a copy log in as any
device; the hash is all ``traceedge broker config`` needs, so a gateway given a registry
slice could write its own broker's password file without ever learning a password.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import replace
from pathlib import Path

from hostlib.errors import ConfigError
from hostlib.mqttpasswd import hash_password, new_password
from hostlib.registry import DEVICE_TYPES, Device, add_devices

TYPE_PREFIX = {
    "cylinder-reader": "CYL",
    "elevator-box": "ELV",
    "market-scale": "MKT",
    "gateway": "GW",
}


def new_device(dev_type: str, site: str, dev_id: str | None = None) -> Device:
    if dev_type not in DEVICE_TYPES:
        raise ConfigError("--type", dev_type, f"unknown device type; one of {DEVICE_TYPES}")
    dev = dev_id or f"{TYPE_PREFIX[dev_type]}-{site}-{secrets.token_hex(3).upper()}"
    return Device(dev=dev, key=secrets.token_bytes(32), type=dev_type, site=site)


def device_config(
    d: Device,
    broker_host: str,
    broker_port: int,
    prefix: str = "",
    mqtt_password: str | None = None,
) -> dict[str, object]:
    """What the terminal stores in its config file (``config.json`` on the board); with
    ``mqtt_password`` the link logs in as ``d.dev``."""
    link: dict[str, object] = {"host": broker_host, "port": broker_port, "prefix": prefix}
    if mqtt_password is not None:
        link.update(user=d.dev, password=mqtt_password)
    return {"dev": d.dev, "key": d.key.hex(), "type": d.type, "site": d.site, "link": link}


def provision(
    dev_type: str,
    site: str,
    out_dir: Path,
    registry: Path,
    count: int = 1,
    broker_host: str = "127.0.0.1",
    broker_port: int = 1883,
) -> list[tuple[Device, Path]]:
    """Create ``count`` devices, write ``<out_dir>/<dev>.json`` (mode 0600) for each, register."""
    made = []
    for _ in range(count):
        password = new_password()
        made.append(
            (replace(new_device(dev_type, site), mqtt_hash=hash_password(password)), password)
        )
    add_devices(registry, [d for d, _ in made], int(time.time()))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for d, password in made:
        path = out_dir / f"{d.dev}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(device_config(d, broker_host, broker_port, "", password), fh, indent=1)
        written.append((d, path))
    return written
